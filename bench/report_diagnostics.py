"""Report sections on long-range memory, from the horizon runs in MLflow (`make horizon`): the memory
horizon per variant x cell, the simple RNN's activation ablation, the gradient-decay probe, and the
zero-input thought experiment (computed here: it needs no training)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench.horizon_rule import format_table, ordered_arms, score
from bench.results import HorizonData, probe_curves, probe_ratio, probe_runs
from bench.stats import summarize
from bench.tracking import Tag

ZERO_INPUT_RADII = (0.9, 1.0, 1.1)
ZERO_INPUT_STEPS, ZERO_INPUT_HIDDEN = 100, 64


def horizon_section(task, data: HorizonData, images: Path) -> list[str]:
    main_arms = [a for a in ordered_arms(data.table) if a.count("/") == 1]
    higher = task.higher_is_better
    criterion = (f"mean test {task.report_metric} ≥ baseline + {data.margin:g} × (1 − baseline)" if higher else
                 f"mean test {task.report_metric} ≤ {1 - data.margin:g} × the memoryless baseline")
    plot_arms(task, data, main_arms, images / "horizon.png", f"memory horizon ({data.profile} profile)")
    sources = sorted({data.sources[a] for a in main_arms})
    out = ["## Memory horizon", "",
           f"`make horizon TASK={task.name} PROFILE={data.profile}`: every variant × cell trained at each "
           f"{data.axis} with {data.seeds} seeds (configurations: {'; '.join(sources)}). An arm's **horizon** is the "
           f"largest {data.axis} at which {criterion}; a diverged seed counts as a miss. Cells show "
           f"{'the mean' if higher else 'mean / baseline'} ± sd over seeds.", "",
           *format_table(task, {a: data.table[a] for a in main_arms}, data.margin), "",
           f"![memory horizon]({task.name}/horizon.png)", ""]
    return out


def ablation_section(task, data: HorizonData, images: Path) -> list[str]:
    arms = [a for a in ordered_arms(data.table) if a.startswith("simple/rnn/")]
    if not arms:
        return []
    table = {"simple/rnn (tanh)": data.table.get("simple/rnn", {}), **{a: data.table[a] for a in arms}}
    plot_arms(task, data, ["simple/rnn", *arms], images / "ablation.png", "simple RNN: activation ablation")
    rows = []
    for arm in ["simple/rnn", *arms]:
        cells = data.table.get(arm, {})
        runs = sum(c.runs for c in cells.values())
        diverged = sum(c.diverged for c in cells.values())
        rows.append(f"| {arm} | {runs} | {diverged} | {', '.join(str(v) for v in sorted(cells) if cells[v].diverged) or '–'} |")
    return ["## Activation ablation (simple RNN)", "",
            "The same simple RNN with tanh, with no activation (linear), with ReLU, and with ReLU and identity-"
            "initialised recurrent weights (IRNN, Le, Jaitly & Hinton 2015), at each length; same table as above.", "",
            *format_table(task, table, data.margin), "",
            "Stability: runs stopped because the training loss became non-finite.", "",
            "| arm | runs | diverged | at lengths |", "|---|---|---|---|", *rows, "",
            f"![activation ablation]({task.name}/ablation.png)", ""]


def plot_arms(task, data: HorizonData, arms: list[str], path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for arm in arms:
        cells = data.table.get(arm, {})
        points = [(v, score(c, task.higher_is_better), summarize(c.values)) for v, c in sorted(cells.items())]
        points = [(v, s, sm) for v, s, sm in points if s is not None]
        if not points:
            continue
        scale = [1 if task.higher_is_better else cells[v].baseline for v, _, _ in points]
        errors = [0 if sm.n < 2 else sm.sd / k for (_, _, sm), k in zip(points, scale)]
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=errors, marker="o", capsize=3, label=arm)
    if task.higher_is_better:
        baselines = sorted({(v, c.baseline) for cells in data.table.values() for v, c in cells.items() if c.baseline})
        if baselines:
            ax.plot([b[0] for b in baselines], [b[1] for b in baselines], "k--", label="memoryless baseline")
        ax.set_ylabel(f"test {task.report_metric}")
    else:
        ax.axhline(1.0, color="k", linestyle="--", label="memoryless baseline")
        ax.axhline(1 - data.margin, color="gray", linestyle=":", label=f"horizon threshold ({1 - data.margin:g}×)")
        ax.set_ylabel(f"test {task.report_metric} / baseline")
        ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel(data.axis)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- gradient-decay probe ----------------------------------------------------------------------------
PROBE_RATIOS = {"dhT_dx": "‖dh_T/dx_1‖ / ‖dh_T/dx_T‖", "dL_dh": "‖dL/dh_1‖ / ‖dL/dh_T‖"}


def probe_section(task, data: HorizonData, images: Path) -> list[str]:
    arms = [a for a in ordered_arms(data.table) if a.startswith("simple/")]
    lengths = sorted({v for a in arms for v in data.table[a]})
    if not lengths:
        return []
    rows = ["| arm | " + " | ".join(f"{data.axis}={v}: {name} trained / untrained" for v in (lengths[0], lengths[-1])
                                    for name in PROBE_RATIOS.values()) + " |", "|---|" + "---|" * 4]
    curves = {}
    for arm in arms:
        cells = []
        for value in (lengths[0], lengths[-1]):
            runs = probe_runs(data, arm, value)
            for column in PROBE_RATIOS:
                trained, untrained = probe_ratio(runs, column, "trained"), probe_ratio(runs, column, "untrained")
                cells.append(f"{sci(trained)} / {sci(untrained)}")
        rows.append(f"| {arm} | " + " | ".join(cells) + " |")
        runs = probe_runs(data, arm, lengths[-1])
        if runs:
            curves[arm] = probe_curves(min(runs, key=lambda r: int(r.data.tags.get(Tag.SEED, 0))).info.run_id)
    plot_probe(curves, images / "gradient_probe.png", f"{data.axis}={lengths[-1]}, seed with the lowest number")
    return ["## Gradient-decay probe", "",
            "The measured form of \"the derivative of h_100 with respect to x_1 is nearly 0\": on 32 validation "
            "sequences, the norm of dh_T/dx_t (the last state's dependence on the input at step t) and of dL/dh_t "
            "(the last step's loss with respect to the whole recurrent state after step t), for the trained network "
            "(best-validation weights) and the same network at initialisation. The table gives the ratio of the "
            "first step to the last (how much of the signal crosses the whole sequence; median over seeds; "
            "dL/dh is not defined for bidirectional networks; 0 means the norm underflowed float32: nothing of the "
            "first input reaches the end). Per-run CSV and PNG: artifacts `probe/` of each horizon run.", "", *rows, "", f"![gradient probe]({task.name}/gradient_probe.png)", ""]


def sci(value: float | None) -> str:
    return "–" if value is None else f"{value:.1e}"


def plot_probe(curves: dict[str, dict], path: Path, subtitle: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (column, name) in zip(axes, (("dhT_dx", "‖dh_T/dx_t‖"), ("dL_dh", "‖dL/dh_t‖"))):
        for index, (arm, columns) in enumerate(curves.items()):
            color = f"C{index}"
            for which, style in (("trained", "-"), ("untrained", ":")):
                values = columns.get(f"{column}_{which}", [])
                if values and any(math.isfinite(v) and v > 0 for v in values):
                    ax.semilogy(columns["distance"], values, style, color=color,
                                label=f"{arm} ({which})")
        ax.set_xlabel("distance from the last step (T − t)")
        ax.set_title(f"{name} — {subtitle}", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    import torch

    from bench.diagnostics import zero_input_norms

    generator = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(ZERO_INPUT_HIDDEN, ZERO_INPUT_HIDDEN, dtype=torch.float64, generator=generator))
    start = torch.randn(ZERO_INPUT_HIDDEN, dtype=torch.float64, generator=generator)
    start /= start.norm()
    return ZeroInput({(activation, r): zero_input_norms(r * q, ZERO_INPUT_STEPS, activation, start).tolist()
                      for activation in ("linear", "tanh") for r in ZERO_INPUT_RADII})


def zero_input_section(task, table: ZeroInput, images: Path) -> list[str]:
    import matplotlib.pyplot as plt

    shown = (0, 10, 50, 100)
    rows = ["| activation | spectral radius | " + " | ".join(f"‖h_{t}‖" for t in shown) + " |", "|---|---|" + "---|" * len(shown)]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (activation, radius), norms in table.items():
        rows.append(f"| {activation} | {radius} | " + " | ".join(f"{norms[t]:.3g}" for t in shown) + " |")
        ax.semilogy(norms, "-" if activation == "tanh" else "--", label=f"{activation}, r={radius}")
    ax.set_xlabel("step t (zero input)")
    ax.set_ylabel("‖h_t‖")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(images / "zero_input.png", dpi=110)
    plt.close(fig)
    return ["## Zero input: tanh vs linear", "",
            f"The thought experiment, computed: h_t = act(W h_(t−1)) with no input and no bias, W = r·Q for a seeded "
            f"random orthogonal {ZERO_INPUT_HIDDEN}×{ZERO_INPUT_HIDDEN} matrix Q (spectral radius exactly r), from a "
            "unit-norm h_0.", "", *rows, "", f"![zero-input norms]({task.name}/zero_input.png)", ""]
