"""The cells page (`make cells-reference`): every cell of the `cells` horizon profile side by side on the
tasks that have it (memory horizons, gradient-probe ratios) and their training step times against nn.GRU,
from the horizon runs in MLflow and the file `make bench-cells` writes. One page over several tasks'
horizons; a user's `make report` never writes it into reports/reference."""

from __future__ import annotations

import json
from pathlib import Path

from bench.horizon_rule import LEGEND, format_table, ordered_arms, tabulate
from bench.markdown import MISSING, compute_text, markdown_table, scientific
from bench.registry import get_task
from bench.results import compute_time, probe_ratio, probe_runs, read_horizon
from bench.run_keys import Tag

PROFILE = "cells"  # the horizon profile that puts the new cells beside the classic ones
TASKS = ("copy-memory", "adding", "mqar")
PAGE = "modern-cells.md"
STEP_TIMES = "modern-cells/step_times.json"  # written by `make bench-cells` (bench/benchmarks/cell_speed.py)


def criterion(task, margin: float) -> str:
    if task.higher_is_better:
        return f"lower 95% bound of the mean test {task.report_metric} is above baseline + {margin:g} × (1 − baseline)"
    return f"upper 95% bound of the mean test {task.report_metric} / baseline is below {1 - margin:g}"


def task_section(name: str) -> tuple[list[str], list]:
    task = get_task(name)
    data = tabulate(task, read_horizon(task, profile=PROFILE))
    if data is None:
        return [f"## {name}", "", f"No runs yet: `make horizon TASK={name} PROFILE={PROFILE}`.", ""], []
    longest = max(v for cells in data.table.values() for v in cells)
    probes = []
    for arm in ordered_arms(data.table):
        runs = probe_runs(data, arm, longest)
        trained, untrained = probe_ratio(runs, "dhT_dx", "trained"), probe_ratio(runs, "dhT_dx", "untrained")
        probes.append([arm, str(len(runs)), scientific(trained), scientific(untrained)])
    return [
        f"## {name}",
        "",
        f"{task.description}. Every arm trained at each {data.axis} with {data.seeds} seeds; an arm passes "
        f"when the {criterion(task, data.margin)}. {LEGEND}",
        "",
        *format_table(task, data.table, data.margin),
        "",
        f"Gradient probe at {data.axis}={longest} (median over seeds of ‖dh_T/dx_1‖ / ‖dh_T/dx_T‖: how much the "
        "last state still depends on the first input, against the last):",
        "",
        *markdown_table(["arm", "runs", "trained", "untrained"], probes),
        "",
        f"Compute: {compute_text(*compute_time(data.runs))}.",
        "",
    ], data.runs


def step_time_section(path: Path) -> list[str]:
    if not path.exists():
        return ["## Training step time", "", f"No measurement yet: `make bench-cells` writes {path.name}.", ""]
    measured = json.loads(path.read_text())
    lengths = sorted({int(t) for row in measured["ratios"].values() for t in row})
    rows = [
        [cell, *(f"{row[str(t)]:.2f}×" if str(t) in row else MISSING for t in lengths)]
        for cell, row in measured["ratios"].items()
    ]
    return [
        "## Training step time",
        "",
        f"One training step of one layer against nn.GRU at the same size ({measured['setup']}); "
        f"{measured['machine']}. Below 1 is faster than nn.GRU.",
        "",
        *markdown_table(["cell", *(f"T={t}" for t in lengths)], rows),
        "",
    ]


def write_cells_page(out: Path) -> Path:
    sections, runs = [], []
    for name in TASKS:
        lines, task_runs = task_section(name)
        sections += lines
        runs += task_runs
    loads = sorted(float(r.tags[Tag.LOAD_AVERAGE]) for r in runs if Tag.LOAD_AVERAGE in r.tags)
    load = f"load {loads[0]:.1f}–{loads[-1]:.1f} at the runs' starts" if loads else "load not recorded"
    hardware = "; ".join(sorted({r.tags.get(Tag.HARDWARE, "unknown") for r in runs})) or MISSING
    header = [
        "# Modern recurrent cells beside the classics",
        "",
        f"The horizon profile `{PROFILE}` of each task: the tanh RNN, LSTM and GRU beside minGRU, minLSTM "
        "(Feng et al. 2024) and LRU (Orvieto et al. 2023), one layer each, the same fixed configuration for "
        "every cell (no per-cell tuning: a cell that fails here may pass at another learning rate).",
        "",
        f"All tasks: {compute_text(*compute_time(runs)) if runs else MISSING}; {hardware}; {load}.",
        "",
    ]
    page = out / PAGE
    page.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(header + sections + step_time_section(out / STEP_TIMES)).rstrip() + "\n"
    temporary = page.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(page)
    return page
