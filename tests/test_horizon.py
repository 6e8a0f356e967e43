"""Memory horizon: the file, the grid of runs in MLflow (resumable), the horizon rule, the report
sections and the verdicts built from them."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from bench import tracking
from bench.errors import UserError
from bench.horizon import run_horizon, tuned_configs
from bench.horizon_rule import FAIL, PASS, UNKNOWN, Cell, add_run, arm_horizon, describe_horizon, judge
from bench.horizon_spec import load_horizon
from bench.registry import get_task
from bench.results import horizon_runs
from bench.stats import summarize
from bench.sweep_config import SWEEP_DIR
from tests.records import record
from tests.sweep_helpers import ROOT, worker_env

SHIPPED = sorted(p.stem for p in (SWEEP_DIR / "horizon").glob("*.yaml"))


TEST_PROFILE = {"values": [3, 5], "seeds": 2, "max_epochs": 1, "settings": {"n_train": 32, "n_val": 16, "n_test": 16}}


def write_horizon(path, **overrides):
    spec = {
        "task": "copy-memory",
        "axis": "T",
        "margin": 0.1,
        "configs_from": None,
        "fixed": {"lr": 0.01, "hidden": 8, "batch_size": 16, "embedding_size": 4},
        "variants": ["simple"],
        "cells": ["rnn", "gru"],
        "ablation": {"irnn": {"activation": "relu", "init": "identity"}},
        "profiles": {"test": TEST_PROFILE},
    }
    spec.update(overrides)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize("task", SHIPPED)
@pytest.mark.parametrize("profile", ["cpu", "gpu", "smoke"])
def test_shipped_horizon_files_load(task, profile):
    spec = load_horizon(task, profile)
    assert spec.values == sorted(spec.values) and spec.seeds
    assert {a.label for a in spec.arms} >= {"simple/rnn", "simple/lstm"}


def test_horizon_seeds_given_as_a_count_leave_out_the_search_seed():
    assert load_horizon("copy-memory", "cpu").seeds == [1, 2, 3, 4, 5]


def test_the_resolved_sweep_configurations_are_part_of_the_fingerprint(tmp_path):
    spec = load_horizon("copy-memory", "test", write_horizon(tmp_path / "h.yaml"))
    plain = spec.fingerprint
    spec.tuned = {}
    assert spec.fingerprint == plain  # no sweep: the file alone
    spec.tuned = {("simple", "rnn"): ({"lr": 0.01}, "sweep cpu best trial 3")}
    first = spec.fingerprint
    spec.tuned = {("simple", "rnn"): ({"lr": 0.02}, "sweep cpu best trial 5")}
    assert len({plain, first, spec.fingerprint}) == 3  # the sweep's best moved on: a fresh set of runs


def test_the_same_file_keeps_its_fingerprint(tmp_path):
    # Runs are matched to their file by the fingerprint: a change of what it hashes, or of how, leaves
    # every horizon run already in a store unmatched (re-run from scratch). Editing the shipped file
    # does so on purpose: update its value here with the edit.
    assert load_horizon("copy-memory", "test", write_horizon(tmp_path / "h.yaml")).fingerprint == "b80abcfe"
    steps = write_horizon(tmp_path / "s.yaml", max_steps=100, eval_every_steps=10, patience_steps=30)
    assert load_horizon("copy-memory", "test", steps).fingerprint == "0d0f6499"
    assert load_horizon("copy-memory", "cpu").fingerprint == "d5b77097"


def test_a_failed_run_that_was_retried_counts_once_by_its_result():
    from bench.horizon_rule import collect

    def run(state, loss=None, seed="1"):
        metrics = {"baseline/loss": 0.69} | ({"test/loss": loss} if loss is not None else {})
        tags = {"state": state, "arm": "simple/lstm", "horizon_value": "10", "seed": seed}
        return record(metrics=metrics, tags=tags)

    cell = collect(get_task("copy-memory"), [run("failed"), run("complete", 0.2), run("failed", seed="2")])[
        "simple/lstm"
    ][10]
    assert (cell.values, cell.failed) == ([0.2], 1)  # seed 1's retry replaced its failure; seed 2 is a miss


def test_a_profiles_ablation_arms_replace_the_files(tmp_path):
    both = {"irnn": {"activation": "relu", "init": "identity"}, "linear": {"activation": "linear"}}
    path = write_horizon(
        tmp_path / "h.yaml",
        ablation=both,
        profiles={"test": {**TEST_PROFILE, "ablation": {"linear": {"activation": "linear"}}}},
    )
    assert [a.label for a in load_horizon("copy-memory", "test", path).arms] == [
        "simple/rnn",
        "simple/gru",
        "simple/rnn/linear",
    ]


def test_a_horizon_file_names_cell_groups(tmp_path):
    path = write_horizon(tmp_path / "h.yaml", cells=["gated", "reference"], ablation={})
    assert [a.label for a in load_horizon("copy-memory", "test", path).arms] == [
        "simple/lstm",
        "simple/gru",
        "simple/rnn",
    ]


@pytest.mark.parametrize(
    "change,message",
    [
        ({"values": []}, "values"),
        ({"margin": 1.5}, "margin"),
        ({"axis": "length"}, "axis"),
        ({"cells": ["transformer"]}, "cells (profile test): cell or group names, a non-empty list from rnn"),
        ({"ablation": {"tanh3": {"activation": "sigmoid"}}}, "unknown activation"),
        ({"bogus": 1}, "unknown key bogus"),
        ({"settings": [1]}, "settings (profile test): a mapping of task setting: value (got [1])"),
        (
            {"seeds": [-1]},
            "seeds (profile test): a positive count or a non-empty list of non-negative integer seeds (got -1)",
        ),
        ({"max_steps": 100}, "eval_every_steps (profile test): a step budget (max_steps) needs a validation interval"),
    ],
)
def test_bad_horizon_files_fail_in_one_line(tmp_path, change, message):
    path = (
        write_horizon(tmp_path / "h.yaml", **change)
        if not {"values", "seeds", "settings"} & set(change)  # (keys the test profile sets)
        else write_horizon(tmp_path / "h.yaml", profiles={"test": {**TEST_PROFILE, **change}})
    )
    with pytest.raises(UserError) as error:
        load_horizon("copy-memory", "test", path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_cli_rejects_a_bad_horizon_file_with_exit_2(tmp_path):
    path = write_horizon(tmp_path / "h.yaml", margin=-1)
    result = subprocess.run(
        [sys.executable, "-m", "bench", "horizon", "--task", "copy-memory", "--profile", "test", "--file", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=worker_env(tmp_path),
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "margin" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_horizon_rule():
    cells = {10: Cell([0.5, 0.6], 1.0), 20: Cell([0.7, 0.72], 1.0), 50: Cell([1.0, 1.0], 1.0)}
    assert arm_horizon(cells, 0.1, False) == (20, True)
    cells[100] = Cell([0.2, 0.2], 1.0)  # passes again after a miss: reported, flagged as not monotone
    assert arm_horizon(cells, 0.1, False) == (100, False)


def test_a_mean_under_the_threshold_with_a_wide_interval_does_not_pass():
    narrow, wide = Cell([0.86, 0.88, 0.87, 0.86, 0.88], 1.0), Cell([0.70, 1.05, 0.75, 1.00, 0.85], 1.0)
    assert judge(narrow, 0.1, False) == PASS  # mean 0.87, upper bound 0.88 < 0.9
    assert summarize(wide.values).mean < 0.9 and judge(wide, 0.1, False) == FAIL  # mean 0.87, bound 1.0


def test_failed_and_diverged_runs_are_misses_and_one_finished_seed_is_unknown():
    good = [0.5, 0.52, 0.51]
    assert judge(Cell(good, 1.0), 0.1, False) == PASS
    assert judge(Cell(good, 1.0, failed=2), 0.1, False) == FAIL  # two misses at the baseline pull the bound up
    assert judge(Cell(good, 1.0, diverged=2), 0.1, False) == FAIL
    assert judge(Cell([0.1], 1.0, diverged=3), 0.1, False) == UNKNOWN  # fewer than 2 finished seeds
    assert arm_horizon({10: Cell([0.1], 1.0, diverged=1)}, 0.1, False) == (None, True)
    assert "unknown at 10" in describe_horizon({10: Cell([0.1], 1.0)}, 0.1, False)


def test_accuracy_passes_on_the_lower_bound():
    assert judge(Cell([0.99, 1.0, 0.98], 0.25), 0.1, True) == PASS  # threshold 0.25 + 0.1 x 0.75
    assert judge(Cell([0.50, 0.20, 0.40], 0.25), 0.1, True) == FAIL


@pytest.mark.slow
def test_horizon_runs_every_arm_length_and_seed_once_then_resumes(tmp_path, capsys, monkeypatch):
    from bench import report_cells
    from bench.report import write_report

    spec = load_horizon("copy-memory", "test", write_horizon(tmp_path / "h.yaml"))
    counts = run_horizon(spec)
    assert counts["complete"] + counts["diverged"] == 3 * 2 * 2 and counts["failed"] == 0
    progress = capsys.readouterr().err  # not a terminal: plain lines, the last one at 12 of 12 runs
    assert "\r" not in progress and progress.splitlines()[-1].startswith("horizon copy-memory [test] · 12/12 runs 100%")
    runs = horizon_runs("copy-memory", "test")
    keys = sorted((r.tags["arm"], r.tags["horizon_value"], r.tags["seed"]) for r in runs)
    assert len(keys) == len(set(keys)) == 12
    irnn = next(r for r in runs if r.tags["arm"] == "simple/rnn/irnn")
    assert irnn.params["activation"] == "relu" and irnn.params["init"] == "identity"
    assert irnn.params["T"] in ("3", "5") and irnn.params["n_train"] == "32"
    artifacts = {a.path for a in tracking.client().list_artifacts(irnn.run_id, "probe")}
    assert artifacts == {"probe/gradient_probe.csv", "probe/gradient_probe.png"}
    assert "probe/dhT_dx_trained_far_over_near" in irnn.metrics
    assert run_horizon(spec, show_progress=False)["skipped"] == 12  # resume: nothing is trained twice
    assert len(horizon_runs("copy-memory", "test")) == 12

    report = write_report("copy-memory", out_dir=tmp_path / "reports").read_text()
    for section in (
        "## Memory horizon",
        "## Activation ablation",
        "## Gradient-decay probe",
        "## Zero input: tanh vs linear",
        "## Verdicts",
    ):
        assert section in report
    for image in ("horizon", "ablation", "gradient_probe", "zero_input"):
        assert (tmp_path / "reports" / "copy-memory" / f"{image}.png").stat().st_size > 1000
    row = next(line for line in report.splitlines() if line.startswith("| simple/gru |"))
    assert row.endswith("|") and len(row.split("|")) == 2 + 2 + 2  # arm, two lengths, horizon

    monkeypatch.setattr(report_cells, "PROFILE", "test")  # the cells page over this one task's horizon
    monkeypatch.setattr(report_cells, "TASKS", ("copy-memory",))
    page = report_cells.write_cells_page(tmp_path / "reports").read_text()
    assert "| simple/gru |" in page and "## Training step time" in page and "12 runs" in page
    assert "load " in page and "load not recorded" not in page

    edited = load_horizon(
        "copy-memory",
        "test",
        write_horizon(
            tmp_path / "h2.yaml", cells=["rnn"], ablation={}, fixed={"lr": 0.02, "hidden": 8, "batch_size": 16}
        ),
    )
    assert edited.fingerprint != spec.fingerprint
    assert run_horizon(edited, show_progress=False)["complete"] == 4  # changed knobs: a fresh set of runs


@pytest.mark.slow
def test_configurations_come_from_the_sweeps_best_trial(smoke_sweep_store, monkeypatch, tmp_path):
    for key, value in worker_env(smoke_sweep_store).items():
        if key.startswith(("MLFLOW_", "RNNBENCH_")):
            monkeypatch.setenv(key, value)
    spec = load_horizon(
        "copy-memory", "test", write_horizon(tmp_path / "h.yaml", configs_from="test", variants=["simple", "stacked"])
    )
    tuned = tuned_configs(spec)
    assert set(tuned) == {(v, c) for v in ("simple", "stacked") for c in ("rnn", "gru")}
    experiment = tracking.client().get_experiment_by_name("copy-memory")
    for (variant, cell), (knobs, source) in tuned.items():
        final = tracking.client().search_runs(
            [experiment.experiment_id], f"tags.stage = 'final' and tags.variant = '{variant}' and tags.cell = '{cell}'"
        )[0]
        best = tracking.client().search_runs(
            [experiment.experiment_id],
            f"tags.stage = 'trial' and tags.variant = '{variant}' and tags.cell = '{cell}' "
            f"and tags.optuna_trial = '{final.data.tags['best_trial']}'",
        )[0]
        if best.data.metrics["convergence/still_improving"]:  # budget-limited: its noise is not handed on
            assert knobs == {} and source.endswith("was still improving at the end of its budget")
            continue
        assert set(knobs) == {"lr", "hidden"}  # the searched knobs of the smoke sweep
        assert all(final.data.params[k] == v for k, v in knobs.items())
        assert source.startswith("sweep test best trial")


# -- verdicts on constructed evidence -----------------------------------------------------------------
def horizon_data(table):
    from bench.horizon_rule import HorizonData

    return HorizonData("test", table, [], 0.1, "T", 3)


def length_grid(cell, short_losses, long_losses, short_left, long_left, long_steps=4000.0):
    """Temporal-order sweep finals of one cell at T=10 and T=50 (cross-entropy against log 4), each run with
    the step its validation left the baseline (-1: never)."""

    def finals(losses, length, left, steps):
        runs = [
            record(
                metrics={
                    "test/loss": v,
                    "baseline/loss": 1.386,
                    "convergence/still_improving": 0.0,
                    "convergence/left_baseline_step": left,
                    "steps_trained": steps,
                },
                tags={"state": "complete"},
                params={"max_steps": "4000", "T": str(length)},
            )
            for v in losses
        ]
        return SimpleNamespace(
            variant="simple", cell=cell, grid=f"T={length}", finished_finals=runs, diverged_finals=[]
        )

    return [finals(short_losses, 10, short_left, 1000.0), finals(long_losses, 50, long_left, long_steps)]


SOLVED, FLAT_AT_50 = [0.010, 0.012, 0.011, 0.009, 0.010], [1.385, 1.386, 1.3855, 1.3858, 1.3852]


@pytest.mark.parametrize("flat_steps, verdict", [(4000.0, "supported"), (1000.0, "budget-limited")])
def test_a_reports_claims_1_and_7_use_the_claim_experiments_rules(flat_steps, verdict):
    """The tanh RNN flat at T=50, the GRU learning it by step 500: supported only when the plateau lasted
    at least 5x the GRU's escape (the claims page's one plateau rule), for both claims."""
    from bench.verdicts import memory_claim

    studies = length_grid("rnn", SOLVED, FLAT_AT_50, 250.0, -1.0, flat_steps)
    studies += length_grid("gru", SOLVED, SOLVED, 250.0, 500.0)
    task = get_task("temporal-order")
    for claim in ("1", "7"):
        result = memory_claim(task, studies, None, claim)
        assert result.verdict == verdict, (claim, result.evidence)
        assert "runs: sweep finals over the T grid" in result.evidence


def test_a_report_without_two_lengths_does_not_test_claim_1():
    from bench.verdicts import memory_claim

    assert memory_claim(get_task("adding"), [], None, "1").verdict == "not tested"


def test_a_horizon_that_contradicts_the_sweep_finals_is_flagged():
    from bench.verdicts import contradictions

    final = record(metrics={"test/loss": 0.017, "baseline/loss": 0.1}, tags={"state": "complete"}, params={"T": "50"})
    swept = SimpleNamespace(
        variant="simple", cell="rnn", grid="", finished_finals=[final, final, final], diverged_finals=[]
    )
    flagged = contradictions(get_task("adding"), [swept], horizon_data({"simple/rnn": {50: Cell([0.1, 0.1], 0.1)}}))
    assert len(flagged) == 1 and "horizon says fail" in flagged[0] and "sweep finals say pass" in flagged[0]


def study(variant, cell, values, **metrics):
    runs = [
        record(metrics={"test/loss": v, "baseline/loss": 0.693, **metrics}, tags={"state": "complete"}) for v in values
    ]
    return SimpleNamespace(variant=variant, cell=cell, grid="", finished_finals=runs, diverged_finals=[])


@pytest.mark.parametrize(
    "stacked,expected",
    [
        ([0.10, 0.11, 0.09, 0.10, 0.105], "supported"),
        ([0.50, 0.51, 0.49, 0.50, 0.505], "not supported"),
        ([0.30, 0.305, 0.298, 0.302, 0.299], "not supported"),  # within a factor 1.25: no effect larger than δ
        ([0.15, 0.45, 0.2, 0.6, 0.3], "inconclusive"),
    ],
)
def test_a_reports_claim_3_uses_the_claim_experiments_rules(stacked, expected):
    from bench.verdicts import contrast_claim

    one = [0.30, 0.31, 0.29, 0.30, 0.3]
    studies = [study("simple", "lstm", one), study("stacked", "lstm", stacked)]
    verdict = contrast_claim(get_task("copy-memory"), studies, "stacked", "3")
    assert verdict.verdict == expected, verdict.evidence
    assert "test-loss ratio" in verdict.key and "Holm p =" in verdict.key


def test_a_reports_depth_loss_resting_on_still_improving_runs_is_budget_limited():
    from bench.verdicts import BUDGET_LIMITED, contrast_claim

    studies = [
        study("simple", "lstm", [0.30, 0.31, 0.29, 0.30, 0.3]),
        study("stacked", "lstm", [0.50, 0.51, 0.49, 0.50, 0.505], **{"convergence/still_improving": 1.0}),
    ]
    verdict = contrast_claim(get_task("copy-memory"), studies, "stacked", "3")
    assert verdict.verdict == BUDGET_LIMITED and "still improving" in verdict.key


def test_flat_is_read_from_validation_history_when_a_run_has_it():
    """One definition of flat: the step validation left the baseline (-1: never); the test value only
    for runs trained before that step was recorded."""
    task = get_task("adding")

    def run(loss, left=None):
        metrics = {"test/loss": loss, "baseline/loss": 0.1667, "steps_trained": 4000.0}
        metrics.update({"convergence/left_baseline_step": left} if left is not None else {})
        return record(metrics=metrics, tags={"state": "complete"})

    cell = Cell()
    add_run(task, cell, run(0.1630, left=-1.0))  # 2% under the baseline on test, but validation never left it
    add_run(task, cell, run(0.1667, left=500.0))  # validation left it at step 500
    add_run(task, cell, run(0.1667))  # no history step: the test value decides
    assert cell.at_baseline == 2 and cell.flat_steps == [4000.0, 4000.0] and cell.left_steps == [-1.0, 500.0]


def test_a_horizon_plan_times_every_arm_and_length_and_starts_nothing(tmp_path, monkeypatch, capsys):
    from bench.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'never.db'}")
    assert main(["horizon", "--task", "adding", "--profile", "smoke", "--plan", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "T=3: at most" in out and "T=6: at most" in out
    assert "estimated at most" in out and "with 2 jobs" in out
    assert not (tmp_path / "never.db").exists()


def test_the_ablation_section_names_only_the_arms_that_ran(tmp_path):
    from bench.horizon_rule import HorizonData
    from bench.report_diagnostics import ablation_section

    table = {"simple/rnn": {10: Cell([0.5, 0.5], 1.0)}, "simple/rnn/irnn": {10: Cell([0.4, 0.45], 1.0)}}
    report = SimpleNamespace(
        task=get_task("adding"), horizon=HorizonData("smoke", table, [], 0.1, "T", 2), images=tmp_path
    )
    text = "\n".join(ablation_section(report))
    assert "`irnn` (ReLU with identity-initialised" in text
    assert "linear" not in text and "`relu`" not in text


def test_a_reports_claim_1_counts_a_retried_failure_once_and_an_interrupted_run_not_at_all():
    from bench.verdicts import lengths_table

    def run(value, seed, state, loss=0.01):
        tags = {"state": state, "arm": "simple/rnn", "horizon_value": str(value), "seed": str(seed)}
        return record(tags=tags, metrics={"test/loss": loss, "baseline/loss": 0.1667})

    runs = [run(10, 1, "complete"), run(10, 2, "failed"), run(10, 2, "complete"), run(10, 3, "interrupted")]
    runs += [run(50, 1, "complete", 0.16), run(50, 2, "complete", 0.16)]
    horizon = SimpleNamespace(runs=runs, axis="T", margin=0.1, profile="cpu")
    table, axis, _, _ = lengths_table(get_task("adding"), [], horizon)
    short = table["simple/rnn"][10]
    assert (len(short.values), short.misses, axis) == (2, 0, "T")
