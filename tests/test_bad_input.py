"""Every failure of issue 12, as a regression test: the exact one-line message and exit code."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench import stores, tracking
from bench.cells import CELLS, GROUPS
from bench.cli import main
from bench.errors import UserError
from bench.sweep import make_storage, run_sweep, study_name
from bench.sweep_config import load_sweep
from tests.sweep_helpers import ROOT, worker_env, write_sweep


def fails(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one error line, last, and no traceback."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]  # (datasets' own progress
    assert len(lines) == 1 and err.strip().endswith(lines[0]) and "Traceback" not in err, err  # lines may precede)
    return lines[0]


def sweep_args(path: Path, *extra: str) -> list[str]:
    return ["sweep", "--task", "adding", "--profile", "test", "--file", str(path), "--no-progress", *extra]


# -- sweep input -------------------------------------------------------------------------------------------
def test_a_fixed_knob_that_is_also_searched_names_both_places(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml")
    line = fails(capsys, sweep_args(path, "hidden=abc"))
    assert line == (
        f"error: {path}: hidden (profile test): set in two places, ARGS (hidden=abc) and search_space.hidden; keep one"
    )
    path = write_sweep(tmp_path / "f.yaml", fixed={"T": 6, "hidden": 32})
    assert fails(capsys, sweep_args(path)).endswith("set in two places, fixed.hidden and search_space.hidden; keep one")


def test_both_ends_of_a_range_are_validated_before_anything_starts(tmp_path, capsys):
    path = write_sweep(
        tmp_path / "s.yaml", search_space={"dropout": {"type": "float", "low": 0.99, "high": 50}}, variants=["stacked"]
    )
    assert fails(capsys, sweep_args(path)) == (
        f"error: {path}: search_space.dropout value 50 (profile test, "
        "stacked/gru): dropout=50.0 is out of range: must be in [0, 1)"
    )


def test_every_categorical_choice_is_validated(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml", search_space={"hidden": {"type": "categorical", "choices": [8, "abc"]}})
    assert fails(capsys, sweep_args(path)) == (
        f"error: {path}: search_space.hidden value 'abc' (profile test, "
        "simple/gru): hidden='abc' is not valid: expected an integer"
    )


def test_a_bad_value_in_args_is_named_as_args(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml")
    assert fails(capsys, sweep_args(path, "T=abc")) == (
        f"error: {path}: ARGS (profile test, simple/gru): T='abc' is not valid: expected an integer"
    )


def test_an_empty_search_space_is_an_error_unless_one_trial(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml", search_space={})
    assert fails(capsys, sweep_args(path)) == (
        f"error: {path}: search_space (profile test): nothing is searched for simple/gru, so its 3 trials would be "
        "identical: add a search_space or set trials: 1"
    )
    assert load_sweep("adding", "test", write_sweep(tmp_path / "one.yaml", search_space={}, trials=1)).trials == 1


@pytest.mark.parametrize("key", ["variants", "cells"])
def test_an_empty_list_of_variants_or_cells_is_an_error_not_the_default(tmp_path, capsys, key):
    path = write_sweep(tmp_path / "s.yaml", **{key: []})
    allowed = (
        "a non-empty list of variants from simple, stacked, bidirectional, embedding-pretrained"
        if key == "variants"
        else f"cell or group names, a non-empty list from {', '.join([*CELLS, *GROUPS])}"  # groups name cells too
    )
    assert fails(capsys, sweep_args(path)) == f"error: {path}: {key} (profile test): {allowed} (got [])"


def test_a_key_given_twice_in_a_yaml_mapping_is_an_error_not_the_last(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml")
    path.write_text(path.read_text().replace("  T: 6\n", "  T: 6\n  T: 7\n"))
    assert fails(capsys, sweep_args(path)) == (
        f"error: {path}: line 8 malformed YAML: key 'T' given twice in one mapping (first at line 7, column 3): "
        "keep one"
    )
    path.write_text("task: adding\ndefaults: &d {T: 6}\nfixed: {<<: *d, T: 7}\n")  # a merge key may be overridden
    assert "given twice" not in fails(capsys, sweep_args(path))


def test_trials_failing_before_training_count_towards_the_failure_guard(tmp_path, capsys, monkeypatch):
    """A problem only a trial can find (data errors are found at the edge now, before any trial): each
    trial fails with it, and after 2 x trials failures the study stops with one line naming it."""
    import bench.train

    def fails_inside(config, **_):
        raise UserError("a problem only the trial's own data loading could see")

    monkeypatch.setattr(bench.train, "train", fails_inside)
    path = write_sweep(tmp_path / "s.yaml", cells=["gru"], variants=["simple"], trials=2, final_seeds=1)
    code = main(
        [
            "sweep",
            "--task",
            "adding",
            "--profile",
            "test",
            "--file",
            str(path),
            "--no-progress",
            "--storage",
            f"sqlite:///{tmp_path / 'o.db'}",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not [line for line in err if "Traceback" in line], err
    assert re.fullmatch(
        r"error: study adding:test:simple:gru: 4 trials failed \(last: UserError: a problem only the trial's "
        r"own data loading could see\); see their failure_reason in MLflow",
        err[-1],
    ), err


def test_an_absurd_but_finite_validation_loss_is_divergence():
    from types import SimpleNamespace

    from bench.train import DivergedError, StopOnDivergence

    trainer = SimpleNamespace(callback_metrics={"val/loss": 1.7e36}, sanity_checking=False, current_epoch=3)
    with pytest.raises(
        DivergedError,
        match=r"^diverged: validation loss 1.7e\+36 at epoch 3 is more than 1e\+06 x "
        r"the baseline 0.167$",
    ):
        StopOnDivergence(1 / 6).on_validation_end(trainer, None)
    trainer.callback_metrics["val/loss"] = float("nan")
    with pytest.raises(DivergedError, match="^diverged: validation loss nan at epoch 3$"):
        StopOnDivergence(1 / 6).on_validation_end(trainer, None)
    trainer.callback_metrics["val/loss"] = 0.5
    StopOnDivergence(1 / 6).on_validation_end(trainer, None)  # an ordinary loss goes on


# -- stores -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command, uri, message",
    [
        (
            "train",
            "sqlite:////sys/mlflow.db",
            "error: cannot create the MLflow store /sys/mlflow.db: Permission denied",
        ),
        (
            "train",
            "sqlite:///{file}/x/mlflow.db",
            "error: cannot create the MLflow store {file}/x/mlflow.db: {file} is a file, not a folder",
        ),
        ("train", "http://127.0.0.1:9", "error: cannot reach the MLflow store http://127.0.0.1:9: connection refused"),
        ("report", "http://127.0.0.1:9", "error: cannot reach the MLflow store http://127.0.0.1:9: connection refused"),
        (
            "sweep",
            "postgresql://bench:p@ss:w@rd@127.0.0.1:9/optuna",
            "error: cannot open the Optuna storage postgresql://bench:***@127.0.0.1:9/optuna: connection refused",
        ),
    ],
)
def test_a_store_that_cannot_work_fails_in_one_line_within_ten_seconds(tmp_path, command, uri, message):
    file = tmp_path / "a-file"
    file.write_text("")
    uri, message = uri.format(file=file), message.format(file=file)
    argv = {
        "train": ["train", "--task", "adding"],
        "report": ["report", "--task", "adding", "--out", str(tmp_path)],
        "sweep": sweep_args(write_sweep(tmp_path / "s.yaml")),
    }[command]
    variable = "STORAGE" if command == "sweep" else "MLFLOW_TRACKING_URI"  # the storage URL: never on argv
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env=worker_env(tmp_path, {variable: uri}),
        timeout=60,
    )
    assert time.monotonic() - start < 10
    assert result.returncode == 2 and result.stderr.strip() == message, result.stderr


CORRUPT = "corrupt"  # an mlflow.db of random bytes, made by the test
MLFLOW_STORES = {
    "postgresql://bench:p@ss:w@rd@127.0.0.1:9/mlflow": (
        "error: cannot reach the MLflow store postgresql://bench:***@127.0.0.1:9/mlflow: connection refused"
    ),
    CORRUPT: (
        "error: the MLflow store {tmp}/mlflow.db is not an SQLite database (its first bytes are not SQLite's "
        "header): move it aside, or use another file"
    ),
    "not-a-uri": (
        "error: MLFLOW_TRACKING_URI=not-a-uri is not a store URL: use sqlite:///<path>/mlflow.db, "
        "http(s)://<tracking server> or postgresql://<user>@<host>/<database>, or unset it (mlflow.db in the "
        "repository)"
    ),
}


@pytest.mark.parametrize("uri", MLFLOW_STORES)
@pytest.mark.parametrize("command", ["train", "sweep", "report", "ui"])
def test_an_mlflow_store_that_cannot_work_fails_in_one_line_within_ten_seconds(tmp_path, command, uri):
    """A closed port (nothing listening: MLflow's own attempt took 115 s and printed the password), a
    corrupt database file, a value that is no URL: one line, the password masked, nothing created."""
    message = MLFLOW_STORES[uri].format(tmp=tmp_path)
    if uri == CORRUPT:
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
        (tmp_path / "mlflow.db").write_bytes(bytes(range(256)) * 32)
    argv = {
        "train": ["train", "--task", "adding"],
        "sweep": sweep_args(write_sweep(tmp_path / "s.yaml")),
        "report": ["report", "--task", "adding", "--out", str(tmp_path / "reports")],
        "ui": ["ui", "--port", "9"],
    }[command]
    before = set(tmp_path.rglob("*"))
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench", *argv],
        cwd=tmp_path,  # a relative store (not-a-uri) would be made here
        text=True,
        capture_output=True,
        env=worker_env(tmp_path, {"MLFLOW_TRACKING_URI": uri, "STORAGE": f"sqlite:///{tmp_path / 'o.db'}"}),
        timeout=60,
    )
    assert time.monotonic() - start < 10
    assert result.returncode == 2 and result.stderr.strip() == message, result.stderr
    assert "w@rd" not in result.stdout + result.stderr
    assert set(tmp_path.rglob("*")) == before


def test_the_dashboard_with_an_unreachable_storage_fails_in_one_line(tmp_path):
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench", "dashboard", "--port", "9"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env=worker_env(tmp_path, {"STORAGE": "postgresql://bench:p@ss:w@rd@127.0.0.1:9/optuna"}),
        timeout=60,
    )
    assert time.monotonic() - start < 10
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: cannot open the Optuna storage postgresql://bench:***@127.0.0.1:9/optuna: connection refused"
    ), result.stderr


@pytest.mark.parametrize("command", ["ui", "dashboard"])
def test_the_servers_get_the_store_url_in_their_environment_not_on_argv(tmp_path, monkeypatch, capsys, command):
    """`ps` shows a process's argv to every user: the store URL, with its password, goes in the
    environment of the server (MLflow's MLFLOW_BACKEND_STORE_URI; the dashboard puts it on its own
    argv inside the process)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))  # a server that accepts: the reachability check passes
    url = f"postgresql://bench:p@ss:w@rd@127.0.0.1:{listener.getsockname()[1]}/db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI" if command == "ui" else "STORAGE", url)
    started = {}
    monkeypatch.setattr("bench.cli.serve", lambda *args, **options: started.update(args=args, options=options))
    with listener:
        assert main([command, "--port", "9"]) == 0
    name, what, argv = started["args"][:3]
    assert not [part for part in (what, *argv) if "w@rd" in part or "w%40rd" in part], (what, argv)
    (secret,) = started["options"]["secrets"].values()  # ('@' in a password percent-encoded for SQLAlchemy)
    assert secret in (url, url.replace("p@ss:w@rd", "p%40ss:w%40rd")) and "w@rd" not in capsys.readouterr().out


def test_an_unreachable_optuna_storage_fails_in_one_line_and_hides_the_password(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml")
    start = time.monotonic()
    line = fails(capsys, sweep_args(path, "--storage", "postgresql://bench:p@ss:w@rd@127.0.0.1:9/optuna"))
    assert time.monotonic() - start < 10
    assert line == "error: cannot open the Optuna storage postgresql://bench:***@127.0.0.1:9/optuna: connection refused"
    assert "p@ss" not in line and "w@rd" not in line and "ss:w" not in line


# -- secrets and the Makefile ---------------------------------------------------------------------------------
def make_dry_run(target: str, **variables: str) -> str:
    env = {**os.environ, **variables}
    return subprocess.run(
        ["make", "-n", "-o", ".venv/.installed", target], cwd=ROOT, env=env, text=True, capture_output=True, check=True
    ).stdout


def test_make_never_puts_the_storage_url_or_args_on_a_command_line():
    secret = "postgresql://bench:s3cr@t:pw@db-host/optuna"
    for target in ("sweep", "report", "train"):
        echoed = make_dry_run(target, STORAGE=secret, ARGS="T=5 data_dir='/a b'")
        assert "s3cr" not in echoed and "data_dir" not in echoed, echoed


def make_run(tmp_path: Path, target: str, *assignments: str, env: dict | None = None):
    """`make -s TARGET ...` in the repository, run by this interpreter (a worktree has no .venv of its own)."""
    return subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", f"PY={sys.executable}", target, *assignments],
        cwd=ROOT,
        env=worker_env(tmp_path, env),
        text=True,
        capture_output=True,
        timeout=120,
    )


def error_lines(stderr: str) -> list[str]:
    """What a failing make target printed, without make's own closing `make: *** [...] Error 2` (or
    `make[1]: ***` when the tests themselves run under make, as `make test-all` in CI does)."""
    return [line for line in stderr.strip().splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]


def test_the_storage_password_is_to_go_in_the_environment_not_on_argv():
    """`--storage` on argv shows its password in `ps`: the help and the sweeps page send it to $STORAGE."""
    from bench.cli import build_parser

    sweep = build_parser()._subparsers._group_actions[0].choices["sweep"]
    assert "a password goes in $STORAGE" in " ".join(sweep.format_help().split())
    page = " ".join((ROOT / "docs" / "sweeps.md").read_text().split())
    assert (
        "give `STORAGE` through the environment (`export STORAGE=...`, not `make sweep STORAGE=...`, which `ps` shows)"
        in page
    )


def test_a_quote_in_args_reaches_the_validator_not_the_shell(tmp_path):
    result = make_run(tmp_path, "train", "TASK=adding", "ARGS=T=x'y")
    assert result.returncode == 2
    assert error_lines(result.stderr) == ['error: T="x\'y" is not valid: expected an integer']


def test_a_file_name_that_holds_a_command_is_a_file_name(tmp_path):
    file = f"nosuch'; touch {tmp_path}/pwned2; echo '"
    result = make_run(tmp_path, "sweep", "TASK=adding", f"FILE={file}")
    assert not (tmp_path / "pwned2").exists()
    assert result.returncode == 2
    assert error_lines(result.stderr) == [f"error: no sweep file for task adding: expected {file}"]


def test_a_file_name_with_a_quote_reaches_the_cli(tmp_path):
    result = make_run(tmp_path, "sweep", "TASK=adding", "FILE=it's bad.yaml")
    assert result.returncode == 2
    assert error_lines(result.stderr) == ["error: no sweep file for task adding: expected it's bad.yaml"]


@pytest.mark.parametrize("target", ["train", "sweep", "report", "horizon", "list"])
def test_make_variables_are_text_not_make_functions_or_shell(tmp_path, target):
    """`$(shell ...)` in any variable make hands on (command line or environment) stays text: make
    neither splices it into a command line unquoted nor expands it when exporting it."""
    call = f"$(shell touch {tmp_path}/ran)"
    result = make_run(
        tmp_path,
        target,
        "TASK=adding",
        *(f"{name}={call}" for name in ("VARIANT", "CELL", "ARGS", "FILE", "PROFILE", "DATASET", "JOBS", "PORT")),
        env={"STORAGE": call},
    )
    assert not (tmp_path / "ran").exists(), result.stderr
    assert result.returncode == (0 if target == "list" else 2), result.stderr  # list ignores the others


# -- smaller items ----------------------------------------------------------------------------------------------
def test_a_network_too_large_for_memory_fails_before_allocating(capsys):
    line = fails(capsys, ["train", "--task", "adding", "hidden=100000"])
    assert re.fullmatch(
        r"error: hidden=100000 \(layers=1\) is too large: about [\d,]+ parameters need \d+ GiB with "
        r"gradients and optimizer state; this machine has \d+ GiB",
        line,
    ), line


def test_a_length_too_large_for_memory_is_refused_before_anything_is_allocated(capsys):
    line = fails(capsys, ["train", "--task", "copy-memory", "T=1000000000"])
    assert re.fullmatch(
        r"error: T=1000000000 is too large: 36,000 sequences \(n_train \+ n_val \+ n_test\) of 1,000,000,000 steps "
        r"need at least 33,528 GiB; this machine has \d+ GiB",
        line,
    ), line
    line = fails(capsys, ["train", "--task", "adding", "T=100000000", "n_train=1", "n_val=1", "n_test=1"])
    assert re.fullmatch(
        r"error: T=100000000 is too large: backpropagation through a batch of 128 sequences of 100,000,000 steps "
        r"keeps at least 3,052 GiB of hidden states; this machine has \d+ GiB",
        line,
    ), line


def test_a_gpu_asked_for_where_there_is_none_is_one_line_before_any_run(tmp_path, capsys, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'fresh.db'}")
    line = fails(capsys, ["train", "--task", "adding", "accelerator=gpu"])
    assert (
        line
        == f"error: accelerator=gpu: torch {torch.__version__} sees no CUDA GPU here; use accelerator=auto (or cpu)"
    )
    assert not (tmp_path / "fresh.db").exists()


def test_an_lm_corpus_label_with_a_quote_is_refused(capsys):
    line = fails(capsys, ["train", "--task", "sst2", "--variant", "embedding-pretrained", "embedding_vectors=lm:a'b"])
    assert line == (
        "error: embedding_vectors=lm:a'b is not valid: a corpus label has letters, digits, '.', '_' and "
        "'-' only (e.g. lm:imdb-unsupervised)"
    )


def test_a_data_error_leaves_no_cache_folder_behind(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "fresh-cache" / "datasets"
    monkeypatch.setenv("RNNBENCH_CACHE", str(cache))
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):
        (data / f"{split}.csv").write_text("foo,bar\n1,2\n")
    line = fails(capsys, ["train", "--task", "sst2", f"data_dir={data}"])
    assert line == "error: train split has no column 'sentence' (columns: foo, bar); set text_column=<name>"
    assert not (tmp_path / "fresh-cache").exists()


@pytest.mark.slow
def test_a_report_of_an_unfinished_sweep_lists_the_studies_not_started(tmp_path, monkeypatch):
    from bench.report import write_report
    from bench.sweep import Worker

    path = write_sweep(
        tmp_path / "s.yaml",
        cells=["rnn", "gru"],
        trials=1,
        final_seeds=1,
        search_space={},
        fixed={"T": 4, "n_train": 64, "n_val": 32, "n_test": 32},
    )
    spec = load_sweep("adding", "test", path)
    spec.study_prefix = f"unstarted-{os.getpid()}"
    Worker(spec, make_storage(f"sqlite:///{tmp_path / 'o.db'}")).search(spec.studies[0])  # then the worker stops
    monkeypatch.setattr("bench.report.read_task_runs", only_prefix(spec.study_prefix))
    text = write_report("adding", "test", tmp_path / "reports").read_text()
    assert "| simple/gru | not started |" in text and "Incomplete" in text


def only_prefix(prefix):
    from bench.results import read_task_runs

    def read(task, profile, dataset=None):
        studies, profile, runs = read_task_runs(task, profile, dataset)
        return [s for s in studies if s.name.startswith(prefix)], profile, runs

    return read


# -- resume ------------------------------------------------------------------------------------------------------
@pytest.mark.slow  # trains (or publishes from two processes): end to end
def test_resume_runs_the_queued_retry_of_a_dead_workers_trial_instead_of_waiting_forever(tmp_path):
    """The state that hung 3 of 3 resumes: #0 RUNNING of a dead process (then FAIL + WAITING retry),
    #1 COMPLETE. The resume must run the retry and finish, at once, not wait on it."""
    path = write_sweep(
        tmp_path / "s.yaml",
        trials=2,
        final_seeds=1,
        max_epochs=1,
        fixed={"T": 4, "n_train": 64, "n_val": 32, "n_test": 32},
    )
    spec = load_sweep("adding", "test", path)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    storage = make_storage(url)
    study = optuna.create_study(study_name=study_name(spec, spec.studies[0]), storage=storage)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with pytest.warns(UserWarning, match="Heartbeat of storage"):  # ask() outside optimize(), on purpose
        trial = study.ask()
    trial.set_user_attr("worker", {"host": tracking.HOST, "pid": dead.stdout.strip(), "pid_started": "1"})
    study.add_trial(
        optuna.trial.create_trial(
            params={"lr": 3e-3, "hidden": 8},
            value=0.2,
            distributions={
                "lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True),
                "hidden": optuna.distributions.CategoricalDistribution([8, 16]),
            },
        )
    )
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("resume hangs")))
    signal.alarm(240)
    try:
        run_sweep(spec, url, show_progress=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    trials = optuna.load_study(study_name=study.study_name, storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert trials[0].user_attrs["died"] == "worker process gone"
    assert trials[2].system_attrs["failed_trial"] == 0  # the retry Optuna queued, run by this worker


def test_a_resume_against_another_mlflow_store_says_so(tmp_path, monkeypatch, capsys):
    path = write_sweep(
        tmp_path / "s.yaml",
        trials=1,
        final_seeds=1,
        max_epochs=1,
        search_space={},
        fixed={"T": 4, "n_train": 64, "n_val": 32, "n_test": 32},
    )
    url = f"sqlite:///{tmp_path / 'o.db'}"
    spec = load_sweep("adding", "test", path)
    study = optuna.create_study(study_name=study_name(spec, spec.studies[0]), storage=make_storage(url))
    study.set_user_attr("mlflow_store", "sqlite:////somewhere/else/mlflow.db")
    study.set_user_attr("mlflow_parent_run_id", "0123456789abcdef")
    line = fails(capsys, sweep_args(path, "--storage", url))
    assert line == (
        f"error: study {study.study_name} began with the MLflow store sqlite:////somewhere/else/mlflow.db, "
        f"but MLFLOW_TRACKING_URI is now {stores.tracking_uri()}: resume with the store it began with, or start "
        "afresh with a new Optuna storage too (export STORAGE=sqlite:///<folder>/optuna.db)"
    )


# -- reports -----------------------------------------------------------------------------------------------------
PUBLISHER = """
import shutil, sys, tempfile
from pathlib import Path
from bench.report import publish
out = Path(sys.argv[1])
for i in range(int(sys.argv[2])):
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".tmp-"))
    (staging / "task").mkdir()
    for name in ("a.png", "b.png", "summary.json"):
        (staging / "task" / name).write_text(sys.argv[3] * 20000)
    (staging / "task.md").write_text(sys.argv[3] * 50000)
    publish(staging, out, "task")
    shutil.rmtree(staging)  # as write_report does
"""


@pytest.mark.slow  # trains (or publishes from two processes): end to end
def test_two_reports_published_at_once_never_show_a_half_written_report_or_a_missing_folder(tmp_path):
    out = tmp_path / "reports"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(out), "60", letter], env=env, stderr=subprocess.PIPE, text=True
        )
        for letter in "xy"
    ]
    seen = 0
    while any(w.poll() is None for w in writers):
        if (out / "task.md").exists():
            assert (out / "task").is_dir()
            text = (out / "task.md").read_text()
            assert len(text) == 50000 and len(set(text)) == 1
            seen += 1
    assert [w.wait() for w in writers] == [0, 0], [w.stderr.read() for w in writers]
    assert seen > 0 and sorted(p.name for p in (out / "task").iterdir()) == ["a.png", "b.png", "summary.json"]
    assert not list(out.glob(".tmp-*"))


# -- the user's data: found before the stores, torch, Lightning and datasets start ---------------------------
def labeled_csv(path: Path, labels, encoding: str = "utf-8", text=lambda i: f"a fine film number {i}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["text,label", *(f'"{text(i)}",{label}' for i, label in enumerate(labels))]
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def broken_jsonl(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"text": f"a fine film number {i}", "label": i % 2}) for i in range(40)]
    lines[6] = '{"text": "broken, "label": 1}'
    path.write_text("\n".join(lines) + "\n")
    return path


def ragged_csv(path: Path) -> Path:
    labeled_csv(path, [i % 2 for i in range(40)])
    lines = path.read_text().splitlines()
    lines[10] += ",extra"
    path.write_text("\n".join(lines) + "\n")
    return path


DATA_CASES = {
    "latin-1": (
        lambda d: labeled_csv(d / "latin.csv", [0, 1] * 20, "latin-1", lambda i: f"caf\u00e9 number {i}"),
        [],
        "{file}: line 2 is not UTF-8 (byte 0xe9 at column 5): save the file as UTF-8 (it may be latin-1 or cp1252)",
    ),
    "malformed jsonl line": (
        lambda d: broken_jsonl(d / "bad.jsonl"),
        [],
        "{file}: line 7: not valid JSON (Expecting ',' delimiter at column 20); each line must be one JSON object",
    ),
    "ragged csv": (
        lambda d: ragged_csv(d / "ragged.csv"),
        [],
        '{file}: line 11 has 3 fields, the header has 2 (text, label): quote a field that holds a comma ("...")',
    ),
    "one class": (
        lambda d: labeled_csv(d / "zeros.csv", [0] * 40),
        [],
        "{file}: every label in column 'label' is 0 (40 rows): a classifier needs two classes at least; check "
        "label_column= and the file",
    ),
    "names and numbers": (
        lambda d: labeled_csv(d / "mixed.csv", ["pos", 1, "neg", 0] * 10),
        [],
        "the labels in column 'label' mix numbers and class names (0, 1, neg, pos): use one kind (integers 0..K-1 "
        "or class names), or set label_map=<label>:<id>,... naming every value",
    ),
    "fold out of range": (
        lambda d: labeled_csv(d / "cv.csv", [0, 1] * 30),
        ["folds=3", "fold=7"],
        "fold=7 is out of range for folds=3: 0..2 runs that fold alone; leave fold unset to run every fold",
    ),
    "fold without folds": (
        lambda d: labeled_csv(d / "cv.csv", [0, 1] * 30),
        ["fold=1"],
        "fold=1 picks one fold of a cross-validation: set folds=K too (e.g. folds=10)",
    ),
    "one fold": (
        lambda d: labeled_csv(d / "twenty.csv", [0, 1] * 10),
        ["folds=1"],
        "folds=1 is not cross-validation: set folds=0 (off) or folds=K with K >= 2 (e.g. 10)",
    ),
    "more folds than rows": (
        lambda d: labeled_csv(d / "twenty.csv", [0, 1] * 10),
        ["folds=50"],
        "folds=50: class 0 has only 10 examples; use at most folds=10",
    ),
    "train_file a folder": (
        lambda d: labeled_csv(d / "inside" / "x.csv", [0, 1] * 10).parent,
        [],
        "train_file={file} is a folder, not a file: name a file in it, or set data_dir={file}",
    ),
    "labels 1..K": (
        lambda d: labeled_csv(d / "stars.csv", [1, 2] * 20),
        [],
        "train split has labels {{1, 2}}, not 0..K-1 (class 0 never occurs): set label_map=1:0,2:1 or remap the "
        "labels to 0..1",
    ),
    "a label missing from label_map": (
        lambda d: labeled_csv(d / "names.csv", ["pos", "neg", "meh"] * 10),
        ["label_map=neg:0,pos:1"],
        "train split has labels missing from label_map: ['meh']",
    ),
    "a test file of one class": (
        lambda d: [labeled_csv(d / "test.csv", [1] * 10), labeled_csv(d / "train.csv", [0, 1] * 20)][1],
        ["test_file={dir}/test.csv"],
        "{dir}/test.csv: every label of the test split is 1 (10 rows): its accuracy could not tell a classifier "
        "from always answering that class; give it examples of every class, or leave the test file out to carve "
        "a stratified test split",
    ),
    "a rare class carved out of training": (
        lambda d: labeled_csv(d / "rare.csv", [0, 0] + [1] * 38),
        [],
        "{file}: once the test and validation splits are carved (at least one row of every class each), the "
        "training rows hold 1 alone: add rows of 0",
    ),
    "too few rows to carve a test split": (
        lambda d: labeled_csv(d / "two.csv", [0, 1]),
        [],
        "the data has no test split (train only): nothing left to train on (2 rows)",
    ),
    "a labeled subset larger than the training rows": (
        lambda d: labeled_csv(d / "forty.csv", [0, 1] * 20),
        ["train_subset=1000"],
        "train_subset=1000 exceeds the 34 training rows",  # 40 less 4 carved for test, 2 for validation
    ),
}
HEAVY = ("torch", "lightning", "mlflow", "datasets", "optuna")
IN_A_FRESH_PROCESS = """
import sys
from bench.cli import main
from bench.errors import UserError
code = main(sys.argv[1:])
heavy = [m for m in {heavy!r} if m in sys.modules]
assert not heavy, heavy
sys.exit(code)
"""


@pytest.mark.parametrize("case", DATA_CASES)
def test_a_data_problem_is_one_line_before_the_stores_torch_and_datasets_start(tmp_path, case):
    make, extra, message = DATA_CASES[case]
    file = make(tmp_path / "in")
    extra = [value.format(dir=tmp_path / "in") for value in extra]
    argv = ["train", "--task", "text-classification", f"train_file={file}", "text_column=text", *extra]
    store = tmp_path / "store"
    result = subprocess.run(  # (the process asserts it imported none of the heavy libraries: 8-10 s before)
        [sys.executable, "-c", IN_A_FRESH_PROCESS.format(heavy=HEAVY), *argv],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env=worker_env(store),
        timeout=60,
    )
    assert (
        result.returncode == 2 and result.stderr.strip() == f"error: {message.format(file=file, dir=tmp_path / 'in')}"
    ), result.stderr
    assert not store.exists()


KNOB_CASES = {
    "TORCH_THREADS": (
        ["train", "--task", "adding"],
        {"TORCH_THREADS": "two"},
        "TORCH_THREADS='two' is not valid: expected a whole number >= 1",
    ),
    "pixels_per_step": (
        ["train", "--task", "seq-mnist", "pixels_per_step=5"],
        {},
        "pixels_per_step=5 must divide 784 (e.g. 1, 7, 28)",
    ),
    "a missing vectors file": (
        ["train", "--task", "sst2", "--variant", "embedding-pretrained", "embedding_vectors={dir}/none.txt"],
        {},
        "word-vectors file {dir}/none.txt does not exist",
    ),
    "a missing corpus file": (
        ["pretrain-embeddings", "corpus_file={dir}/none.csv"],
        {},
        "corpus_file={dir}/none.csv: expected an existing .parquet, .csv or .jsonl file",
    ),
    "an unknown corpus": (
        ["pretrain-embeddings", "--corpus", "poems"],
        {},
        "unknown corpus 'poems'; choose one of: imdb, sst2, rotten-tomatoes (or corpus_file=<.parquet|.csv|.jsonl>)",
    ),
}


@pytest.mark.parametrize("case", KNOB_CASES)
def test_a_knob_or_file_error_is_one_line_before_the_stores_torch_and_lightning_start(tmp_path, case):
    """These ended in the same one line, but after 6-7 s of imports (issue 25: "Errors arrive late")."""
    argv, env, message = KNOB_CASES[case]
    argv = [value.format(dir=tmp_path) for value in argv]
    store = tmp_path / "store"
    result = subprocess.run(
        [sys.executable, "-c", IN_A_FRESH_PROCESS.format(heavy=HEAVY), *argv, "--no-progress"],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env=worker_env(store, env),
        timeout=60,
    )
    assert result.returncode == 2 and result.stderr.strip() == f"error: {message.format(dir=tmp_path)}", result.stderr
    assert not store.exists()


def test_a_sweep_checks_its_data_before_the_stores_too(tmp_path, capsys):
    file = labeled_csv(tmp_path / "zeros.csv", [0] * 40)
    path = write_sweep(tmp_path / "s.yaml", task="text-classification", fixed={"max_length": 16})
    argv = ["sweep", "--task", "text-classification", "--profile", "test", "--file", str(path), "--no-progress"]
    store = tmp_path / "store"
    line = fails(capsys, [*argv, "--storage", f"sqlite:///{store}/o.db", f"train_file={file}", "text_column=text"])
    assert line.startswith(f"error: {file}: every label in column 'label' is 0 (40 rows)")
    assert not store.exists()


def test_a_hub_dataset_neither_cached_nor_reachable_is_one_line_at_once(monkeypatch):
    import socket

    from bench.text_files import check_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"^cannot load stanfordnlp/sst2: HF_HUB_OFFLINE is set and it is not in"):
        check_hub("stanfordnlp/sst2")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)

    def unresolved(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unresolved)
    with pytest.raises(UserError) as raised:
        check_hub("stanfordnlp/sst2")
    assert str(raised.value) == (
        "cannot reach the Hugging Face hub (huggingface.co: name not resolved) to download stanfordnlp/sst2; "
        "use local files: data_dir=<folder with train/test .parquet|.csv|.jsonl>"
    )


def test_fold_k_runs_that_fold_alone(tmp_path, capsys, monkeypatch):
    """docs/own-data.md's `fold=k runs one fold alone`: `folds=3 fold=1` trained all three."""
    import bench.train

    def train(config, **options):
        raise UserError(f"train fold={config.task_settings['fold']} tags={options['tags']}")

    def cross_validate(config, **options):
        raise UserError("cross-validation")

    monkeypatch.setattr(bench.train, "train", train)
    monkeypatch.setattr(bench.train, "cross_validate", cross_validate)
    file = labeled_csv(tmp_path / "cv.csv", [0, 1] * 30)
    base = ["train", "--task", "text-classification", f"train_file={file}", "text_column=text", "folds=3"]
    assert fails(capsys, [*base, "fold=1"]) == "error: train fold=1 tags={'fold': 1, 'folds': 3}"
    assert fails(capsys, base) == "error: cross-validation"


# -- outcomes that are not results --------------------------------------------------------------------------
@pytest.mark.slow  # trains until it diverges
def test_a_diverged_run_is_failed_with_its_reason_in_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tiny = ["T=4", "n_train=256", "n_val=64", "n_test=64", "hidden=16", "max_epochs=2"]
    code = main(["train", "--task", "adding", "--no-progress", "lr=1e9", *tiny])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    match = re.fullmatch(
        r"error: (diverged: validation loss \S+ at epoch 0 is more than 1e\+06 x the baseline 0.167) \(run (\w+): "
        r"FAILED, with this reason\); a smaller lr \(or gradient_clip\) may keep it finite",
        err,
    )
    assert match, err
    run = tracking.client().get_run(match[2])
    assert run.info.status == "FAILED" and run.data.tags["failure_reason"] == f"DivergedError: {match[1]}"


def test_what_a_killed_report_left_is_removed_by_the_next(tmp_path):
    from bench.report import remove_abandoned_staging

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    left = [tmp_path / f".tmp-text-classification-p-1-p{pid}-ab_c9xyz", tmp_path / f".README.md.{pid}"]
    kept = [tmp_path / f".tmp-adding-p{os.getpid()}-k33p1ng", tmp_path / ".tmp-adding-8p3r9v3z"]  # alive; old, young
    for path in left + kept:
        path.mkdir() if path.name.startswith(".tmp") else path.write_text("")
    old = tmp_path / ".tmp-adding-oldname1"  # a name without a pid, two hours old
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    remove_abandoned_staging(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)


@pytest.mark.slow  # trains one run, then a report is killed mid-write
def test_a_report_killed_with_sigkill_leaves_nothing_the_next_report_keeps(tmp_path):
    env = worker_env(tmp_path)
    tiny = ["T=4", "n_train=64", "n_val=32", "n_test=32", "max_epochs=1", "hidden=8"]
    subprocess.run(
        [sys.executable, "-m", "bench", "train", "--task", "adding", "--no-progress", *tiny],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    out = tmp_path / "reports"
    out.mkdir()
    report = [sys.executable, "-m", "bench", "report", "--task", "adding", "--out", str(out)]
    writer = subprocess.Popen(report, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while writer.poll() is None and not list(out.glob(".tmp-*")):
        time.sleep(0.01)
    writer.kill()
    writer.wait()
    assert list(out.glob(".tmp-*")), "the report finished before it could be killed"
    subprocess.run(report, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    assert not list(out.glob(".tmp-*")) and (out / "adding.md").exists()
