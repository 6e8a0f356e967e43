"""Report sections on long-range memory, from the horizon runs in MLflow (`make horizon`): the memory
horizon per variant x cell, the simple RNN's activation ablation, the gradient-decay probe, and the
zero-input thought experiment (computed here: it needs no training). Each section takes the prepared
report (`bench.report.Report`) and returns its markdown lines ([] when it has nothing to show)."""

from __future__ import annotations

from dataclasses import dataclass

from bench import plots
from bench.cells import reference_cell
from bench.horizon_rule import LEGEND, format_table, ordered_arms
from bench.markdown import MISSING, compute_text, markdown_table, scientific
from bench.results import compute_time, probe_curves, probe_ratio, probe_runs
from bench.run_keys import Tag

ZERO_INPUT_RADII = (0.9, 1.0, 1.1)
ZERO_INPUT_STEPS, ZERO_INPUT_HIDDEN = 100, 64

RNN_ARM = f"simple/{reference_cell()}"  # the simple RNN and its activation ablation


def horizon_section(report) -> list[str]:
    task, data = report.task, report.horizon
    if not data:
        return []
    main_arms = [a for a in ordered_arms(data.table) if a.count("/") == 1]
    higher = task.higher_is_better
    criterion = (
        f"the one-sided 95% lower bound of the mean test {task.report_metric} is above baseline + "
        f"{data.margin:g} × (1 − baseline)"
        if higher
        else f"the one-sided 95% upper bound of the mean test {task.report_metric} / baseline is below "
        f"{1 - data.margin:g}"
    )
    plots.horizon_arms(task, data, main_arms, report.images / "horizon.png", f"memory horizon ({data.profile} profile)")
    sources = [f"{a}: {data.sources[a]}" for a in main_arms]
    return [
        "## Memory horizon",
        "",
        f"`make horizon TASK={task.name} PROFILE={data.profile}`: every variant × cell trained at each "
        f"{data.axis} with {data.seeds} seeds (configurations: {'; '.join(sources)}). An arm's **horizon** is the "
        f"largest {data.axis} at which {criterion}; failed and diverged runs are misses, scored at the "
        f"baseline. {LEGEND}",
        "",
        f"Compute (every arm, the ablation's too): {compute_text(*compute_time(data.runs))}.",
        "",
        *format_table(task, {a: data.table[a] for a in main_arms}, data.margin),
        "",
        f"![memory horizon]({task.name}/horizon.png)",
        "",
    ]


ABLATION_WORDS = {  # what the shipped horizon files' ablation arms are (an arm of another name: its file says)
    "linear": "no activation",
    "relu": "ReLU",
    "irnn": "ReLU with identity-initialised recurrent weights, Le, Jaitly & Hinton 2015",
    "unclipped": "tanh without gradient clipping",
}


def ablation_section(report) -> list[str]:
    task, data = report.task, report.horizon
    arms = [a for a in ordered_arms(data.table) if a.startswith(f"{RNN_ARM}/")] if data else []
    if not arms:
        return []
    table = {f"{RNN_ARM} (tanh)": data.table.get(RNN_ARM, {}), **{a: data.table[a] for a in arms}}
    plots.horizon_arms(task, data, [RNN_ARM, *arms], report.images / "ablation.png", "simple RNN: activation ablation")
    rows = []
    for arm in [RNN_ARM, *arms]:
        cells = data.table.get(arm, {})
        runs = sum(c.runs for c in cells.values())
        diverged = sum(c.diverged for c in cells.values())
        rows.append(
            [arm, str(runs), str(diverged), ", ".join(str(v) for v in sorted(cells) if cells[v].diverged) or MISSING]
        )
    return [
        "## Activation ablation (simple RNN)",
        "",
        "The same simple RNN with tanh and, as trained here, "
        + ", ".join(
            f"`{a.removeprefix(RNN_ARM + '/')}` ({ABLATION_WORDS.get(a.removeprefix(RNN_ARM + '/'), 'as its horizon file sets it')})"
            for a in arms
        )
        + ", at each length; same table as above.",
        "",
        *format_table(task, table, data.margin),
        "",
        "Stability: runs stopped because the training loss became non-finite.",
        "",
        *markdown_table(["arm", "runs", "diverged", "at lengths"], rows),
        "",
        f"![activation ablation]({task.name}/ablation.png)",
        "",
    ]


# -- gradient-decay probe ----------------------------------------------------------------------------
PROBE_RATIOS = {"dhT_dx": "‖dh_T/dx_1‖ / ‖dh_T/dx_T‖", "dL_dh": "‖dL/dh_1‖ / ‖dL/dh_T‖"}


def probe_section(report) -> list[str]:
    task, data = report.task, report.horizon
    if not data:
        return []
    arms = [a for a in ordered_arms(data.table) if a.startswith("simple/")]
    lengths = sorted({v for a in arms for v in data.table[a]})
    if not lengths:
        return []
    header = [
        "arm",
        *(
            f"{data.axis}={v}: {name} trained / untrained"
            for v in (lengths[0], lengths[-1])
            for name in PROBE_RATIOS.values()
        ),
    ]
    rows, curves = [], {}
    for arm in arms:
        cells = [arm]
        for value in (lengths[0], lengths[-1]):
            runs = probe_runs(data, arm, value)
            for column in PROBE_RATIOS:
                trained, untrained = probe_ratio(runs, column, "trained"), probe_ratio(runs, column, "untrained")
                cells.append(f"{scientific(trained)} / {scientific(untrained)}")
        rows.append(cells)
        runs = probe_runs(data, arm, lengths[-1])
        if runs:
            curves[arm] = probe_curves(min(runs, key=lambda r: int(r.tags.get(Tag.SEED, 0))).run_id)
    plots.gradient_probe(
        curves, report.images / "gradient_probe.png", f"{data.axis}={lengths[-1]}, seed with the lowest number"
    )
    return [
        "## Gradient-decay probe",
        "",
        'The measured form of "the derivative of h_100 with respect to x_1 is nearly 0": on 32 validation '
        "sequences, the norm of dh_T/dx_t (the last state's dependence on the input at step t) and of dL/dh_t "
        "(the last step's loss with respect to the whole recurrent state after step t), for the trained network "
        "(best-validation weights) and the same network at initialisation. The table gives the ratio of the "
        "first step to the last (how much of the signal crosses the whole sequence; median over seeds; "
        "dL/dh is not defined for bidirectional networks; 0 means the norm underflowed float32: nothing of the "
        "first input reaches the end). Per-run CSV and PNG: artifacts `probe/` of each horizon run.",
        "",
        *markdown_table(header, rows),
        "",
        f"![gradient probe]({task.name}/gradient_probe.png)",
        "",
    ]


# -- zero input ---------------------------------------------------------------------------------------
@dataclass
class ZeroInput:
    """||h_t|| by (activation, spectral radius), for a state of `hidden` units."""

    norms: dict[tuple[str, float], list[float]]
    hidden: int = ZERO_INPUT_HIDDEN

    def __getitem__(self, key: tuple[str, float]) -> list[float]:
        return self.norms[key]

    def items(self):
        return self.norms.items()


def zero_input_table() -> ZeroInput:
    """||h_t|| for t = 0..100 of h_t = act(r Q h_{t-1}), Q a seeded random orthogonal 64 x 64 matrix
    (spectral radius exactly r), h_0 a random unit vector."""
    import torch  # only for reports of long-range tasks (seconds to import)

    from bench.diagnostics import zero_input_norms  # imports torch

    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(ZERO_INPUT_HIDDEN, ZERO_INPUT_HIDDEN, dtype=torch.float64, generator=generator))
    start = torch.randn(ZERO_INPUT_HIDDEN, dtype=torch.float64, generator=generator)
    start /= start.norm()
    return ZeroInput(
        {
            (activation, r): zero_input_norms(r * q, ZERO_INPUT_STEPS, activation, start).tolist()
            for activation in ("linear", "tanh")
            for r in ZERO_INPUT_RADII
        }
    )


def zero_input_section(report) -> list[str]:
    table = report.zero_input
    if not table:
        return []
    shown = (0, 10, 50, 100)
    rows = [
        [activation, f"{radius}", *(f"{norms[t]:.3g}" for t in shown)] for (activation, radius), norms in table.items()
    ]
    plots.zero_input(table.norms, report.images / "zero_input.png")
    return [
        "## Zero input: tanh vs linear",
        "",
        f"The thought experiment, computed: h_t = act(W h_(t−1)) with no input and no bias, W = r·Q for a seeded "
        f"random orthogonal {ZERO_INPUT_HIDDEN}×{ZERO_INPUT_HIDDEN} matrix Q (spectral radius exactly r), from a "
        "unit-norm h_0.",
        "",
        *markdown_table(["activation", "spectral radius", *(f"‖h_{t}‖" for t in shown)], rows),
        "",
        f"![zero-input norms]({report.task.name}/zero_input.png)",
        "",
    ]
