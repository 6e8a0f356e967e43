"""Reports: built from a smoke sweep, checked against MLflow independently; bad input leaves nothing."""

import re
import statistics
import subprocess
import sys
import time

import pytest

from bench import tracking
from bench.claims import write_claims
from bench.report import write_index, write_report
from tests.sweep_helpers import ROOT, worker_env

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def store_env(smoke_sweep_store, monkeypatch):
    swept = smoke_sweep_store
    for key, value in worker_env(swept).items():
        if key.startswith(("MLFLOW_", "RNNBENCH_")):
            monkeypatch.setenv(key, value)
    return swept


def table_rows(markdown: str) -> dict[tuple[str, str], list[str]]:
    section = markdown.split("## Results", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    return {(r[0].strip(), r[1].strip()): dict(zip(header, (c.strip() for c in r))) for r in rows[1:]}


@pytest.mark.slow
def test_report_table_matches_the_runs_in_mlflow(store_env, tmp_path):
    report = write_report("copy-memory", out_dir=tmp_path)
    rows = table_rows(report.read_text())
    client = tracking.client()
    experiment = client.get_experiment_by_name("copy-memory")
    finals = client.search_runs([experiment.experiment_id], "tags.stage = 'final'")
    assert set(rows) == {(v, c) for v in ("simple", "stacked") for c in ("rnn", "gru")}
    for (variant, cell), row in rows.items():
        losses = [
            r.data.metrics["test/loss"]
            for r in finals
            if r.data.tags["variant"] == variant and r.data.tags["cell"] == cell
        ]
        mean, sd = statistics.mean(losses), statistics.stdev(losses)
        assert row["test/loss mean ± sd"] == f"{mean:.4f} ± {sd:.4f}" or row["test/loss mean ± sd"].startswith(
            f"{mean:.4f} ± {sd:.4g}"
        ), row
        assert row["n"] == "2"
        assert row["baseline"] == f"{finals[0].data.metrics['baseline/loss']:.4f}"
        accuracy = statistics.mean(
            r.data.metrics["test/recall_acc"]
            for r in finals
            if r.data.tags["variant"] == variant and r.data.tags["cell"] == cell
        )
        assert row["test/recall_acc mean ± sd"].startswith(f"{accuracy:.4f}")
        trials = client.search_runs(
            [experiment.experiment_id], f"tags.stage = 'trial' and tags.variant = '{variant}' and tags.cell = '{cell}'"
        )
        best = min(r.data.metrics["val/loss_best"] for r in trials if r.data.tags["state"] == "complete")
        assert row["best val"] == f"{best:.4f}"
        ours = [r for r in finals if r.data.tags["variant"] == variant and r.data.tags["cell"] == cell]
        improving = sum(int(r.data.metrics["convergence/still_improving"]) for r in ours)
        assert row["still improving"].startswith(f"{improving}/{len(ours)}")  # the convergence signal, per cell


@pytest.mark.slow
def test_report_images_are_png_and_every_link_resolves(store_env, tmp_path):
    report = write_report("copy-memory", out_dir=tmp_path)
    index, claims = write_index(tmp_path), write_claims(tmp_path)  # what `make report` writes
    for document in (report, index, claims):
        for target in re.findall(r"\]\(([^)]+)\)", document.read_text()):
            assert (document.parent / target.split("#")[0]).exists(), target
    assert index.read_text().index("(claims.md)") < index.read_text().index("(copy-memory.md)")  # claims first
    assert "make claims" in claims.read_text()  # the page reads the claim experiments, not task reports
    assert "## Verdicts" in report.read_text()
    images = list((tmp_path / "copy-memory").glob("*.png"))
    # no horizon runs in this store: of the long-range sections only the zero-input computation
    assert {p.name for p in images} == {
        "test_metric.png",
        "val_curves.png",
        "optimization_history.png",
        "zero_input.png",
    }
    for image in images:
        assert image.read_bytes()[:8] == PNG_SIGNATURE and image.stat().st_size > 1000
    assert "[copy-memory](copy-memory.md)" in index.read_text()


@pytest.mark.slow
def test_report_says_what_is_missing_while_a_sweep_is_incomplete(store_env, tmp_path):
    client = tracking.client()
    experiment = client.get_experiment_by_name("copy-memory")
    final = client.search_runs([experiment.experiment_id], "tags.stage = 'final'")[0]
    client.set_tag(final.info.run_id, "state", "failed")  # as if one final seed had not finished
    try:
        text = write_report("copy-memory", out_dir=tmp_path).read_text()
    finally:
        client.set_tag(final.info.run_id, "state", "complete")
    assert "Incomplete" in text and "1/2 final seeds" in text


@pytest.mark.slow
def test_rewriting_a_report_replaces_it(store_env, tmp_path):
    first = write_report("copy-memory", out_dir=tmp_path).read_text()
    second = write_report("copy-memory", out_dir=tmp_path).read_text()
    assert first.split("\n", 3)[3] == second.split("\n", 3)[3]  # same content below the timestamp line
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("case", ["unknown task", "empty store", "unreachable store"])
def test_report_bad_input_exits_2_and_leaves_no_file(tmp_path, case):
    args = ["--task", "nope" if case == "unknown task" else "copy-memory", "--out", str(tmp_path / "out")]
    env = worker_env(tmp_path)
    if case == "unreachable store":
        env.update(
            MLFLOW_TRACKING_URI="http://127.0.0.1:9",
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
            MLFLOW_HTTP_REQUEST_TIMEOUT="3",
        )
    start = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "bench", "report", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    expected = {
        "unknown task": "unknown task 'nope'",
        "empty store": "no runs for task copy-memory in",
        "unreachable store": "cannot reach the MLflow store",
    }[case]
    assert expected in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "mlflow.db").exists()
    assert time.time() - start < 60


def test_compute_time_counts_parallel_workers_once_and_skips_pauses_between_sittings():
    from bench.markdown import compute_text
    from bench.results import compute_time
    from tests.records import record

    def run(start_s, end_s):
        return record(start_time=start_s * 1000, end_time=end_s * 1000)

    # two workers overlap on 10-110 and 60-160; a second sitting an hour later; one run still running
    runs = [
        run(10, 110),
        run(60, 160),
        run(3760, 3810),
        record(start_time=1, end_time=None, status="RUNNING"),
    ]
    assert compute_time(runs) == (200.0, 250.0, 3)
    assert compute_text(*compute_time(runs)).startswith("3:20 of wall time while a run trained")


def test_the_splits_line_names_each_layout_part_once_across_a_grid_of_subsets():
    # sst2's reference said "splits as given" once per study of its train_subset grid
    from bench.report import data_lines
    from tests.records import record

    def run(layout):
        return record(tags={tracking.Tag.DATA_LAYOUT: layout})

    given = "train, validation, test splits as given"
    runs = [run(given), run(f"{given}; a stratified subset of 500 training rows"), run(given)]
    runs.append(run(f"{given}; a stratified subset of 2000 training rows"))
    (line,) = data_lines(runs, None)
    assert line.count(given) == 1
    assert "subset of 500 training rows" in line and "subset of 2000 training rows" in line
