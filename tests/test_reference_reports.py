"""The committed reports: no interval leaves its metric's range (a loss or a loss ratio is positive, an
accuracy lies in [0, 1], an accuracy difference in [-100, 100] points)."""

from __future__ import annotations

import re

from tests.sweep_helpers import ROOT

REPORTS = sorted((ROOT / "reports" / "reference").rglob("*.md"))
NUMBER = r"[-+−]?[0-9.]+(?:e[-+]?[0-9]+)?"
INTERVAL = re.compile(rf"\[({NUMBER}), ({NUMBER})\]")


def number(text: str) -> float:
    return float(text.replace("−", "-"))


def table_intervals(text: str):
    """(header, interval) of every interval in a column whose header names a 95% interval."""
    header = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            continue
        for index, (name, cell) in enumerate(zip(header, cells)):
            if "95%" in name:
                metric = name if "(" in name else header[index - 1]  # "95% CI" follows its metric's column
                for low, high in INTERVAL.findall(cell):
                    yield metric, number(low), number(high)


def test_no_interval_in_a_committed_report_leaves_its_metrics_range():
    checked = 0
    for path in REPORTS:
        text = path.read_text()
        for metric, low, high in table_intervals(text):
            checked += 1
            assert 0 <= low <= high, (path.name, metric, low, high)
            if "acc" in metric:
                assert high <= 1, (path.name, metric, low, high)
        for low, high in re.findall(rf"accuracy difference {NUMBER} points \[({NUMBER}), ({NUMBER})\]", text):
            checked += 1
            assert -100 <= number(low) <= number(high) <= 100, (path.name, low, high)
        for low, _ in re.findall(rf"test-loss ratio {NUMBER} \[({NUMBER}), ({NUMBER})\]", text):
            checked += 1
            assert number(low) > 0, (path.name, low)
    assert checked >= 20  # the reference reports' tables were found


def test_the_committed_claims_page_and_each_experiment_reports_verdicts_agree():
    """Every verdict an experiment report states is the one the claims page shows for it (the page may
    only add where the cpu profile's lags could not decide claim 1 or 7)."""
    folder = ROOT / "reports" / "reference"
    page = (folder / "claims.md").read_text()
    compared = 0
    for report in sorted((folder / "claims").glob("*.md")):
        for claim, verdict in re.findall(r"^- \*\*(\w+)\. .*?\*\* — \*\*\*([^*]+)\*\*\*", report.read_text(), re.M):
            section = page.split(f"## {claim}. ")[1].split("\n## ")[0]
            row = next(line for line in section.splitlines() if line.startswith(f"| [{report.stem}]("))
            shown = row.split(" | ")[3]
            assert shown == verdict or (
                claim in ("1", "7") and shown.startswith(f"not decided at CPU scale ({verdict}")
            ), (
                report.name,
                claim,
                verdict,
                shown,
            )
            compared += 1
    assert compared >= 7
