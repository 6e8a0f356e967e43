"""What the terminal shows: the progress line (live, narrow, plain when there is no width), the resolved
configuration block, a run's final line, and the sweep plan that starts nothing."""

import io
import os
import pty

import pytest

from bench import console
from bench.cli import main
from tests.sweep_helpers import write_sweep


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_without_a_terminal_prints_plain_lines_and_no_carriage_returns():
    stream, clock = io.StringIO(), Clock()
    progress = console.Progress("sweep adding [smoke]", 16, stream=stream, clock=clock)
    progress.set_done(0, ["0/4 studies searched"])
    for step in range(1, 50):
        clock.now = step
        progress.set_current("simple/rnn trial 0 epoch 1/2", step / 50)
    progress.set_done(1)
    progress.close()
    out = stream.getvalue()
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert all(line.strip() for line in lines)
    # One line per finished run (and at most one per 30 s in between), not one per update.
    assert 2 <= len(lines) <= 5, lines
    assert "1/16 runs" in lines[-1]


def test_progress_on_a_terminal_reporting_zero_columns_falls_back_to_plain_lines():
    """A real pseudo-terminal whose size was never set reports 0 columns (as some CI consoles do)."""
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as stream:
        assert stream.isatty() and os.get_terminal_size(stream.fileno()).columns == 0
        progress = console.Progress("horizon adding [smoke]", 4, stream=stream)
        progress.set_done(0)
        progress.set_current("simple/lstm T=5 seed 0 epoch 1/2", 0.5)
        progress.set_done(1)
        progress.close()
    written = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    text = written.decode().replace("\r\n", "\n")  # the pty turns \n into \r\n; nothing else may return
    assert "\r" not in text and "\x1b" not in text
    assert [line for line in text.splitlines() if line.strip()], text
    assert not any(not line.strip() for line in text.splitlines()), text


class FakeTerminal(io.StringIO):
    def __init__(self, columns: int) -> None:
        super().__init__()
        self.columns = columns

    def isatty(self) -> bool:
        return True


def test_live_line_fits_any_width_and_is_never_cut_to_nothing(monkeypatch):
    for columns in (20, 40, 80, 200):
        stream = FakeTerminal(columns)
        monkeypatch.setattr(console, "terminal_width", lambda s: s.columns)
        progress = console.Progress("sweep sst2 [cpu]", 81, stream=stream)
        details = [f"{i}/9 studies searched" for i in range(9)]
        progress.set_done(3, details)
        drawn = stream.getvalue().split("\r\x1b[K")[-1]
        assert 0 < len(drawn) <= columns - 1, (columns, drawn)
        assert drawn.startswith("sweep")
    wide = stream.getvalue().split("\r\x1b[K")[-1]
    assert "3/81 runs" in wide and "0/9 studies searched" in wide


def test_eta_uses_only_work_timed_in_this_invocation():
    """A resumed sweep (8 of 81 runs done earlier) must not read 8 runs in no time as its pace."""
    clock = Clock()
    progress = console.Progress("sweep", 81, stream=io.StringIO(), clock=clock)
    progress.set_done(8)
    assert progress.eta() is None
    clock.now = 30.0  # start-up: imports, stores, data; not training
    progress.set_current("trial 8", 0.0)
    clock.now = 90.0
    progress.set_current("trial 8", 0.5)  # half a run in 60 s -> 2 min per run
    assert progress.eta() == pytest.approx((81 - 8.5) * 120, rel=1e-6)


def test_eta_of_runs_that_report_only_when_they_finish():
    """A horizon's worker pool: no run reports its steps, so the pace is finished runs since the start."""
    clock = Clock()
    progress = console.Progress("horizon", 50, stream=io.StringIO(), clock=clock)
    progress.set_done(0)
    clock.now = 5.0
    progress.start_timing()
    assert progress.eta() is None
    clock.now = 245.0
    progress.set_done(2)  # 2 runs in 240 s
    assert progress.eta() == pytest.approx(48 * 120, rel=1e-6)
    assert progress.parts()[2].startswith("~1:36:00 left")


def test_list_with_a_task_shows_its_effective_defaults(capsys):
    assert main(["list", "--task", "copy-memory"]) == 0
    out = capsys.readouterr().out
    # The task's own defaults, not the suite's (lr 1e-3, 10 epochs), and the cell `train` uses.
    assert "copy-memory · simple lstm" in out
    assert "lr=0.01" in out and "max_epochs=20" in out and "T=10" in out
    assert "task: lr" in out


@pytest.mark.slow
def test_train_prints_its_resolved_configuration_and_a_final_line(capsys, monkeypatch):
    monkeypatch.setenv("TORCH_THREADS", "1")
    code = main(
        [
            "train",
            "--task",
            "copy-memory",
            "--no-progress",
            "T=2",
            "n_train=64",
            "n_val=32",
            "n_test=32",
            "max_epochs=1",
            "hidden=8",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("copy-memory · simple lstm · seed 0")
    block = "\n".join(out[:8])
    assert "T=2 n_train=64" in block and "hidden=8" in block and "lr=0.01" in block and "max_epochs=1" in block
    set_by = next(line for line in out[:8] if line.strip().startswith("set by"))
    yours = set(set_by.split("you: ")[1].split(";")[0].split())
    assert yours == {"T", "n_train", "n_val", "n_test", "max_epochs", "hidden"}, set_by
    assert "TORCH_THREADS=1" in block
    final = out[-1]
    assert final.startswith("test/loss ") and "× the memoryless baseline" in final, final
    assert "1 epoch," in final and "/#/experiments/" in final and "/runs/" in final, final


def test_bad_thread_setting_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("TORCH_THREADS", "many")
    assert main(["train", "--task", "adding", "--no-progress", "T=2", "n_train=8", "n_val=8", "n_test=8"]) == 2
    assert "TORCH_THREADS='many' is not valid" in capsys.readouterr().err


def test_final_line_of_a_classification_run_names_the_majority_class():
    from bench.cli import final_line
    from bench.registry import get_task
    from bench.train import TrainResult

    result = TrainResult(
        run_id="r",
        best_val=0.5,
        test_metrics={"test/acc": 0.78, "test/loss": 0.69},
        epochs=3,
        param_count=1000,
        seconds_per_epoch=1.0,
        baseline=0.6922,
        baselines={"baseline/loss": 0.6922, "baseline/acc": 0.509},
    )
    url = "http://127.0.0.1:5000/#/experiments/1/runs/r"
    import bench.cli

    original = bench.cli.run_url
    bench.cli.run_url = lambda run_id: url
    try:
        line = final_line(get_task("sst2"), result, 75)
    finally:
        bench.cli.run_url = original
    assert line.startswith("test/acc 0.78 vs 0.509 for always predicting the majority class (1.53×)"), line
    assert "1:15" in line and url in line


@pytest.mark.slow
def test_sweep_plan_prints_studies_runs_and_time_and_starts_nothing(tmp_path, capsys, monkeypatch):
    path = write_sweep(
        tmp_path / "s.yaml",
        variants=["simple", "stacked"],
        cells=["gru"],
        trials=3,
        final_seeds=2,
        max_epochs=2,
        variant_space={"stacked": {"layers": {"type": "int", "low": 2, "high": 3}}},
    )
    storage = tmp_path / "optuna.db"
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    assert (
        main(
            [
                "sweep",
                "--task",
                "adding",
                "--profile",
                "test",
                "--file",
                str(path),
                "--storage",
                f"sqlite:///{storage}",
                "--plan",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "budget   3 trials + 2 final seeds [1, 2] per study = 10 runs" in out
    assert "plan (nothing was started" in out
    table = out[out.index("plan (") :]
    assert "simple/gru" in table and "stacked/gru" in table
    assert "2 studies, 10 of 10 runs left, estimated " in table and "if every run goes to its budget" in table
    assert not storage.exists() and not store.exists()  # no study, no run, no store


def test_plan_estimate_is_runs_times_probed_seconds_plus_the_start_up(tmp_path):
    from bench.plan import EpochCost, RunCost, build_plan, format_plan
    from bench.sweep_config import load_sweep

    spec = load_sweep(
        "adding",
        "test",
        write_sweep(
            tmp_path / "s.yaml", variants=["simple"], cells=["rnn", "gru"], trials=3, final_seeds=2, max_epochs=4
        ),
    )
    plan = build_plan(
        spec,
        f"sqlite:///{tmp_path / 'none.db'}",
        epoch_probe=lambda spec, key: EpochCost(step_seconds=0.15, steps=10, validation_seconds=0.5),
        overhead_probe=lambda spec, key, epoch: RunCost(overhead=1.0, step_scale=1.0, startup=6.0),
    )
    assert [p.seconds_per_run for p in plan.studies] == [9.0, 9.0]  # 1 s fixed + 4 epochs x 2 s
    text = format_plan(spec, plan, load=0.5)
    assert "10 of 10 runs left, estimated 1:36 for one worker" in text and "load average 0.5" in text  # 90 s + 6 s
    assert "start-up 6 s included" in text and "at most" not in text


def test_quiet_libraries_switches_off_mlflow_artifact_download_bars(monkeypatch):
    """A report downloads every run's small artifacts: one bar each would bury its output."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # recorded: restored after the test
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    monkeypatch.setattr(console, "verbose", lambda: False)
    console.quiet_libraries()
    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False


def test_the_smoke_plan_is_computed_from_the_sweep_file_and_the_measured_costs():
    """The shipped smoke profile's plan: its studies, runs and seconds follow from the file (4 studies x
    (2 trials + 2 final seeds), 2 epochs a run) and what the probes measured, Lightning's step scale and
    the command's start-up included: nothing is an "at most" the sweep could exceed."""
    from bench.plan import EpochCost, RunCost, build_plan, format_plan
    from bench.sweep_config import load_sweep

    spec = load_sweep("copy-memory", "smoke")
    epoch = EpochCost(step_seconds=0.01, steps=4, validation_seconds=0.02)
    cost = RunCost(overhead=0.5, step_scale=3.0, startup=12.0)
    plan = build_plan(
        spec, "sqlite:////nonexistent/optuna.db", epoch_probe=lambda s, k: epoch, overhead_probe=lambda s, k, e: cost
    )
    per_run = 0.5 + spec.max_epochs * 3.0 * (0.01 * 4 + 0.02)  # fixed cost + 2 epochs of Lightning-scaled steps
    assert [p.runs_left for p in plan.studies] == [spec.trials + len(spec.final_seeds)] * len(spec.studies) == [4] * 4
    assert [p.seconds_per_run for p in plan.studies] == pytest.approx([per_run] * 4)
    assert plan.seconds == pytest.approx(12.0 + 16 * per_run)
    text = format_plan(spec, plan, load=1.0)
    assert f"4 studies, 16 of 16 runs left, estimated {console.duration(12.0 + 16 * per_run)} for one worker" in text


def test_a_count_of_one_is_singular(tmp_path):
    """Issue 25: the plan printed "1 random start-up trials"."""
    from bench.sweep_config import load_sweep

    spec = load_sweep(
        "adding", "test", write_sweep(tmp_path / "s.yaml", trials=1, startup_trials=1, final_seeds=1, max_epochs=1)
    )
    block = console.sweep_block(spec, f"sqlite:///{tmp_path / 'o.db'}")
    assert "budget   1 trial + 1 final seed [1] per study = 2 runs, each 1 epoch; 1 random start-up trial;" in block
    assert [console.counted(n, "study", "studies") for n in (0, 1, 2, "?")] == [
        "0 studies",
        "1 study",
        "2 studies",
        "? studies",
    ]


def test_eta_follows_the_recent_pace_not_a_slow_first_epoch():
    """Issue 25: epoch 1 took 113 s on a busy machine, the next ones 3 s; the line said ~1:06:09 left for a
    run that ended 3:27 after it began. The pace is a moving average of the recent work, so after a few
    fast epochs the estimate is close to the time really left."""
    clock = Clock()
    progress = console.Progress("train", 30, unit="epochs", stream=io.StringIO(), clock=clock)
    progress.set_done(0)
    for second in range(1, 114):  # epoch 1: 113 s, a batch report every second
        clock.now = float(second)
        progress.set_current("epoch 1", second / 113)
    assert progress.eta() == pytest.approx(29 * 113, rel=0.01)
    for epoch in range(2, 7):  # epochs 2-6: 3 s each
        for second in (1, 2, 3):
            clock.now += 1.0
            progress.set_current(f"epoch {epoch}", second / 3)
        progress.set_done(epoch)
    true_left = (30 - 6) * 3.0
    assert true_left <= progress.eta() < 2 * true_left
