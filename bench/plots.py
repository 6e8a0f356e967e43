"""Every figure of the suite, in one place: the report's figures and the probe's run artifact. Each
function takes prepared values, draws one PNG and closes it (`save_figure`). matplotlib (Agg, no
display) is imported here only, and this module only by the code that draws."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from bench.horizon_rule import score  # noqa: E402
from bench.run_keys import Metric
from bench.stats import summarize  # noqa: E402


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


# -- sweep report ------------------------------------------------------------------------------------
def test_metric(shown: list[tuple[str, object]], baseline: float | None, metric: str, path: Path) -> None:
    """Mean ± sd over final seeds per study (`shown`: (label, Summary)), and the memoryless baseline."""
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(shown) + 2), 3.6))
    positions = range(len(shown))
    ax.errorbar(
        positions,
        [s.mean for _, s in shown],
        yerr=[0 if math.isnan(s.sd) else s.sd for _, s in shown],
        fmt="o",
        capsize=4,
    )
    if baseline is not None:
        ax.axhline(baseline, color="grey", linestyle="--", label=f"memoryless baseline {baseline:.4g}")
        ax.legend(loc="best", fontsize=8)
    ax.set_xticks(list(positions), [name for name, _ in shown], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (mean ± sd over seeds)")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def val_curves(curves: dict[str, list[tuple[int, float]]], baseline, monitor, path: Path) -> None:
    """Each curve's (optimizer step, value) points: the step MLflow logged each validation at (a point is
    an epoch or `eval_every_steps` steps, so the axis is in steps, never "epochs")."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, points in curves.items():
        ax.plot([step for step, _ in points], [value for _, value in points], marker=".", label=name)
    if baseline is not None and monitor == Metric.val("loss"):
        ax.axhline(baseline, color="grey", linestyle="--", label="memoryless baseline")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(monitor)
    ax.set_title("validation curve of each study's best trial", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def optimisation_history(
    histories: list[tuple[str, list[tuple[int, float, str]]]], monitor_best: str, mode: str, path: Path
) -> None:
    """Optuna's optimisation history per study: each trial's objective and the best so far.
    `histories`: (study label, [(trial number, objective, state)] sorted by trial number)."""
    columns = min(3, len(histories))
    rows = math.ceil(len(histories) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), squeeze=False)
    for ax, (name, points) in zip(axes.flat, histories):
        done = [(n, v) for n, v, state in points if state == "complete" and v is not None]
        pruned = [(n, v) for n, v, state in points if state == "pruned" and v is not None]
        if done:
            ax.scatter(*zip(*done), s=14, label="complete")
            best, so_far = [], None
            for n, v in done:
                so_far = v if so_far is None else (min(so_far, v) if mode == "min" else max(so_far, v))
                best.append((n, so_far))
            ax.step(*zip(*best), where="post", color="red", label="best so far")
        if pruned:
            ax.scatter(*zip(*pruned), s=14, color="grey", marker="x", label="pruned")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("trial", fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(histories) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel(monitor_best, fontsize=8)
    axes.flat[0].legend(fontsize=6)
    save_figure(fig, path)


def learning_curve(curves: dict[str, list[tuple[float, float, float]]], metric: str, path: Path) -> None:
    """Test metric by labeled training examples: curve name -> [(size, mean, sd)]."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, points in curves.items():
        points.sort()
        ax.errorbar(
            [p[0] for p in points],
            [p[1] for p in points],
            yerr=[0 if math.isnan(p[2]) else p[2] for p in points],
            marker="o",
            capsize=3,
            label=name,
        )
    ax.set_xscale("log")
    ax.set_xlabel("labeled training examples")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


# -- long-range sections -----------------------------------------------------------------------------
def horizon_arms(task, data, arms: list[str], path: Path, title: str) -> None:
    """Each arm's score (metric / baseline for losses, the metric for accuracy) against the length."""
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
    save_figure(fig, path)


def gradient_probe(curves: dict[str, dict], path: Path, subtitle: str) -> None:
    """The probe's ‖dh_T/dx_t‖ and ‖dL/dh_t‖ by distance, trained (solid) and untrained (dotted), per arm."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (column, name) in zip(axes, (("dhT_dx", "‖dh_T/dx_t‖"), ("dL_dh", "‖dL/dh_t‖"))):
        for index, (arm, columns) in enumerate(curves.items()):
            color = f"C{index}"
            for which, style in (("trained", "-"), ("untrained", ":")):
                values = columns.get(f"{column}_{which}", [])
                if values and any(math.isfinite(v) and v > 0 for v in values):
                    ax.semilogy(columns["distance"], values, style, color=color, label=f"{arm} ({which})")
        ax.set_xlabel("distance from the last step (T − t)")
        ax.set_title(f"{name} — {subtitle}", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    save_figure(fig, path)


def zero_input(norms: dict[tuple[str, float], list[float]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (activation, radius), values in norms.items():
        ax.semilogy(values, "-" if activation == "tanh" else "--", label=f"{activation}, r={radius}")
    ax.set_xlabel("step t (zero input)")
    ax.set_ylabel("‖h_t‖")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


# -- run artifacts -----------------------------------------------------------------------------------
def probe_artifact(columns: dict[str, list[float]], names: dict[str, str], title: str, path: Path) -> None:
    """One horizon run's gradient probe: a panel per column (`names`: column -> axis title)."""
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2))
    for ax, (column, name) in zip(axes, names.items()):
        for which, style in (("trained", "-"), ("untrained", "--")):
            values = columns.get(f"{column}_{which}", [])
            if values and any(math.isfinite(v) and v > 0 for v in values):
                ax.semilogy(columns["distance"], values, style, label=which)
        ax.set_xlabel("distance from the last step (T − t)")
        ax.set_title(name)
        if ax.get_legend_handles_labels()[0]:  # bidirectional nets have no dL/dh_t curve
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path, dpi=100)
