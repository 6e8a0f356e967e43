"""Claim experiments: every shipped file loads in every profile and says what it decides; bad files fail in
one line; the `solved` stop ends a run as converged; a smoke `make claims` runs, resumes, and gives no
verdict in its report or on the claims page."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from bench.claim_spec import CLAIMS_DIR, VERDICT_PROFILES, experiment_paths, load_claim
from bench.errors import UserError
from bench.verdicts import CLAIMS
from tests.sweep_helpers import ROOT, worker_env

SHIPPED = sorted(CLAIMS_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_claim_experiment_loads_in_each_profile(path):
    for profile in ("cpu", "gpu", "smoke"):
        spec = load_claim(path, profile)
        assert spec.claims and all(claim in CLAIMS for claim in spec.claims)
        assert spec.why.strip() and spec.seeds and spec.arms
        assert spec.decides == (profile in VERDICT_PROFILES)
        if profile == "cpu":
            assert len(spec.seeds) >= 5  # seeds chosen for power, not 3


def test_every_claim_but_the_computed_one_has_an_experiment_that_decides_it():
    decided = {claim for path in SHIPPED for claim in load_claim(path, "cpu").claims}
    assert decided == {number for number, claim in CLAIMS.items() if claim.decide is not None}
    assert experiment_paths("4") == [CLAIMS_DIR / "direction-first-token.yaml", CLAIMS_DIR / "direction-sst2.yaml"]
    assert experiment_paths("depth-sst2") == [CLAIMS_DIR / "depth-sst2.yaml"]  # one experiment, by name


def test_a_claim_experiment_naming_an_unknown_arm_or_claim_fails_in_one_line(tmp_path):
    base = yaml.safe_load((CLAIMS_DIR / "direction-first-token.yaml").read_text())
    for change, message in (
        ({"contrasts": [["bidirectional", "backward"]]}, "'backward' is not an arm of the lineup"),
        ({"claims": ["9"]}, "unknown claim '9'"),
        ({"metric": "bleu"}, "'bleu' is not a metric of task first-token"),
    ):
        path = tmp_path / "x.yaml"
        path.write_text(yaml.safe_dump({**base, **change}))
        with pytest.raises(UserError, match=message) as error:
            load_claim(path, "cpu")
        assert "\n" not in str(error.value)


def test_a_solved_run_stops_early_and_counts_as_converged():
    from bench.config import resolve_config
    from bench.train import train

    knobs = {"T": 4, "n_train": 256, "n_val": 64, "n_test": 64, "max_epochs": 200, "max_steps": 400}
    knobs |= {"eval_every_steps": 20, "patience": 100, "lr": 0.01, "hidden": 16, "batch_size": 32, "solved": 0.5}
    result = train(resolve_config("adding", "simple", "gru", knobs), progress=False)
    assert (
        result.convergence[  # the loss reached half the baseline long before the budget's end
            "convergence/steps"
        ]
        < 400
    )
    from bench.results import search_runs

    record = next(r for r in search_runs("adding") if r.run_id == result.run_id)
    assert record.metrics["convergence/solved"] == 1.0 and record.still_improving is False


@pytest.mark.slow
def test_a_smoke_claims_run_resumes_and_gives_no_verdict_anywhere(tmp_path):
    env = worker_env(tmp_path, {"TORCH_THREADS": "1"})
    command = [
        sys.executable,
        "-m",
        "bench",
        "claims",
        "--claim",
        "direction-first-token",
        "--profile",
        "smoke",
        "--out",
        str(tmp_path),
    ]
    first = subprocess.run([*command, "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([*command, "--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "8 skipped" in again.stdout  # finished runs are found and skipped
    report = (tmp_path / "claims" / "direction-first-token.md").read_text()
    assert "None: the smoke profile is a look at the machinery, never a verdict." in report
    record = json.loads((tmp_path / "claims" / "direction-first-token.json").read_text())
    assert record["verdicts"] == [] and record["decides"] is False
    page = (tmp_path / "claims.md").read_text()
    assert "direction-first-token" not in page
    for word in ("**Overall: supported", "**Overall: not supported", "**Overall: budget-limited"):
        assert word not in page.split("## 6.")[0]  # only the computed claims 6 (and none before) may be decided
