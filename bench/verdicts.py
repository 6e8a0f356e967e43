"""The claims this suite exists to test, one registry entry each (`CLAIMS`, at the end: its text from the
material, the evidence it needs, its claim-experiment judge (bench.claim_judges), its delta, and how a
task report judges it from its own runs: the same judges, by the same rules (bench.claim_rules)). No
verdict without numbers: a claim a task's runs do not test says so."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

from bench.cells import CELLS, group, reference_cell
from bench.claim_judges import (
    Decision,
    Delta,
    ExperimentData,
    arm_runs,
    bounded_state,
    contrasts,
    ended_runs,
    gated_fix,
    short_and_long,
)
from bench.claim_rules import BUDGET_LIMITED, INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTED, SUPPORTED  # noqa: F401
from bench.horizon_rule import FAIL, PASS, Cell, add_run, judge
from bench.markdown import significant as fmt
from bench.results import counterpart, grid_parts, probe_ratio, probe_runs
from bench.run_keys import Tag
from bench.stats import summarize

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
    """The final-seed runs of one study as a horizon-rule Cell (for the horizon/sweep cross-check)."""
    cell = Cell()
    for run in runs:
        add_run(task, cell, run)
    return cell


def describe_cell(cell: Cell, margin: float, higher: bool) -> str:
    summary = summarize(cell.values)
    if summary is None or not cell.baseline:
        return "no finished runs"
    scale = 1 if higher else cell.baseline
    return f"{summary.mean / scale:.3g}{'' if higher else '×'} (n={summary.n}), {judge(cell, margin, higher)}"


# -- a task report's verdicts: its runs as an experiment, judged by the claims' own judges --------------
def from_decision(decision: Decision) -> Verdict:
    """A claim judge's decision as a report's verdict (its key line first)."""
    return Verdict(
        decision.claim, decision.verdict, [decision.key, *[e for e in decision.evidence if e != decision.key]]
    )


def report_data(task, table: dict, axis: str, margin: float, contrasts_: list, reference: str | None = None):
    spec = SimpleNamespace(axis=axis, margin=margin, reference=reference, contrasts=contrasts_, metric=None, lineup={})
    return ExperimentData(spec, task, table, {})


def lengths_table(task, studies, horizon) -> tuple[dict, str, float, str] | None:
    """The one-layer cells' runs by length: from the horizon (its variant x cell arms, not the activation
    ablation), else from sweep finals over a T grid (temporal-order at T=10 and 50). None without the
    simple RNN at two lengths."""
    table: dict[str, dict[int, object]] = {}
    if horizon is not None:
        groups: dict[tuple[str, int], list] = {}
        for run in ended_runs(horizon.runs):
            arm = run.tags.get(Tag.ARM, "")
            if arm.count("/") == 1 and arm.startswith("simple/"):
                groups.setdefault((arm, int(run.tags[Tag.HORIZON_VALUE])), []).append(run)
        for (arm, value), runs in groups.items():
            table.setdefault(arm, {})[value] = arm_runs(arm, task.report_metric, runs, math.nan)
        if len(table.get(RNN_ARM, {})) >= 2:
            return table, horizon.axis, horizon.margin, f"horizon ({horizon.profile})"
    table = {}
    for study in studies:
        length = grid_parts(study.grid).get("T")
        if study.variant == "simple" and length is not None and study.finished_finals:
            arm = f"simple/{study.cell}"
            table.setdefault(arm, {})[int(length)] = arm_runs(
                arm, task.report_metric, study.finished_finals + study.diverged_finals, math.nan
            )
    if len(table.get(RNN_ARM, {})) >= 2:
        return table, "T", DEFAULT_MARGIN, "sweep finals over the T grid"
    return None


def memory_claim(task, studies, horizon, claim: str) -> Verdict:
    """Claims 1 and 7 from this report's runs, by the same judges as the claim experiments."""
    found = lengths_table(task, studies, horizon)
    if found is None:
        return Verdict(claim, NOT_TESTED, ["no simple-RNN runs at two or more lengths in this report."])
    table, axis, margin, source = found
    gated = [[f"simple/{cell}", RNN_ARM] for cell in group("gated") if f"simple/{cell}" in table]
    data = report_data(task, table, axis, margin, gated, RNN_ARM)
    verdict = from_decision(short_and_long(data, claim) if claim == "1" else gated_fix(data, claim))
    extra = probe_evidence(horizon, max(table[RNN_ARM])) if horizon is not None else []
    verdict.evidence += [f"runs: {source}", *extra]
    return verdict


def study_label(study) -> str:
    return f"{study.variant}/{study.cell}" + (f" ({study.grid})" if study.grid else "")


def contrast_claim(task, studies, better_variant: str, claim: str, keep=lambda study: True) -> Verdict:
    """Claims 3, 4, 5: each study of `better_variant` against the simple study of its cell (and grid), one
    Holm family, by the claim experiments' rules."""
    table, pairs = {}, []
    for study in studies:
        if study.variant != better_variant or not keep(study):
            continue
        other = counterpart(study, studies, "simple", study.cell)
        if other is None or not study.finished_finals or not other.finished_finals:
            continue
        for one in (study, other):
            name = study_label(one)
            table[name] = {0: arm_runs(name, task.report_metric, one.finished_finals + one.diverged_finals, math.nan)}
        pairs.append([study_label(study), study_label(other)])
    if not pairs:
        return Verdict(claim, NOT_TESTED, [f"no finished {better_variant} and simple studies with the same cell."])
    return from_decision(contrasts(report_data(task, table, "", DEFAULT_MARGIN, pairs), claim, EFFECT_DELTA))


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


def all_verdicts(task, studies, horizon, zero_input) -> list[Verdict]:
    """Every claim a task report judges, in registry order."""
    evidence = Evidence(task, studies, horizon, zero_input)
    return [claim.judge(evidence) for claim in CLAIMS.values() if claim.judge is not None]


def verdict_section(verdicts: list[Verdict]) -> list[str]:
    out = [
        "## Verdicts",
        "",
        "The claims of the material this suite was built from, each judged on this report's runs by the "
        "same rules and judges as the claim experiments (stated on the claims page; 2a, 2b and 6 are judged "
        "once there). The claims page itself reads only the designed experiments (`make claims`). The first "
        "line under each claim is its key number.",
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
        lambda e: memory_claim(e.task, e.studies, e.horizon, "1"),
        decide=lambda d: short_and_long(d, "1"),
    ),
    "2a": Claim(
        "tanh keeps the state bounded where a linear recurrence explodes.",
        "the zero-input computation (spectral radius > 1) and unclipped tanh/linear horizon arms",
        decide=lambda d: bounded_state(d, "2a"),
    ),
    "2b": Claim(
        "tanh keeps the state alive where a linear recurrence dies.",
        "the zero-input computation (spectral radius < 1)",
        decide=lambda d: bounded_state(d, "2b"),
    ),
    "3": Claim(
        "Several layers beat one.",
        "finished stacked and simple studies of the same cell",
        lambda e: contrast_claim(e.task, e.studies, "stacked", "3"),
        decide=lambda d: contrasts(d, "3", EFFECT_DELTA),
        delta=EFFECT_DELTA,
    ),
    "4": Claim(
        "Bidirectional beats unidirectional.",
        "finished bidirectional and simple studies of the same cell",
        lambda e: contrast_claim(e.task, e.studies, "bidirectional", "4"),
        decide=lambda d: contrasts(d, "4", EFFECT_DELTA),
        delta=EFFECT_DELTA,
    ),
    "5": Claim(
        "Pretrained embeddings curb overfitting when labeled data is small.",
        "embedding-pretrained and simple studies over labeled-subset sizes",
        lambda e: contrast_claim(e.task, e.studies, "embedding-pretrained", "5", lambda s: "train_subset=" in s.grid),
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
        lambda e: memory_claim(e.task, e.studies, e.horizon, "7"),
        decide=lambda d: gated_fix(d, "7"),
    ),
}
