"""The claims this suite exists to test, each with the evidence a task's runs hold and a verdict:
supported, not supported (the data contradicts it), or inconclusive at this budget. No verdict
without numbers: a claim this task's runs do not test says so."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.markdown import significant as fmt
from bench.results import counterpart, final_values, grid_parts, probe_ratio, probe_runs, train_validation_gap
from bench.stats import holm, summarize, welch_p
from bench.variants import CELL_SPECS, CELLS

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive at this budget"
NOT_TESTED = "not tested by this task"


@dataclass
class Verdict:
    claim: str
    verdict: str
    evidence: list[str] = field(default_factory=list)


# -- 1. short-term yes, long-term no ------------------------------------------------------------------
def short_vs_long(task, horizon) -> Verdict:
    claim = "1. The simple RNN is good at short-term and bad at long-term dependence."
    if horizon is None or "simple/rnn" not in horizon.table:
        return Verdict(claim, NOT_TESTED, ["no horizon runs (`make horizon`) for this task: it varies no gap length."])
    higher = task.higher_is_better
    cells = horizon.table["simple/rnn"]
    lengths = sorted(cells)
    shortest, longest = lengths[0], lengths[-1]
    rnn_horizon, _ = horizon.horizon("simple/rnn", higher)
    gated = {arm: horizon.horizon(arm, higher)[0] for arm in (f"simple/{c}" for c, spec in CELL_SPECS.items()
                                                               if spec.gated) if arm in horizon.table}
    evidence = [f"simple RNN test {task.report_metric}{'' if higher else ' / baseline'}: "
                + ", ".join(f"{fmt(ratio(cells[v], higher))} at {horizon.axis}={v}" for v in lengths),
                f"horizons ({horizon.axis} where the mean still beats the baseline by {horizon.margin:g}): simple RNN "
                f"{horizon.describe('simple/rnn', higher)}"
                + "".join(f", {arm} {horizon.describe(arm, higher)}" for arm in gated)]
    evidence += probe_evidence(horizon, longest)
    good_short = rnn_horizon is not None and rnn_horizon >= shortest
    bad_long = rnn_horizon is None or rnn_horizon < longest
    if good_short and bad_long:
        return Verdict(claim, SUPPORTED, evidence + [f"it beats the baseline at {horizon.axis}={shortest} and stops "
                                                     f"beating it beyond {horizon.axis}={rnn_horizon}."])
    if not good_short:
        gated_learn = any(h is not None and h >= shortest for h in gated.values())
        if gated_learn and seeds_enough(cells[shortest]):
            return Verdict(claim, NOT_SUPPORTED, evidence + [
                f"a gated cell beats the baseline at {horizon.axis}={shortest} but the simple RNN does not: "
                "it fails the short-term half of the claim here."])
        return Verdict(claim, INCONCLUSIVE, evidence + [
            f"no cell beats the baseline even at the shortest {horizon.axis}={shortest}: the budget is too small "
            "to tell."])
    return Verdict(claim, NOT_SUPPORTED, evidence + [f"it still beats the baseline at the longest "
                                                     f"{horizon.axis}={longest}: no long-term failure within this grid."])


def probe_evidence(horizon, value: int) -> list[str]:
    lines = []
    for arm in (f"simple/{cell}" for cell in CELLS):
        runs = probe_runs(horizon, arm, value)
        trained = probe_ratio(runs, "dhT_dx", "trained")
        if trained is not None:
            lines.append(f"{arm} at {horizon.axis}={value}: ‖dh_T/dx_1‖ / ‖dh_T/dx_T‖ = {trained:.1e} trained, "
                         f"{fmt(probe_ratio(runs, 'dhT_dx', 'untrained'))} untrained")
    return lines


def ratio(cell, higher: bool) -> float | None:
    summary = summarize(cell.values)
    if summary is None or not cell.baseline:
        return None
    return summary.mean if higher else summary.mean / cell.baseline


def seeds_enough(cell) -> bool:  # one seed is an anecdote
    return len(cell.values) + cell.diverged >= 2


# -- 2. tanh keeps h bounded --------------------------------------------------------------------------
def tanh_bounded(zero_input, horizon) -> list[Verdict]:
    """From the zero-input computation (`ZeroInput`: norms by (activation, radius), and the state size)."""
    explode = "2a. tanh keeps the state bounded where a linear recurrence explodes (spectral radius > 1)."
    vanish = "2b. tanh keeps the state alive where a linear recurrence dies (spectral radius < 1)."
    if zero_input is None:
        return [Verdict(explode, NOT_TESTED), Verdict(vanish, NOT_TESTED)]
    hidden = zero_input.hidden
    lin_up, tanh_up = zero_input[("linear", 1.1)][-1], zero_input[("tanh", 1.1)]
    lin_down, tanh_down = zero_input[("linear", 0.9)][-1], zero_input[("tanh", 0.9)][-1]
    trained = ablation_evidence(horizon)
    bounded = max(tanh_up) <= hidden ** 0.5 + 1e-9
    first = Verdict(explode, SUPPORTED if bounded and lin_up > 1e3 else NOT_SUPPORTED,
                    [f"zero input, r = 1.1, 100 steps: ‖h‖ linear {lin_up:.3g}, tanh at most {max(tanh_up):.3g} "
                     f"(|h_i| ≤ 1 ⇒ ‖h‖ ≤ √{hidden} = {hidden ** 0.5:.3g})", *trained])
    second = Verdict(vanish, SUPPORTED if tanh_down > 10 * lin_down else NOT_SUPPORTED,
                     [f"zero input, r = 0.9, 100 steps: ‖h‖ linear {lin_down:.3g}, tanh {tanh_down:.3g}",
                      "|tanh(x)| ≤ |x|, so tanh can only shrink the state faster: it bounds explosion but cannot "
                      "prevent vanishing (what the gated cells and IRNN address)."])
    return [first, second]


def ablation_evidence(horizon) -> list[str]:
    if horizon is None:
        return []
    lines = []
    for arm in ("simple/rnn", "simple/rnn/linear", "simple/rnn/relu", "simple/rnn/irnn"):
        cells = horizon.table.get(arm)
        if not cells:
            continue
        runs = sum(c.runs for c in cells.values())
        diverged = sum(c.diverged for c in cells.values())
        worst = max((ratio(c, False) or 0 for c in cells.values()), default=0)
        lines.append(f"trained {arm if arm != 'simple/rnn' else 'simple/rnn (tanh)'}: {diverged} of {runs} runs "
                     f"diverged; worst mean test loss / baseline {fmt(worst)}")
    return lines


# -- 3., 4. variants vs one layer ---------------------------------------------------------------------
def variant_claim(task, studies, horizon, variant: str, claim: str) -> Verdict:
    metric = f"test/{task.report_metric}"
    higher = task.higher_is_better
    pairs = [(s, counterpart(s, studies, "simple", s.cell)) for s in studies if s.variant == variant]
    pairs = [(s, reference) for s, reference in pairs if reference is not None]
    evidence, tests, signs = [], [], []
    for better, reference in pairs:
        a, b = final_values(better, metric), final_values(reference, metric)
        sa, sb = summarize(a), summarize(b)
        if not (sa and sb):
            continue
        wins = sa.mean > sb.mean if higher else sa.mean < sb.mean
        tests.append(welch_p(a, b))
        signs.append(wins)
        evidence.append(f"{better.cell}{' ' + better.grid if better.grid else ''}: {metric} {fmt(sa.mean)} ± "
                        f"{fmt(sa.sd)} ({variant}) vs {fmt(sb.mean)} ± {fmt(sb.sd)} (simple)")
    adjusted = holm(tests)
    wins = losses = 0
    for index, (p, q, sign) in enumerate(zip(tests, adjusted, signs)):
        evidence[index] += f"; p = {fmt(p)}, Holm {fmt(q)}" if p is not None else "; too few seeds"
        if q is not None and q < 0.05:
            wins, losses = wins + sign, losses + (not sign)
    if horizon is not None:
        for cell in CELLS:
            arm, base = f"{variant}/{cell}", f"simple/{cell}"
            if arm in horizon.table and base in horizon.table:
                evidence.append(f"horizon {arm} {horizon.describe(arm, higher)} vs {base} {horizon.describe(base, higher)}")
    if not evidence:
        return Verdict(claim, NOT_TESTED, [f"no finished {variant} and simple studies with the same cell."])
    if wins and not losses:
        verdict = SUPPORTED
    elif losses and not wins:
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    evidence.append(f"{wins} significant win(s) and {losses} significant loss(es) for {variant} over "
                    f"{len(tests)} comparisons (Welch, Holm-adjusted within this claim, α = 0.05)")
    return Verdict(claim, verdict, evidence)


# -- 5. pretrained embeddings --------------------------------------------------------------------------
def embeddings_curb_overfitting(task, studies) -> Verdict:
    claim = "5. Pretrained embeddings curb overfitting when labeled data is small."
    metric = f"test/{task.report_metric}"
    pretrained = [s for s in studies if s.variant == "embedding-pretrained" and "train_subset=" in s.grid]
    pairs = [(p, counterpart(p, studies, "simple", p.cell)) for p in pretrained]
    pairs = [(p, s) for p, s in pairs if s is not None and p.finished_finals and s.finished_finals]
    if not pairs:
        return Verdict(claim, NOT_TESTED, ["no embedding-pretrained vs simple studies over labeled-subset sizes."])
    def size(pair) -> float:
        return min(final_values(pair[0], "data/train_examples") or [math.inf])

    smallest = min(size(pair) for pair in pairs)
    evidence, verdicts = [], []
    for p, s in sorted(pairs, key=size):
        a, b = final_values(p, metric), final_values(s, metric)
        gap_p = summarize([g for g in (train_validation_gap(r, task) for r in p.finished_finals) if g is not None])
        gap_s = summarize([g for g in (train_validation_gap(r, task) for r in s.finished_finals) if g is not None])
        source = grid_parts(p.grid).get("embedding_vectors", "")
        pvalue = welch_p(a, b)
        evidence.append(f"{int(size((p, s)))} labels, {p.cell}{' ' + source if source else ''}: {metric} {fmt(summarize(a).mean)} pretrained vs "
                        f"{fmt(summarize(b).mean)} scratch (p = {fmt(pvalue)}); train − val gap "
                        f"{fmt(gap_p.mean if gap_p else None)} vs {fmt(gap_s.mean if gap_s else None)}")
        if size((p, s)) == smallest and pvalue is not None:
            better = summarize(a).mean > summarize(b).mean if task.higher_is_better else summarize(a).mean < summarize(b).mean
            smaller_gap = gap_p is not None and gap_s is not None and gap_p.mean < gap_s.mean
            if pvalue < 0.05 and better and smaller_gap:
                verdicts.append(SUPPORTED)
            elif pvalue < 0.05 and not better:
                verdicts.append(NOT_SUPPORTED)
            else:
                verdicts.append(INCONCLUSIVE)
    evidence.append("verdict from the smallest labeled size: pretrained vectors must be significantly better on "
                    "test (Welch, α = 0.05) with a smaller train − validation gap; with several sources, supported "
                    "if any source is, not supported if every source is significantly worse")
    if SUPPORTED in verdicts:
        verdict = SUPPORTED
    elif verdicts and all(v == NOT_SUPPORTED for v in verdicts):
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    return Verdict(claim, verdict, evidence)


def all_verdicts(task, studies, horizon, zero_input) -> list[Verdict]:
    return [short_vs_long(task, horizon), *tanh_bounded(zero_input, horizon),
            variant_claim(task, studies, horizon, "stacked", "3. Several layers beat one."),
            variant_claim(task, studies, horizon, "bidirectional", "4. Bidirectional beats unidirectional."),
            embeddings_curb_overfitting(task, studies)]


def verdict_section(verdicts: list[Verdict]) -> list[str]:
    out = ["## Verdicts", "", "The claims of the material this suite was built from, each judged only on this "
           "report's runs (and, for 2, on the zero-input computation above).", ""]
    for verdict in verdicts:
        out.append(f"- **{verdict.claim}** — ***{verdict.verdict}***")
        out += [f"  - {line}" for line in verdict.evidence]
    return out + [""]
