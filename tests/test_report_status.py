"""A report says what it is before any number: a smoke run is labelled and draws no conclusions, a
partial sweep lists every planned study with its state. The slow tests work on a copy of the smoke
sweep's store, so the shared one is never changed; the fast ones on runs made in memory."""

import json
import shutil

import pytest

from bench import tracking
from bench.report import write_index, write_report
from bench.report_status import SMOKE_NOTE, is_smoke, smoke_banner, sweep_status
from bench.results import StudyResults
from bench.run_keys import Tag
from tests.records import record


def run(state: str = "complete", tags: dict | None = None, params: dict | None = None):
    return record(tags={Tag.STATE: state, **(tags or {})}, params=params)


def study(
    variant: str, cell: str, trials: int, finals: int, plan: list[str] | None = None, planned_at: int = 0
) -> StudyResults:
    tags = {Tag.SWEEP_STUDIES: json.dumps(plan), Tag.SWEEP_STUDIES_AT: str(planned_at)} if plan else {}
    parent = run("", tags, {"trials": "3", "final_seeds": "[0, 1]"})
    return StudyResults(
        f"t:smoke:{variant}:{cell}",
        variant,
        cell,
        "smoke",
        parent=parent,
        trials=[run() for _ in range(trials)],
        finals=[run() for _ in range(finals)],
    )


def test_status_lists_planned_studies_not_started_with_the_planned_totals():
    plan = ["simple/rnn", "simple/gru", "stacked/rnn", "stacked/gru"]
    lines, incomplete = sweep_status([study("simple", "rnn", 3, 2, plan), study("simple", "gru", 1, 0, plan)])
    text = "\n".join(lines)
    assert incomplete
    assert "1 of 4 planned studies done, 6 of 20 planned runs finished (30%)" in text
    assert "| simple/rnn | done | 3/3 trials, 2/2 final seeds |" in text
    assert "| simple/gru | running | 1/3 trials, 0/2 final seeds |" in text
    assert "| stacked/rnn | not started | 0/3 trials, 0/2 final seeds |" in text
    assert "| stacked/gru | not started |" in text


def test_status_follows_the_latest_sitting_s_plan_when_a_resume_shrank_the_grid():
    # The IMDB reference: its first sitting planned 3 subset sizes, the resume 2; the report said
    # "Incomplete: 8 of 12 planned studies" for a finished sweep.
    first, resumed = ["simple/rnn", "simple/gru", "stacked/rnn"], ["simple/rnn", "simple/gru"]
    studies = [
        study("simple", "rnn", 3, 2, first, planned_at=100),
        study("simple", "gru", 3, 2, resumed, planned_at=200),
    ]
    lines, incomplete = sweep_status(studies)
    assert not incomplete and "Complete: all 2 planned studies" in "\n".join(lines)


def test_status_of_a_finished_sweep_is_one_line():
    lines, incomplete = sweep_status([study("simple", "rnn", 3, 2, ["simple/rnn"])])
    assert not incomplete and "Complete: the 1 planned study finished its 3 trials and 2 final seeds (5 runs)." in (
        "\n".join(lines)
    )


def test_smoke_banner_names_the_profile_and_what_is_left_out():
    assert is_smoke("smoke") and is_smoke("horizon smoke") and not is_smoke("cpu") and not is_smoke(None)
    banner = " ".join(smoke_banner("smoke", "2 trials per study"))
    assert f"this report {SMOKE_NOTE}" in banner and "no findings, no importances and no verdicts" in banner


@pytest.fixture
def store_copy(smoke_sweep_store, tmp_path, monkeypatch):
    shutil.copy(smoke_sweep_store / "mlflow.db", tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("RNNBENCH_ARTIFACTS", str(smoke_sweep_store / "artifacts"))
    client = tracking.client()
    experiment = client.get_experiment_by_name("copy-memory")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


@pytest.mark.slow
def test_a_smoke_report_is_labelled_and_draws_no_conclusions(store_copy, tmp_path):
    client, runs = store_copy
    for run in runs:
        client.set_tag(run.info.run_id, "profile", "smoke")
    out = tmp_path / "reports"
    text = write_report("copy-memory", "smoke", out).read_text()
    banner = text.split("## Setup")[0]
    assert f"this report {SMOKE_NOTE}" in banner
    assert "fANOVA" not in text and "statistically supported" not in text and "Holm-adjusted" not in text
    for section in ("Hyperparameter importance", "Findings", "Verdicts"):
        body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
        assert SMOKE_NOTE in body and "supported" not in body, (section, body)
    row = next(line for line in write_index(out).read_text().splitlines() if line.startswith("| [copy-memory]"))
    assert SMOKE_NOTE in row and "best:" not in row


@pytest.mark.slow
def test_a_report_of_the_same_runs_under_another_profile_keeps_its_conclusions(store_copy, tmp_path):
    text = write_report("copy-memory", "test", tmp_path).read_text()
    assert SMOKE_NOTE not in text and "fANOVA" in text and "## Findings" in text


@pytest.mark.slow
def test_a_partial_report_lists_every_planned_study_with_its_state(store_copy, tmp_path):
    client, runs = store_copy
    parents = [r for r in runs if r.data.tags.get("stage") == "study"]
    recorded = json.loads(parents[0].data.tags[Tag.SWEEP_STUDIES])
    assert sorted(recorded) == ["simple/gru", "simple/rnn", "stacked/gru", "stacked/rnn"]  # what the sweep planned
    # A sweep of 6 studies, interrupted: two never started, one final seed of stacked/gru missing.
    for parent in parents:
        client.set_tag(
            parent.info.run_id, Tag.SWEEP_STUDIES, json.dumps(recorded + ["bidirectional/rnn", "bidirectional/gru"])
        )
    final = next(
        r
        for r in runs
        if r.data.tags.get("stage") == "final" and r.data.tags["variant"] == "stacked" and r.data.tags["cell"] == "gru"
    )
    client.set_tag(final.info.run_id, "state", "failed")
    text = write_report("copy-memory", "test", tmp_path).read_text()
    status = text.split("## Status", 1)[1].split("\n## ", 1)[0]
    assert "3 of 6 planned studies done" in status
    assert "15 of 24 planned runs finished" in status
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in status.splitlines()
        if line.startswith("| ") and not line.startswith("| study")
    }
    assert rows == {
        "simple/rnn": "done",
        "simple/gru": "done",
        "stacked/rnn": "done",
        "stacked/gru": "running",
        "bidirectional/rnn": "not started",
        "bidirectional/gru": "not started",
    }
    assert "- **Hardware**:" in text and not text.split("- **Hardware**:")[1].splitlines()[0].rstrip().endswith("?")


@pytest.mark.slow
def test_a_complete_report_says_so_in_one_line(store_copy, tmp_path):
    text = write_report("copy-memory", "test", tmp_path).read_text()
    status = text.split("## Status", 1)[1].split("\n## ", 1)[0]
    assert "Complete: all 4 planned studies finished their 2 trials and 2 final seeds (16 runs)." in status
