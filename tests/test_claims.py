"""The claims page: built from the claim experiments' records in <folder>/claims/ (several sittings and
stores combine), with the computed claims and the rules; smoke records never give a verdict."""

import json

from bench.claim_rules import BUDGET_LIMITED, NOT_SUPPORTED, NOT_TESTED, SUPPORTED
from bench.claims import overall, write_claims


def record(folder, experiment, verdicts, profile="cpu", decides=True, task="adding"):
    (folder / "claims").mkdir(parents=True, exist_ok=True)
    (folder / "claims" / f"{experiment}.json").write_text(
        json.dumps(
            {
                "experiment": experiment,
                "task": task,
                "profile": profile,
                "claims": list(verdicts),
                "decides": decides,
                "verdicts": [{"id": i, "verdict": v, "key": f"{experiment} number {i}"} for i, v in verdicts.items()],
                "compute": {"wall_seconds": 2460, "load": [2.1, 5.3]},
            }
        )
    )


def test_overall_names_where_each_verdict_comes_from():
    assert overall({"a": NOT_TESTED}) == NOT_TESTED
    assert overall({"a": SUPPORTED, "b": NOT_TESTED}) == "supported (on a)"
    assert overall({"a": SUPPORTED, "b": NOT_SUPPORTED}).startswith("mixed: supported on a, not supported on b")
    assert overall({"a": BUDGET_LIMITED, "b": "inconclusive"}) == "budget-limited (on a; also inconclusive)"


def test_the_claims_page_combines_the_experiments_records_with_their_compute(tmp_path):
    record(tmp_path, "long-memory-adding", {"1": SUPPORTED, "7": SUPPORTED})
    record(tmp_path, "direction-first-token", {"4": NOT_SUPPORTED}, task="first-token")
    text = write_claims(tmp_path).read_text()
    claim1 = text.split("## 1.")[1].split("## 2a.")[0]
    row = "| [long-memory-adding](claims/long-memory-adding.md) | adding | cpu | supported | long-memory-adding number 1 |"
    assert row in claim1 and "41:00 wall, load 2.1–5.3" in claim1
    assert "**Overall: supported (on long-memory-adding)**" in claim1
    assert "**Overall: not supported (on direction-first-token)**" in text.split("## 4.")[1]
    assert "δ for “no effect”: 2 accuracy points or a factor 1.25" in text.split("## 4.")[1]
    claim5 = text.split("## 5.")[1].split("## 6.")[0]
    assert "No experiment in this folder decides it yet" in claim5 and "Overall: not tested" in claim5
    assert "(computed) | – | – | supported" in text.split("## 6.")[1]
    assert "## Rules" in text and "no other exception" in text.lower()


def test_claim_1_undecided_on_cpu_names_the_lag_reached_and_the_gpu_profiles_time(tmp_path):
    record(tmp_path, "long-memory-adding", {"1": BUDGET_LIMITED, "7": SUPPORTED})
    path = tmp_path / "claims" / "long-memory-adding.json"
    data = json.loads(path.read_text())
    data |= {"axis": "T", "values": [10, 100], "gpu_plan": {"values": [10, 200, 600], "seconds_one_worker": 255_812}}
    path.write_text(json.dumps(data))
    text = write_claims(tmp_path).read_text()
    claim1 = text.split("## 1.")[1].split("## 2a.")[0]
    assert (
        "not decided at CPU scale (budget-limited at T ≤ 100; the gpu profile's T = 10, 200, 600: about 71:03:32"
        in claim1
    )
    assert "**Overall: not decided at CPU scale (on long-memory-adding)**" in claim1
    assert "**Overall: supported (on long-memory-adding)**" in text.split("## 7.")[1]


def test_smoke_records_never_reach_the_claims_page(tmp_path):
    record(tmp_path, "direction-first-token", {"4": SUPPORTED}, profile="smoke", decides=False)
    text = write_claims(tmp_path).read_text()
    assert "direction-first-token" not in text and "Overall: supported" not in text.split("## 6.")[0]


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
    headings = [line for line in text.splitlines() if line.startswith("## ") and not line.startswith("## Rules")]
    assert headings == [f"## {number}. {claim.text}" for number, claim in CLAIMS.items()]
    assert all(claim.decide or claim.computed for claim in CLAIMS.values())  # every claim can be decided
    assert Verdict("2a", SUPPORTED).as_record()["claim"] == f"2a. {CLAIMS['2a'].text}"


def write_claims_into_empty_folder() -> str:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        return write_claims(Path(folder)).read_text()
