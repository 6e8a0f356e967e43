"""The claims page: one row per task that tests a claim, an overall line, links into the reports."""

import json

from bench.claims import BUDGET_LIMITED, NOT_SUPPORTED, NOT_TESTED, SUPPORTED, overall, write_claims


def summary(folder, task, verdicts):
    (folder / task).mkdir(parents=True)
    (folder / task / "summary.json").write_text(
        json.dumps(
            {
                "task": task,
                "profile": "cpu",
                "verdicts": [{"id": i, "verdict": v, "key": f"{task} number {i}"} for i, v in verdicts.items()],
            }
        )
    )


def test_overall_names_where_each_verdict_comes_from():
    assert overall({"a": NOT_TESTED}) == NOT_TESTED
    assert overall({"a": SUPPORTED, "b": NOT_TESTED}) == "supported (on a)"
    assert overall({"a": SUPPORTED, "b": NOT_SUPPORTED}).startswith("mixed: supported on a, not supported on b")
    assert overall({"a": BUDGET_LIMITED, "b": "inconclusive"}) == "budget-limited (on a; also inconclusive)"


def test_the_claims_page_has_a_row_per_testing_task_and_links_to_its_verdicts(tmp_path):
    summary(tmp_path, "copy-memory", {"1": BUDGET_LIMITED, "3": NOT_SUPPORTED, "5": NOT_TESTED})
    summary(tmp_path, "temporal-order", {"1": SUPPORTED, "5": NOT_TESTED})
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "summary.json").write_text(json.dumps({"task": "old", "profile": "quick"}))
    text = write_claims(tmp_path).read_text()
    claim1 = text.split("## 1.")[1].split("## 2a.")[0]
    assert "[copy-memory](copy-memory.md#verdicts) | cpu | budget-limited | copy-memory number 1" in claim1
    assert "[temporal-order](temporal-order.md#verdicts) | cpu | supported" in claim1
    assert "**Overall: supported (on temporal-order; also budget-limited)**" in claim1
    claim5 = text.split("## 5.")[1].split("## 6.")[0]
    assert "No task report here tests it (it needs embedding-pretrained" in claim5 and "Overall: not tested" in claim5
    assert "(computed) | – | supported" in text.split("## 6.")[1]
    assert "regenerate them): old." in text


def test_a_task_that_tests_part_of_a_claim_is_shown_but_not_counted(tmp_path):
    summary(tmp_path, "temporal-order", {"1": SUPPORTED})
    (tmp_path / "copy-memory").mkdir()
    record = {"id": "1", "verdict": NOT_TESTED, "key": "long half only: ...", "scope": "long half holds"}
    (tmp_path / "copy-memory" / "summary.json").write_text(
        json.dumps({"task": "copy-memory", "profile": "cpu", "verdicts": [record]})
    )
    claim1 = write_claims(tmp_path).read_text().split("## 1.")[1].split("## 2a.")[0]
    assert "| cpu | not tested (long half holds) | long half only: ... |" in claim1
    assert "**Overall: supported (on temporal-order)**" in claim1


def test_user_reports_go_to_a_git_ignored_folder_apart_from_the_references():
    import subprocess

    from bench.report import REFERENCE, REPORTS
    from tests.sweep_helpers import ROOT

    assert REPORTS != REFERENCE and REFERENCE not in REPORTS.parents and REPORTS not in REFERENCE.parents
    ignored = subprocess.run(["git", "check-ignore", "-q", str(REPORTS / "copy-memory.md")], cwd=ROOT)
    assert ignored.returncode == 0
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "reports/reference/README.md"], cwd=ROOT, capture_output=True
    )
    assert tracked.returncode == 0


def test_rewriting_a_reference_needs_one_task():
    import subprocess
    import sys

    from tests.sweep_helpers import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "bench", "report", "--reference"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--task" in result.stderr


def test_every_claim_is_one_registry_entry_that_the_page_and_the_reports_read():
    """The claims page lists the registry's claims in its order, each with its text, and the verdict a
    judge returns is titled from the same entry."""
    from bench.verdicts import CLAIMS, Verdict

    text = write_claims_into_empty_folder()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [f"## {number}. {claim.text}" for number, claim in CLAIMS.items()]
    assert all((claim.judge is None) != (claim.computed is None) for claim in CLAIMS.values())
    assert Verdict("2a", SUPPORTED).as_record()["claim"] == f"2a. {CLAIMS['2a'].text}"


def write_claims_into_empty_folder() -> str:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        return write_claims(Path(folder)).read_text()
