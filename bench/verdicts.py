"""The claims this suite exists to test, one registry entry each (`CLAIMS`, at the end: its text from the
material, the judge that turns a task's runs into a verdict, the evidence it needs), and the judges.
A verdict: supported, not supported (the data contradicts it, from converged runs), budget-limited (it
rests on runs still improving when their budget ran out), inconclusive, or not tested. No verdict
without numbers: a claim this task's runs do not test says so."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from bench.cells import CELLS, group, reference_cell
from bench.claim_judges import Decision, Delta, ExperimentData, bounded_state, contrasts, gated_fix, short_and_long
from bench.horizon_rule import FAIL, PASS, UNKNOWN, Cell, add_run, bound, judge, run_budget, score
from bench.markdown import significant as fmt
from bench.results import counterpart, final_values, grid_parts, probe_ratio, probe_runs, train_validation_gap
from bench.run_keys import Metric
from bench.stats import compare, holm, summarize

SUPPORTED, NOT_SUPPORTED, BUDGET_LIMITED = "supported", "not supported", "budget-limited"
INCONCLUSIVE, NOT_TESTED = "inconclusive", "not tested"
WORDS = {
    SUPPORTED: "the runs show it, with the test named in the evidence",
    NOT_SUPPORTED: "the runs contradict it, and they had converged (not still improving, not flat)",
    BUDGET_LIMITED: "the runs it rests on were still improving when their step budget ran out, or flat (they "
    "never left the baseline: a plateau is not convergence): a longer budget could change it",
    INCONCLUSIVE: "the runs neither show nor contradict it (too few seeds, wide intervals, mixed signs)",
    NOT_TESTED: "this task's runs do not test it",
}
CLAIM_1 = "1"
RNN = reference_cell()  # the simple RNN the claims are about
RNN_ARM = f"simple/{RNN}"
DEFAULT_MARGIN = 0.1  # sweep-finals evidence for claim 1 uses the horizon files' margin


def claim_id(claim: str) -> str:
    """ "2a. tanh keeps ..." or "2a" -> "2a"."""
    return claim.split(".", 1)[0].strip()


@dataclass
class Verdict:
    claim: str  # the claim's id in CLAIMS
    verdict: str
    evidence: list[str] = field(default_factory=list)
    scope: str = ""  # what part of the claim a task's runs test, when only a part (e.g. "long half only")

    @property
    def key(self) -> str:
        """The key number for the claims page: the evidence line the verdict rests on (the first)."""
        return self.evidence[0] if self.evidence else ""

    @property
    def title(self) -> str:
        return f"{claim_id(self.claim)}. {CLAIMS[claim_id(self.claim)].text}"

    def as_record(self) -> dict:
        record = {"id": claim_id(self.claim), "claim": self.title, "verdict": self.verdict, "key": self.key}
        return record | ({"scope": self.scope} if self.scope else {})


def cell_of(task, runs: list) -> Cell:
    """The final-seed runs of one study as a horizon-rule Cell (test metric, baseline, misses, signal)."""
    cell = Cell()
    for run in runs:
        add_run(task, cell, run)
    return cell


def describe_cell(cell: Cell, margin: float, higher: bool) -> str:
    summary = summarize(cell.values)
    if summary is None or not cell.baseline:
        return "no finished runs"
    scale = 1 if higher else cell.baseline
    edge = bound(cell, higher)
    text = f"{summary.mean / scale:.3g}{'' if higher else '×'}"
    text += f" (one-sided 95% bound {edge:.3g}, n={summary.n})" if edge is not None else f" (n={summary.n})"
    text += f", {judge(cell, margin, higher)}"
    text += f", {cell.still_improving} of {summary.n} still improving" if cell.still_improving else ""
    return text + (f", {cell.at_baseline} of {summary.n} never left the baseline" if cell.at_baseline else "")


# -- 1. short-term yes, long-term no ------------------------------------------------------------------
def rnn_lengths(task, studies, horizon) -> tuple[dict[int, Cell], str, float, str] | None:
    """The simple RNN's cells by length: from the horizon, else from sweep finals over a T grid (e.g.
    temporal-order at T=10 and 50). (cells, axis, margin, where from) or None."""
    if horizon is not None and len(horizon.table.get(RNN_ARM, {})) >= 2:
        return horizon.table[RNN_ARM], horizon.axis, horizon.margin, f"horizon ({horizon.profile})"
    cells = {}
    for study in studies:
        length = grid_parts(study.grid).get("T")
        if study.variant == "simple" and study.cell == RNN and length is not None and study.finished_finals:
            cells[int(length)] = cell_of(task, study.finished_finals + study.diverged_finals)
    if len(cells) >= 2:
        return cells, "T", DEFAULT_MARGIN, "sweep finals over the T grid"
    return None


def short_vs_long(task, horizon, studies=()) -> Verdict:
    """Judged on the shortest length for "short" and the longest for "long", each by the horizon rule
    (one-sided 95% bound of the mean against the margin)."""
    found = rnn_lengths(task, studies, horizon)
    if found is None:
        return Verdict(
            CLAIM_1,
            NOT_TESTED,
            [
                "no simple-RNN runs at two or more lengths (`make horizon`, or a "
                "sweep grid over T): this task's runs vary no gap length."
            ],
        )
    cells, axis, margin, source = found
    higher = task.higher_is_better
    shortest, longest = min(cells), max(cells)
    short, long = cells[shortest], cells[longest]
    evidence = lengths_evidence(task, cells, axis, margin, source) + horizon_evidence(horizon, higher)
    short_j, long_j = judge(short, margin, higher), judge(long, margin, higher)
    if shortest > task.short_lag:
        return long_half_only(task, evidence, shortest, longest, long, long_j, axis)
    if UNKNOWN in (short_j, long_j):
        return Verdict(
            CLAIM_1,
            INCONCLUSIVE,
            evidence
            + [f"fewer than 2 finished seeds at {axis}={shortest if short_j == UNKNOWN else longest}: unknown."],
        )
    if short_j == FAIL:
        return short_half_fails(evidence, short, shortest, axis)
    if long_j == FAIL:
        return long_half_fails(evidence, short, long, shortest, longest, axis)
    return Verdict(
        CLAIM_1,
        NOT_SUPPORTED,
        evidence + [f"it still passes at the longest {axis}={longest}: no long-term failure within this grid."],
    )


def lengths_evidence(task, cells: dict[int, Cell], axis: str, margin: float, source: str) -> list[str]:
    """The simple RNN at its shortest and longest length (first: the claims page's key number), then between."""
    higher = task.higher_is_better
    shortest, longest = min(cells), max(cells)
    return [
        f"simple RNN at the shortest {axis}={shortest}: {describe_cell(cells[shortest], margin, higher)}; at the "
        f"longest {axis}={longest}: {describe_cell(cells[longest], margin, higher)} ({source}; test "
        f"{task.report_metric}{'' if higher else ' / baseline'}, pass = bound beyond "
        f"{'baseline + ' if higher else ''}{margin if higher else 1 - margin:g}{' × (1 − baseline)' if higher else ''})"
    ] + [
        f"{axis}={v}: {describe_cell(cells[v], margin, higher)}" for v in sorted(cells) if v not in (shortest, longest)
    ]


def horizon_evidence(horizon, higher: bool) -> list[str]:
    """The horizons of the simple RNN and the gated cells, and the gradient probe at the longest length."""
    if horizon is None:
        return []
    gated = [arm for arm in (f"simple/{c}" for c in group("gated")) if arm in horizon.table]
    return [
        f"horizons ({horizon.axis} an arm passes): simple RNN {horizon.describe(RNN_ARM, higher)}"
        + "".join(f", {arm} {horizon.describe(arm, higher)}" for arm in gated),
        *probe_evidence(horizon, max(horizon.table[RNN_ARM])),
    ]


def short_half_fails(evidence: list[str], short: Cell, shortest: int, axis: str) -> Verdict:
    """The simple RNN does not pass at the shortest length: budget-limited unless its runs converged."""
    if short.still_improving:
        reason = (
            f"it does not pass at the shortest {axis}={shortest}, but {short.still_improving} of its runs there "
            f"were still improving when the budget ({short.budget or '?'}) ran out."
        )
        return Verdict(CLAIM_1, BUDGET_LIMITED, evidence + [reason])
    if short.at_baseline:
        reason = (
            f"it does not pass at the shortest {axis}={shortest}: {short.at_baseline} of "
            f"{len(short.values)} runs never left the baseline in {short.budget or '?'}. {FLAT}"
        )
        return Verdict(CLAIM_1, BUDGET_LIMITED, evidence + [reason])
    reason = (
        f"it fails the short half: at the shortest {axis}={shortest} it left the baseline but does not beat "
        "it by the margin, and its runs had converged."
    )
    return Verdict(CLAIM_1, NOT_SUPPORTED, evidence + [reason])


def long_half_fails(evidence: list[str], short: Cell, long: Cell, shortest: int, longest: int, axis: str) -> Verdict:
    """Passes short, fails long: supported from converged runs that left the baseline; budget-limited
    while still improving; a flat plateau is weighed against the short lag's escape (plateau_verdict)."""
    if long.still_improving:
        reason = (
            f"it passes at {axis}={shortest} and fails at {axis}={longest}, but {long.still_improving} of its "
            f"runs at {axis}={longest} were still improving when the budget ({long.budget or '?'}) ran out."
        )
        return Verdict(CLAIM_1, BUDGET_LIMITED, evidence + [reason])
    if long.at_baseline:
        return plateau_verdict(evidence, short, long, shortest, longest, axis)
    reason = (
        f"it passes at the shortest {axis}={shortest} and fails at the "
        f"longest {axis}={longest}, with converged runs that left the baseline."
    )
    return Verdict(CLAIM_1, SUPPORTED, evidence + [reason])


PLATEAU_FACTOR = 5  # a plateau this many times longer than the short lag's escape counts as a failure
FLAT = (
    "A run flat at the baseline for its whole budget is on a plateau, not converged: a plateau longer than "
    "the budget cannot be told from a cell that cannot learn."
)


def plateau_verdict(evidence: list[str], short: Cell, long: Cell, shortest: int, longest: int, axis: str) -> Verdict:
    """Claim 1's long half when the RNN's runs at the longest length never left the baseline. Flat is
    not converged, so the plateau is compared with the steps the same RNN needed to leave the baseline
    at the shortest length: a budget PLATEAU_FACTOR times as long (or more) supports the claim at this
    budget; a shorter one is budget-limited."""
    flat = (
        f"at the longest {axis}={longest}, {long.at_baseline} of {len(long.values)} runs never left the baseline "
        f"in {long.budget or '?'}"
    )
    escape = short.slowest_escape
    shown = min(long.flat_steps) if long.flat_steps else long.budget_steps  # early stopping can end a plateau
    if escape is None or not shown:
        return Verdict(
            CLAIM_1,
            BUDGET_LIMITED,
            evidence
            + [
                f"it passes at {axis}={shortest}; {flat}, and the steps it needed to leave the baseline at "
                f"{axis}={shortest} are unknown. {FLAT}"
            ],
        )
    ratio = shown / max(escape, 1)
    compared = (
        f"{flat} (the shortest trained {shown:,.0f} steps): {ratio:.1f}× the {escape:,.0f} steps its slowest run needed to leave the baseline at "
        f"{axis}={shortest} (factor required: {PLATEAU_FACTOR})"
    )
    if ratio >= PLATEAU_FACTOR:
        return Verdict(
            CLAIM_1,
            SUPPORTED,
            evidence + [f"it passes at the shortest {axis}={shortest}; {compared}: the plateau grows with the lag."],
        )
    return Verdict(CLAIM_1, BUDGET_LIMITED, evidence + [f"it passes at {axis}={shortest}; {compared}. {FLAT}"])


def long_half_only(
    task, evidence: list[str], shortest: int, longest: int, long: Cell, long_j: str, axis: str
) -> Verdict:
    """Claim 1 on a task whose lengths are all beyond a short lag (task.short_lag): only the long half
    is tested. The RNN passing at the longest length contradicts the claim; failing there is the long
    half only, so the claim is not tested here (its short half needs a short-lag task)."""
    claim = CLAIM_1
    lags = f"its short lags end at {axis}={task.short_lag}" if task.short_lag else "it declares no short lag"
    note = (
        f"{task.name} tests the long half only: {axis}={shortest} is no short-term test here ({lags}); the short "
        "half is judged where lags are short (temporal-order and adding at T=10)."
    )
    if long_j == UNKNOWN:
        return Verdict(claim, INCONCLUSIVE, evidence + [note, f"fewer than 2 finished seeds at {axis}={longest}."])
    if long_j == PASS:
        return Verdict(
            claim,
            NOT_SUPPORTED,
            evidence + [note, f"the long half fails: it still passes at the longest {axis}={longest}."],
        )
    held = (
        f"the long half holds at {axis}={longest}, but {long.still_improving} of its runs there were still improving "
        f"when the budget ({long.budget or '?'}) ran out."
        if long.still_improving
        else f"the long half holds: at the longest {axis}={longest} it does not beat the baseline by the margin"
        + (
            f"; {long.at_baseline} of {len(long.values)} runs never left the baseline in {long.budget or '?'}. {FLAT}"
            if long.at_baseline
            else "."
        )
    )
    return Verdict(claim, NOT_TESTED, [f"long half only: {evidence[0]}", *evidence[1:], note, held], "long half holds")


def contradictions(task, studies, horizon) -> list[str]:
    """Horizon cells whose pass/fail disagrees with the same report's sweep finals at the same length."""
    if horizon is None:
        return []
    lines, higher = [], task.higher_is_better
    for study in studies:
        arm, finals = f"{study.variant}/{study.cell}", study.finished_finals
        if not finals or arm not in horizon.table:
            continue
        length = grid_parts(study.grid).get(horizon.axis) or finals[0].params.get(horizon.axis)
        if length is None or int(length) not in horizon.table[arm]:
            continue
        swept, cell = cell_of(task, finals + study.diverged_finals), horizon.table[arm][int(length)]
        outcomes = judge(cell, horizon.margin, higher), judge(swept, horizon.margin, higher)
        if set(outcomes) == {PASS, FAIL}:
            lines.append(
                f"⚠ {arm} at {horizon.axis}={length}: the horizon says {outcomes[0]} "
                f"({describe_cell(cell, horizon.margin, higher)}), the sweep finals say {outcomes[1]} "
                f"({describe_cell(swept, horizon.margin, higher)}); budgets: horizon {cell.budget or '?'}, "
                f"sweep {swept.budget or '?'}."
            )
    return lines


def probe_evidence(horizon, value: int) -> list[str]:
    lines = []
    for arm in (f"simple/{cell}" for cell in CELLS):
        runs = probe_runs(horizon, arm, value)
        trained = probe_ratio(runs, "dhT_dx", "trained")
        if trained is not None:
            lines.append(
                f"{arm} at {horizon.axis}={value}: ‖dh_T/dx_1‖ / ‖dh_T/dx_T‖ = {trained:.1e} trained, "
                f"{fmt(probe_ratio(runs, 'dhT_dx', 'untrained'))} untrained"
            )
    return lines


# -- 2. tanh keeps h bounded --------------------------------------------------------------------------
def tanh_bounded(zero_input, horizon) -> list[Verdict]:
    """From the zero-input computation (`ZeroInput`: norms by (activation, radius), and the state size)."""
    explode, vanish = "2a", "2b"
    if zero_input is None:
        return [Verdict(explode, NOT_TESTED), Verdict(vanish, NOT_TESTED)]
    hidden = zero_input.hidden
    lin_up, tanh_up = zero_input[("linear", 1.1)][-1], zero_input[("tanh", 1.1)]
    lin_down, tanh_down = zero_input[("linear", 0.9)][-1], zero_input[("tanh", 0.9)][-1]
    trained = ablation_evidence(horizon)
    bounded = max(tanh_up) <= hidden**0.5 + 1e-9
    first = Verdict(
        explode,
        SUPPORTED if bounded and lin_up > 1e3 else NOT_SUPPORTED,
        [
            f"zero input, r = 1.1, 100 steps: ‖h‖ linear {lin_up:.3g}, tanh at most {max(tanh_up):.3g} "
            f"(|h_i| ≤ 1 ⇒ ‖h‖ ≤ √{hidden} = {hidden**0.5:.3g})",
            *trained,
        ],
    )
    second = Verdict(
        vanish,
        SUPPORTED if tanh_down > 10 * lin_down else NOT_SUPPORTED,
        [
            f"zero input, r = 0.9, 100 steps: ‖h‖ linear {lin_down:.3g}, tanh {tanh_down:.3g}",
            "|tanh(x)| ≤ |x|, so tanh can only shrink the state faster: it bounds explosion but cannot "
            "prevent vanishing (what the gated cells and IRNN address).",
        ],
    )
    return [first, second]


def ablation_evidence(horizon) -> list[str]:
    """Trained evidence for 2a, from unclipped runs only: gradient clipping would mask an explosion."""
    if horizon is None:
        return []
    lines, clipped = [], []
    for arm in (f"{RNN_ARM}/{name}" if name else RNN_ARM for name in ("unclipped", "linear", "", "relu", "irnn")):
        cells = horizon.table.get(arm)
        if not cells:
            continue
        if any(clip != 0 for c in cells.values() for clip in c.clips) or not any(c.clips for c in cells.values()):
            clipped.append(arm)
            continue
        runs = sum(c.runs for c in cells.values())
        diverged = sum(c.diverged for c in cells.values())
        worst = max((score(c, False) or 0 for c in cells.values()), default=0)
        lines.append(
            f"trained without gradient clipping, {arm}: {diverged} of {runs} runs diverged; worst mean "
            f"test loss / baseline {fmt(worst)}"
        )
    if clipped:
        lines.append(
            f"not used as evidence (trained with gradient clipping, which masks an explosion): {', '.join(clipped)}"
        )
    return lines


# -- 3., 4. variants vs one layer ---------------------------------------------------------------------
def variant_claim(task, studies, horizon, variant: str, claim: str) -> Verdict:
    metric = Metric.test(task.report_metric)
    higher = task.higher_is_better
    pairs = [(s, counterpart(s, studies, "simple", s.cell)) for s in studies if s.variant == variant]
    pairs = [(s, reference) for s, reference in pairs if reference is not None]
    evidence, tests, signs, improving = [], [], [], 0
    budget = next((run_budget(r.params) for s, _ in pairs for r in s.finished_finals if r.params), "?")
    for better, reference in pairs:
        comparison = compare(final_values(better, metric), final_values(reference, metric), higher)
        sa, sb = comparison.a, comparison.b
        if not (sa and sb):
            continue
        tests.append(comparison.p)
        signs.append(comparison.a_better)
        improving += sum(  # flat runs (never left the baseline) are no more converged than improving ones
            bool(r.still_improving) or r.flat for r in better.finished_finals + reference.finished_finals
        )
        evidence.append(
            f"{better.cell}{' ' + better.grid if better.grid else ''}: {metric} {fmt(sa.mean)} ± "
            f"{fmt(sa.sd)} ({variant}) vs {fmt(sb.mean)} ± {fmt(sb.sd)} (simple)"
        )
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
                evidence.append(
                    f"horizon {arm} {horizon.describe(arm, higher)} vs {base} {horizon.describe(base, higher)}"
                )
    if not evidence:
        return Verdict(claim, NOT_TESTED, [f"no finished {variant} and simple studies with the same cell."])
    if wins and not losses:
        verdict = SUPPORTED
    elif losses and not wins:
        verdict = BUDGET_LIMITED if improving else NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    scale = "" if higher else " on log values"
    evidence.insert(
        0,
        f"{wins} significant win(s) and {losses} significant loss(es) for {variant} over "
        f"{len(tests)} comparisons (Welch{scale}, Holm-adjusted within this claim, α = 0.05)"
        + (
            f"; {improving} of the final runs compared were still improving at the end of their budget ({budget}) "
            "or never left the baseline"
            if improving
            else ""
        ),
    )
    return Verdict(claim, verdict, evidence)


# -- 5. pretrained embeddings --------------------------------------------------------------------------
def embeddings_curb_overfitting(task, studies) -> Verdict:
    claim = "5"
    metric = Metric.test(task.report_metric)
    pretrained = [s for s in studies if s.variant == "embedding-pretrained" and "train_subset=" in s.grid]
    pairs = [(p, counterpart(p, studies, "simple", p.cell)) for p in pretrained]
    pairs = [(p, s) for p, s in pairs if s is not None and p.finished_finals and s.finished_finals]
    if not pairs:
        return Verdict(claim, NOT_TESTED, ["no embedding-pretrained vs simple studies over labeled-subset sizes."])

    def size(pair) -> float:
        return min(final_values(pair[0], Metric.TRAIN_EXAMPLES) or [math.inf])

    smallest = min(size(pair) for pair in pairs)
    evidence, verdicts = [], []
    for p, s in sorted(pairs, key=size):
        a, b = final_values(p, metric), final_values(s, metric)
        gap_p = summarize([g for g in (train_validation_gap(r, task) for r in p.finished_finals) if g is not None])
        gap_s = summarize([g for g in (train_validation_gap(r, task) for r in s.finished_finals) if g is not None])
        source = grid_parts(p.grid).get("embedding_vectors", "")
        pvalue = compare(a, b, task.higher_is_better).p
        params_p, params_s = (
            summarize(final_values(p, Metric.PARAM_COUNT)),
            summarize(final_values(s, Metric.PARAM_COUNT)),
        )
        evidence.append(
            f"{int(size((p, s)))} labels, {p.cell}{' ' + source if source else ''}: {metric} {fmt(summarize(a).mean)} pretrained vs "
            f"{fmt(summarize(b).mean)} scratch (p = {fmt(pvalue)}); train (eval mode) − val gap "
            f"{fmt(gap_p.mean if gap_p else None)} vs {fmt(gap_s.mean if gap_s else None)}; trainable "
            f"parameters {int(params_p.mean) if params_p else '?'} vs {int(params_s.mean) if params_s else '?'}"
        )
        if size((p, s)) == smallest and pvalue is not None:
            better = (
                summarize(a).mean > summarize(b).mean
                if task.higher_is_better
                else summarize(a).mean < summarize(b).mean
            )
            smaller_gap = gap_p is not None and gap_s is not None and gap_p.mean < gap_s.mean
            if pvalue < 0.05 and better and smaller_gap:
                verdicts.append(SUPPORTED)
            elif pvalue < 0.05 and not better:
                verdicts.append(NOT_SUPPORTED)
            else:
                verdicts.append(INCONCLUSIVE)
    evidence.append(
        "verdict from the smallest labeled size: pretrained vectors must be significantly better on "
        "test (Welch, α = 0.05) with a smaller gap between train accuracy (eval mode, at the best "
        "validation, on a fixed train sample) and validation accuracy; with several sources, supported "
        "if any source is, not supported if every source is significantly worse"
    )
    if SUPPORTED in verdicts:
        verdict = SUPPORTED
    elif verdicts and all(v == NOT_SUPPORTED for v in verdicts):
        verdict = NOT_SUPPORTED
    else:
        verdict = INCONCLUSIVE
    return Verdict(claim, verdict, evidence)


def all_verdicts(task, studies, horizon, zero_input) -> list[Verdict]:
    """Every claim a task report judges, in registry order."""
    evidence = Evidence(task, studies, horizon, zero_input)
    return [claim.judge(evidence) for claim in CLAIMS.values() if claim.judge is not None]


def verdict_section(verdicts: list[Verdict]) -> list[str]:
    out = [
        "## Verdicts",
        "",
        "The claims of the material this suite was built from, each judged only on this "
        "report's runs (and, for 2, on the zero-input computation above). Words: **supported**; **not "
        "supported** (contradicted by converged runs); **budget-limited** (it rests on runs still improving "
        "when their budget ran out, or flat: never left the baseline); **inconclusive**; **not tested**. The first line under each claim is its "
        "key number (the claims page shows it).",
        "",
    ]
    for verdict in verdicts:
        scope = f" ({verdict.scope})" if verdict.scope else ""
        out.append(f"- **{verdict.title}** — ***{verdict.verdict}***{scope}")
        out += [f"  - {line}" for line in verdict.evidence]
    return out + [""]


# -- 6. computed, once, on the claims page -------------------------------------------------------------
def parameter_count_verdict() -> Verdict:
    """The suite's one-layer simple RNN against the textbook count (torch imported here only)."""
    from bench.models import NetConfig, RecurrentNet, count_parameters, textbook_rnn_parameters  # (lazy: start-up)

    hidden, inputs = 64, 16
    net = RecurrentNet(
        NetConfig(
            input_kind="floats",
            input_size=inputs,
            output_size=1,
            output_kind="per-sequence",
            cell=RNN,
            hidden=hidden,
            embedding_size=inputs,
        )
    )
    recurrent = count_parameters(net.recurrent)  # trainable: torch's second bias is frozen at 0
    expected = textbook_rnn_parameters(hidden, inputs)
    return Verdict(
        "6",
        SUPPORTED if recurrent == expected else NOT_SUPPORTED,
        [
            f"recurrent layer h={hidden}, x={inputs}: {recurrent:,} parameters, h·(h+x)+h = {expected:,} "
            f"trainable (PyTorch's nn.RNN has a second bias vector, fixed at zero here: {expected + hidden:,} "
            "with it)"
        ],
    )


# -- the registry: adding a claim is one entry here, its judge above, and a test -----------------------
@dataclass
class Evidence:
    """What a task report hands every judge."""

    task: object
    studies: list
    horizon: object
    zero_input: object


@dataclass(frozen=True)
class Claim:
    text: str  # as the material states it
    needs: str  # the runs (or computation) that can decide it
    judge: Callable[[Evidence], Verdict] | None = None  # a task report's verdict from its runs
    computed: Callable[[], Verdict] | None = None  # judged once, on the claims page, without runs
    decide: Callable[[ExperimentData], Decision] | None = None  # a claim experiment's verdict (claim_judges)
    delta: Delta | None = None  # the effect a "no effect" verdict rules out, fixed before the experiment ran


EFFECT_DELTA = Delta(
    0.02,
    1.25,
    "the widest bound the rules allow; a smaller difference would not change which variant a user picks, "
    "and five to eight seeds of one fixed configuration resolve it on the designed tasks",
)


CLAIMS: dict[str, Claim] = {
    "1": Claim(
        "The simple RNN is good at short-term and bad at long-term dependence.",
        "the simple RNN at two or more lags (make horizon, or a sweep grid over T)",
        lambda e: short_vs_long(e.task, e.horizon, e.studies),
        decide=lambda d: short_and_long(d, "1"),
    ),
    "2a": Claim(
        "tanh keeps the state bounded where a linear recurrence explodes.",
        "the zero-input computation (spectral radius > 1) and unclipped tanh/linear horizon arms",
        lambda e: tanh_bounded(e.zero_input, e.horizon)[0],
        decide=lambda d: bounded_state(d, "2a"),
    ),
    "2b": Claim(
        "tanh keeps the state alive where a linear recurrence dies.",
        "the zero-input computation (spectral radius < 1)",
        lambda e: tanh_bounded(e.zero_input, e.horizon)[1],
        decide=lambda d: bounded_state(d, "2b"),
    ),
    "3": Claim(
        "Several layers beat one.",
        "finished stacked and simple studies of the same cell",
        lambda e: variant_claim(e.task, e.studies, e.horizon, "stacked", "3"),
        decide=lambda d: contrasts(d, "3", EFFECT_DELTA),
        delta=EFFECT_DELTA,
    ),
    "4": Claim(
        "Bidirectional beats unidirectional.",
        "finished bidirectional and simple studies of the same cell",
        lambda e: variant_claim(e.task, e.studies, e.horizon, "bidirectional", "4"),
        decide=lambda d: contrasts(d, "4", EFFECT_DELTA),
        delta=EFFECT_DELTA,
    ),
    "5": Claim(
        "Pretrained embeddings curb overfitting when labeled data is small.",
        "embedding-pretrained and simple studies over labeled-subset sizes",
        lambda e: embeddings_curb_overfitting(e.task, e.studies),
        decide=lambda d: contrasts(d, "5", EFFECT_DELTA),
        delta=EFFECT_DELTA,
    ),
    "6": Claim(
        "A simple RNN has h·(h+x) + h parameters.",
        "the parameter count of the suite's simple RNN (computed)",
        computed=parameter_count_verdict,
    ),
    "7": Claim(
        "Gated cells (LSTM, GRU) fix the simple RNN's long-term failure: they pass at lags where it fails.",
        "the simple RNN and the gated cells at lags where the simple RNN fails (a claim experiment)",
        decide=lambda d: gated_fix(d, "7"),
    ),
}
