"""The verdict rules on constructed runs: symmetric convergence (a flat or still-improving arm makes a
win and a loss alike budget-limited), the plateau rule, equivalence, Holm within a claim's family,
intervals inside their metric's range, and the judges of claims 1, 4 and 7 on a constructed experiment."""

from __future__ import annotations

import random
from types import SimpleNamespace

from bench.claim_judges import Delta, ExperimentData, contrasts, gated_fix, short_and_long
from bench.claim_rules import (
    BUDGET_LIMITED,
    FAIL,
    INCONCLUSIVE,
    NOT_SUPPORTED,
    PASS,
    PLATEAU_FACTOR,
    SUPPORTED,
    ArmRuns,
    compare,
    comparisons_verdict,
    estimate,
    pass_test,
    settle_comparisons,
    settle_passes,
)

DELTA = Delta(0.02, 1.25, "test")


def arm(label, values, baseline=1.0, still_improving=0, flat_steps=(), escapes=None, **rest) -> ArmRuns:
    """An arm whose first `still_improving` runs were still improving and whose last len(flat_steps) runs
    were flat; every other run left the baseline at `escapes` (default: step 250)."""
    values = list(values)
    n, k = len(values), len(flat_steps)
    flat = [None] * (n - k) + list(flat_steps)
    escapes = escapes if escapes is not None else [250.0] * (n - k)
    still = [i < still_improving for i in range(n)]
    return ArmRuns(label, values, baseline, still=still, flat=flat, escapes=list(escapes), **rest)


def spread(centre: float, n: int = 5, sd: float = 0.01, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [centre + rng.gauss(0, sd) for _ in range(n)]


def decide(pairs, higher=True, delta=0.02):
    found = [compare(a, b, value, higher, delta) for value, (a, b) in enumerate(pairs)]
    settle_comparisons(found)
    return found, comparisons_verdict(found)


# -- symmetric convergence ------------------------------------------------------------------------------
def test_a_win_from_converged_runs_is_supported_and_a_loss_is_not_supported():
    good, bad = arm("a", spread(0.9), 0.25), arm("b", spread(0.6, seed=1), 0.25)
    assert decide([(good, bad)])[1] == SUPPORTED
    assert decide([(bad, good)])[1] == NOT_SUPPORTED


def test_still_improving_runs_on_the_losing_side_make_a_win_and_a_loss_alike_budget_limited():
    """If the arm the verdict goes against could reach the best score with more steps, the verdict could
    change: budget-limited, whether the claimed-better arm wins or loses. Runs of the winning side still
    improving cannot change it (more steps only help the winner)."""
    good, bad = arm("a", spread(0.9), 0.25), arm("b", spread(0.6, seed=1), 0.25, still_improving=5)
    assert decide([(good, bad)])[1] == BUDGET_LIMITED  # a win over a loser that might catch up
    assert decide([(bad, good)])[1] == BUDGET_LIMITED  # a loss of an arm that might catch up
    good, bad = arm("a", spread(0.9), 0.25, still_improving=5), arm("b", spread(0.6, seed=1), 0.25)
    assert decide([(good, bad)])[1] == SUPPORTED
    assert decide([(bad, good)])[1] == NOT_SUPPORTED


def test_a_win_that_survives_its_unconverged_runs_at_the_best_score_stands():
    """One of five runs of the losing arm still improving at 0.45 (the rest at chance), the winner at 1:
    even if that run reached accuracy 1, the other four keep the difference significant."""
    winner = arm("bidirectional", [1.0] * 5, 0.25)
    loser = arm("forward", [0.445, 0.24, 0.242, 0.238, 0.241], 0.25, still_improving=1)
    found, verdict = decide([(winner, loser)])
    assert verdict == SUPPORTED and found[0].reason and "still improving" in found[0].reason


def test_a_flat_arm_counts_only_with_a_plateau_five_times_the_other_arms_escape():
    learner = arm("learner", spread(0.99), 0.25, escapes=[200, 400, 300, 250, 350])
    short = arm("flat", spread(0.25, seed=2), 0.25, flat_steps=[PLATEAU_FACTOR * 400 - 1] * 5)
    long = arm("flat", spread(0.25, seed=2), 0.25, flat_steps=[PLATEAU_FACTOR * 400] * 5)
    assert decide([(learner, short)])[1] == BUDGET_LIMITED  # a flat win: the plateau is too short
    assert decide([(short, learner)])[1] == BUDGET_LIMITED  # a flat loss: the same rule
    assert decide([(learner, long)])[1] == SUPPORTED
    assert decide([(long, learner)])[1] == NOT_SUPPORTED


def test_a_flat_arm_against_arms_that_never_learned_either_is_budget_limited():
    a = arm("a", spread(0.25), 0.25, flat_steps=[10_000] * 5)
    b = arm("b", spread(0.25, seed=3), 0.25, flat_steps=[10_000] * 5)
    assert decide([(a, b)])[1] == BUDGET_LIMITED


# -- equivalence and multiplicity ------------------------------------------------------------------------
def test_equal_converged_arms_are_not_supported_as_no_effect_larger_than_delta():
    a, b = arm("a", spread(0.85, n=8, sd=0.004), 0.25), arm("b", spread(0.85, n=8, sd=0.004, seed=5), 0.25)
    found, verdict = decide([(a, b)])
    assert found[0].outcome == "equivalent" and verdict == NOT_SUPPORTED
    wide_a, wide_b = arm("a", spread(0.85, n=3, sd=0.05), 0.25), arm("b", spread(0.85, n=3, sd=0.05, seed=5), 0.25)
    assert decide([(wide_a, wide_b)])[1] == INCONCLUSIVE  # neither shown nor bounded: more seeds would decide


def test_losses_compare_as_ratios_with_an_equivalence_factor():
    a = arm("a", [0.50, 0.51, 0.49, 0.50, 0.505], baseline=1.0)
    b = arm("b", [0.50, 0.495, 0.505, 0.51, 0.49], baseline=1.0)
    found, verdict = decide([(a, b)], higher=False, delta=1.25)
    assert 0.9 < found[0].effect.centre < 1.1 and verdict == NOT_SUPPORTED and found[0].outcome == "equivalent"
    better = arm("c", [0.05, 0.06, 0.055, 0.045, 0.05], baseline=1.0)
    assert decide([(better, b)], higher=False, delta=1.25)[1] == SUPPORTED


def test_holm_within_a_claim_family_can_undo_a_lone_nominal_win():
    """One comparison at p ~ 0.03 is a win alone; among five null ones, Holm adjusts it past alpha."""
    a, b = arm("a", [0.80, 0.84, 0.82, 0.85, 0.81], 0.25), arm("b", [0.79, 0.80, 0.78, 0.82, 0.79], 0.25)
    single, _ = decide([(a, b)])
    assert single[0].p_two < 0.05 and single[0].outcome == "win"
    nulls = [(arm("x", [0.5, 0.7, 0.6, 0.55, 0.65], 0.25), arm("y", [0.52, 0.68, 0.61, 0.6, 0.6], 0.25))] * 5
    family, verdict = decide([(a, b), *nulls])
    assert family[0].q_two > 0.05 and family[0].outcome != "win" and verdict == INCONCLUSIVE


# -- intervals in range ----------------------------------------------------------------------------------
def test_intervals_stay_inside_their_metric_range():
    accuracies = [1.0, 1.0, 0.97]  # a t interval would pass 1
    shown = estimate(accuracies, higher_is_better=True)
    assert 0 <= shown.low <= shown.centre <= shown.high <= 1
    losses = [0.0026, 0.0001, 0.0051]  # the audit's copy GRU: mean ± t sd went below 0
    shown = estimate(losses, higher_is_better=False)
    assert 0 < shown.low <= shown.centre <= shown.high
    a, b = arm("a", [1.0, 1.0, 0.99], 0.5), arm("b", [0.5, 0.52, 0.51], 0.5)
    effect = compare(a, b, 1, True, 0.02).effect
    assert -1 <= effect.low <= effect.high <= 1


# -- the judges ------------------------------------------------------------------------------------------
def experiment(table, contrasts_=(), reference=None, higher=False, short_lag=10):
    spec = SimpleNamespace(
        axis="T", margin=0.1, reference=reference, contrasts=[list(c) for c in contrasts_], metric=None, lineup={}
    )
    task = SimpleNamespace(short_lag=short_lag, report_metric="acc" if higher else "loss", metrics=())
    data = ExperimentData(spec, task, table, {})
    data.__class__ = type("Data", (ExperimentData,), {"higher": property(lambda self: higher)})
    return data


def memory_table(rnn_long_flat_steps: float):
    """rnn solves T=10 and is flat at T=100; the gated cells solve both (left the baseline by step 500)."""
    solved = lambda label, seed: arm(label, spread(0.001, sd=0.0002, seed=seed), 1.0, escapes=[250, 500, 250, 250, 500])  # noqa: E731
    return {
        "rnn": {
            10: solved("rnn", 1),
            100: arm("rnn", spread(1.0, sd=0.003, seed=2), 1.0, flat_steps=[rnn_long_flat_steps] * 5),
        },
        "lstm": {10: solved("lstm", 3), 100: solved("lstm", 4)},
        "gru": {10: solved("gru", 5), 100: solved("gru", 6)},
    }


def test_claims_1_and_7_are_supported_when_the_rnn_fails_long_after_the_gated_cells_learned():
    data = experiment(memory_table(6000), [("lstm", "rnn"), ("gru", "rnn")], reference="rnn")
    assert short_and_long(data, "1").verdict == SUPPORTED
    assert gated_fix(data, "7").verdict == SUPPORTED


def test_claims_1_and_7_are_budget_limited_when_the_rnn_plateau_is_short():
    data = experiment(memory_table(1000), [("lstm", "rnn"), ("gru", "rnn")], reference="rnn")
    assert short_and_long(data, "1").verdict == BUDGET_LIMITED
    assert gated_fix(data, "7").verdict == BUDGET_LIMITED


def test_claim_1_is_not_supported_when_the_rnn_passes_at_the_longest_lag():
    table = memory_table(6000)
    table["rnn"][100] = arm("rnn", spread(0.01, sd=0.001), 1.0, escapes=[1000])
    data = experiment(table, [("lstm", "rnn")], reference="rnn")
    decision = short_and_long(data, "1")
    assert decision.verdict == NOT_SUPPORTED and "passes at the longest" in decision.evidence[-1]


def test_pass_tests_need_convergence_to_fail_but_not_to_pass():
    still = arm("rnn", spread(1.0, sd=0.003), 1.0, still_improving=5)
    fails = [pass_test(still, 100, 0.1, False, [])]
    settle_passes(fails)
    assert fails[0].outcome != FAIL and "still improving" in fails[0].reason  # could reach any loss
    passing = [pass_test(arm("rnn", spread(0.01, sd=0.001), 1.0, still_improving=5), 10, 0.1, False, [])]
    settle_passes(passing)
    assert passing[0].outcome == PASS


def test_claim_4_on_a_direction_task_with_a_tie_at_the_short_length():
    table = {
        "bidirectional": {
            10: arm("bidirectional", [1.0] * 5, 0.25, escapes=[250] * 5),
            100: arm("bidirectional", [1.0] * 5, 0.25, escapes=[250] * 5),
        },
        "forward": {
            10: arm("forward", [1.0] * 5, 0.25, escapes=[250] * 5),
            100: arm("forward", spread(0.25, sd=0.01), 0.25, flat_steps=[3000] * 5),
        },
    }
    decision = contrasts(experiment(table, [("bidirectional", "forward")], higher=True), "4", DELTA)
    assert decision.verdict == SUPPORTED
    assert "T=100" in decision.key and "win" in decision.key
    assert any("T=10:" in line and "equivalent" in line for line in decision.evidence)


def test_each_arms_learning_rate_is_chosen_on_validation_in_the_monitors_direction():
    """sst2 monitors validation accuracy (higher is better), adding validation loss (lower is better):
    the chosen lr is the one with the better mean best-validation value, and test is read at it."""
    from bench.claim_judges import tabulate
    from bench.registry import get_task
    from tests.records import record

    def run(task_metric, lr, seed, best, test):
        tags = {"state": "complete", "ablation": "a", "arm": f"a lr={lr}", "horizon_value": "10", "seed": str(seed)}
        return record(tags=tags, params={"lr": str(lr)}, metrics={f"{task_metric}_best": best, "test/acc": test})

    spec = SimpleNamespace(lineup={"a": None}, metric="acc")
    runs = [run("val/acc", 0.01, s, 0.8, 0.79) for s in (1, 2)] + [run("val/acc", 0.001, s, 0.7, 0.69) for s in (1, 2)]
    data = tabulate(spec, get_task("sst2"), runs)
    assert data.table["a"][10].lr == 0.01 and data.table["a"][10].values == [0.79, 0.79]
    runs = [run("val/loss", 0.01, s, 0.8, 0.1) for s in (1, 2)] + [run("val/loss", 0.001, s, 0.7, 0.2) for s in (1, 2)]
    assert tabulate(spec, get_task("temporal-order"), runs).table["a"][10].lr == 0.001
