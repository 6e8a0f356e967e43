"""Memory horizon: how far back each variant x cell remembers (`make horizon TASK=copy-memory`).

For every length T of a grid (task setting `axis`, e.g. T), every arm (variant x cell, plus the simple
RNN's activation ablation: linear, ReLU, identity-initialised ReLU) and K seeds, one training run,
logged to the task's MLflow experiment with stage=horizon. An arm's configuration is the best one
its (variant, cell) study found in the task's sweep (`configs_from`), else the file's fixed one.
Finished runs are found in MLflow and skipped, so an interrupted horizon run resumes where it stopped.

The horizon of an arm is the largest T of the grid at which its mean test metric still beats the
memoryless baseline by the margin: metric <= (1 - margin) x baseline (lower is better), or
metric >= baseline + margin x (1 - baseline) (accuracy). Torch is imported only to train.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import tracking
from bench.errors import UserError
from bench.paths import ROOT
from bench.stats import summarize
from bench.variants import CELLS, VARIANTS

HORIZON_DIR = ROOT / "sweeps" / "horizon"
TOP_KEYS = {"task", "description", "axis", "margin", "configs_from", "fixed", "variants", "cells", "ablation",
            "values", "seeds", "max_epochs", "settings", "jobs", "profiles"}
PROFILE_KEYS = TOP_KEYS - {"task", "profiles", "configs_from"}


@dataclass(frozen=True)
class Arm:
    """One curve of the horizon plot: a variant x cell, or an ablation of the simple RNN."""

    variant: str
    cell: str
    ablation: str = ""  # name of the activation-ablation arm, "" for the variant x cell grid

    @property
    def label(self) -> str:
        return "/".join(filter(None, [self.variant, self.cell, self.ablation]))


@dataclass
class HorizonSpec:
    task: str
    profile: str
    path: Path
    axis: str
    values: list[int]
    seeds: list[int]
    margin: float
    max_epochs: int
    settings: dict[str, Any]
    fixed: dict[str, Any]
    arms: list[Arm]
    ablation: dict[str, dict[str, Any]]
    configs_from: str | None
    jobs: int = 1
    description: str = ""

    @property
    def fingerprint(self) -> str:
        """What makes two runs of an arm at one length the same experiment: a file edited in any of
        these starts a fresh set of runs (tag horizon_spec) instead of mixing with the old ones."""
        knobs = {"axis": self.axis, "settings": self.settings, "fixed": self.fixed, "ablation": self.ablation,
                 "max_epochs": self.max_epochs, "configs_from": self.configs_from}
        return hashlib.sha256(json.dumps(knobs, sort_keys=True, default=str).encode()).hexdigest()[:8]


def horizon_path(task: str) -> Path:
    return HORIZON_DIR / f"{task}.yaml"


def load_horizon(task: str, profile: str | None = None, path: Path | None = None) -> HorizonSpec:
    """Read, merge the profile into, and validate a horizon file; UserError names file and key."""
    from bench.config import resolve_config
    from bench.registry import get_task
    from bench.sweep_config import read_profiled_file

    get_task(task)
    path = path or horizon_path(task)
    merged, profile = read_profiled_file(path, task, profile, "horizon", TOP_KEYS, PROFILE_KEYS)

    def fail(key: str, message: str):
        raise UserError(f"{path}: {key} (profile {profile}): {message}")

    axis = merged.get("axis", "T")
    if axis not in get_task(task).settings:
        fail("axis", f"{axis!r} is not a setting of task {task}")
    values = merged.get("values")
    if not isinstance(values, list) or not values or not all(isinstance(v, int) and v >= 1 for v in values):
        fail("values", "a non-empty list of positive integers (the lengths to train at)")
    seeds = merged.get("seeds", 3)
    seeds = list(range(seeds)) if isinstance(seeds, int) and not isinstance(seeds, bool) else seeds
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        fail("seeds", "a positive count or a list of non-negative integer seeds")
    margin = merged.get("margin", 0.1)
    if not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        fail("margin", f"a number in [0, 1) (got {margin!r})")
    max_epochs, jobs = merged.get("max_epochs", 10), merged.get("jobs", 1)
    for key, value in (("max_epochs", max_epochs), ("jobs", jobs)):
        if not isinstance(value, int) or value < 1:
            fail(key, f"a positive integer (got {value!r})")
    variants, cells = merged.get("variants") or ["simple"], merged.get("cells") or list(CELLS)
    for name in variants:
        if name not in VARIANTS:
            fail("variants", f"unknown variant {name!r}; allowed: {', '.join(VARIANTS)}")
    for name in cells:
        if name not in CELLS:
            fail("cells", f"unknown cell {name!r}; allowed: {', '.join(CELLS)}")
    ablation = merged.get("ablation") or {}
    if not isinstance(ablation, dict) or not all(isinstance(v, dict) for v in ablation.values()):
        fail("ablation", "a mapping of arm name: {knob: value} applied to the simple RNN")
    fixed, settings = merged.get("fixed") or {}, merged.get("settings") or {}
    arms = [Arm(v, c) for v in variants for c in cells] + [Arm("simple", "rnn", name) for name in ablation]
    spec = HorizonSpec(task=task, profile=profile, path=path, axis=axis, values=sorted(values), seeds=seeds,
                       margin=float(margin), max_epochs=max_epochs, settings=settings, fixed=fixed, arms=arms,
                       ablation=ablation, configs_from=merged.get("configs_from"), jobs=jobs,
                       description=merged.get("description", ""))
    for arm in arms:  # every arm must resolve to a valid run at every length
        try:
            resolve_config(task, arm.variant, arm.cell, run_knobs(spec, arm, {}, values[-1], seeds[0]))
        except UserError as error:
            raise UserError(f"{path}: fixed/settings/ablation (profile {profile}, {arm.label}): {error}") from None
    return spec


def run_knobs(spec: HorizonSpec, arm: Arm, tuned: dict, value: int, seed: int) -> dict:
    """fixed < the sweep's best (tuned) < the task settings of the profile < the ablation < axis, seed."""
    return {**spec.fixed, **tuned, **spec.settings, **spec.ablation.get(arm.ablation, {}),
            spec.axis: value, "seed": seed, "max_epochs": spec.max_epochs}


# -- configurations from the sweep -------------------------------------------------------------------
def tuned_configs(spec: HorizonSpec) -> dict[tuple[str, str], tuple[dict, str]]:
    """(variant, cell) -> (the searched knobs of its study's best configuration, where from), read
    from the final-seed runs of the sweep profile `configs_from` in MLflow. Missing -> not listed."""
    if not spec.configs_from:
        return {}
    from bench.results import read_task_runs
    from bench.sweep_config import load_sweep

    try:
        studies, _, _ = read_task_runs(spec.task, spec.configs_from)
    except UserError:
        return {}
    sweeps, found = {}, {}
    for study in studies:
        finals = study.finished_finals
        if study.grid or not finals:
            continue
        # The sweep file the study ran from (its parent run names it) says which knobs were searched.
        named = Path(study.parent.data.tags.get("sweep_file", "")) if study.parent else None
        path = named if named and named.is_file() else None
        if path not in sweeps:
            try:
                sweeps[path] = load_sweep(spec.task, spec.configs_from, path)
            except UserError:
                sweeps[path] = None
        sweep = sweeps[path]
        if sweep is None:
            continue
        params = finals[0].data.params
        keys = list(sweep.space_for(study.variant)) + (["hidden"] if sweep.match_parameters else [])
        knobs = {k: params[k] for k in keys if k in params}
        found[(study.variant, study.cell)] = (knobs, f"sweep {spec.configs_from} best trial "
                                                     f"{finals[0].data.tags.get('best_trial', '?')}")
    return found


# -- running -----------------------------------------------------------------------------------------
@dataclass
class Job:
    arm: Arm
    value: int
    seed: int
    knobs: dict
    source: str

    @property
    def key(self) -> tuple:
        return (self.arm.label, self.value, self.seed)


def finished_keys(spec: HorizonSpec) -> set[tuple]:
    """(arm, value, seed) of this spec's horizon runs that ended with a result (complete, or diverged)."""
    return {(r.data.tags["arm"], int(r.data.tags["horizon_value"]), int(r.data.tags["seed"]))
            for r in horizon_runs(spec.task, spec.profile, spec.fingerprint) if run_outcome(r) in ("complete", "diverged")}


def horizon_runs(task: str, profile: str | None = None, fingerprint: str | None = None) -> list:
    client = tracking.client()
    experiment = client.get_experiment_by_name(task)
    if experiment is None:
        return []
    query = "tags.stage = 'horizon'" + (f" and tags.horizon_profile = '{profile}'" if profile else "")
    query += f" and tags.horizon_spec = '{fingerprint}'" if fingerprint else ""
    return client.search_runs([experiment.experiment_id], query, max_results=50000)


def has_horizon_runs(task: str) -> bool:
    """Without creating a store that is not there, or failing on one that cannot be reached."""
    uri = tracking.tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return False
    try:
        return bool(horizon_runs(task))
    except Exception:
        return False


def run_outcome(run) -> str:
    state = run.data.tags.get("state", "")
    if state == "pruned" and run.data.tags.get("failure_reason", "").startswith("diverged"):
        return "diverged"
    return state or "running"


def plan(spec: HorizonSpec) -> list[Job]:
    tuned = tuned_configs(spec)
    jobs = []
    for value in spec.values:  # shortest first: partial results already cover every arm
        for seed in spec.seeds:
            for arm in spec.arms:
                knobs, source = tuned.get((arm.variant, arm.cell), ({}, "fixed configuration"))
                jobs.append(Job(arm, value, seed, run_knobs(spec, arm, knobs, value, seed), source))
    return jobs


def run_job(spec: HorizonSpec, job: Job, threads: int | None = None) -> str:
    """Train one run; returns its outcome (complete | diverged | failed)."""
    import torch

    from bench.config import resolve_config
    from bench.train import DivergedError, train

    if threads:
        torch.set_num_threads(threads)
    config = resolve_config(spec.task, job.arm.variant, job.arm.cell, {**job.knobs, "probe": True})
    tags = {"stage": "horizon", "horizon_profile": spec.profile, "horizon_spec": spec.fingerprint, "arm": job.arm.label, "ablation": job.arm.ablation,
            "horizon_axis": spec.axis, "horizon_value": job.value, "config_source": job.source}
    try:
        train(config, run_name=f"{spec.task}/horizon/{job.arm.label}/{spec.axis}={job.value}/seed{job.seed}",
              tags=tags, progress=False, finished_on=(DivergedError,))
    except DivergedError:
        return "diverged"
    except (KeyboardInterrupt, UserError):
        raise
    except Exception:  # recorded in MLflow (FAILED, with its traceback); the grid goes on
        return "failed"
    return "complete"


def run_horizon(spec: HorizonSpec, jobs: int | None = None, show_progress: bool = True) -> dict[str, int]:
    from tqdm import tqdm

    done, planned = finished_keys(spec), plan(spec)
    pending = [job for job in planned if job.key not in done]
    jobs = min(jobs or spec.jobs, max(len(pending), 1))
    counts = {"complete": 0, "diverged": 0, "failed": 0, "skipped": len(planned) - len(pending)}
    bar = tqdm(total=len(pending), desc=f"horizon {spec.task}:{spec.profile}", unit="run", disable=not show_progress)
    try:
        if jobs == 1:
            for job in pending:
                bar.set_postfix_str(f"{job.arm.label} {spec.axis}={job.value} seed {job.seed}")
                counts[run_job(spec, job)] += 1
                bar.update()
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            # spawn, not fork: the parent already holds MLflow's database connections
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(run_job, spec, job, threads) for job in pending]
                for future in as_completed(futures):
                    counts[future.result()] += 1
                    bar.update()
                    bar.set_postfix(counts)
    finally:
        bar.close()
    return counts


# -- results -----------------------------------------------------------------------------------------
@dataclass
class Cell:
    """One (arm, value) of the horizon table: the seeds' test metric and outcomes."""

    values: list[float] = field(default_factory=list)  # test metric of finished runs
    baseline: float | None = None
    diverged: int = 0
    failed: int = 0

    @property
    def runs(self) -> int:
        return len(self.values) + self.diverged + self.failed


def metric_key(task) -> tuple[str, str]:
    return f"test/{task.report_metric}", f"baseline/{task.report_metric}"


def collect(task, runs: list) -> dict[str, dict[int, Cell]]:
    """arm label -> value -> Cell, from horizon runs."""
    metric, baseline = metric_key(task)
    table: dict[str, dict[int, Cell]] = {}
    for run in runs:
        tags = run.data.tags
        cell = table.setdefault(tags["arm"], {}).setdefault(int(tags["horizon_value"]), Cell())
        outcome = run_outcome(run)
        if baseline in run.data.metrics:
            cell.baseline = run.data.metrics[baseline]
        if outcome == "complete" and metric in run.data.metrics and math.isfinite(run.data.metrics[metric]):
            cell.values.append(run.data.metrics[metric])
        elif outcome == "diverged":
            cell.diverged += 1
        elif outcome == "failed":
            cell.failed += 1
    return table


def beats(mean: float, baseline: float, margin: float, higher_is_better: bool) -> bool:
    if higher_is_better:
        return mean >= baseline + margin * (1 - baseline)
    return mean <= (1 - margin) * baseline


def arm_horizon(cells: dict[int, Cell], margin: float, higher_is_better: bool) -> tuple[int | None, bool]:
    """(largest value at which the mean beats the baseline by the margin, whether every shorter value
    did too). A diverged seed counts as not beating the baseline."""
    horizon, monotone, broken = None, True, False
    for value in sorted(cells):
        cell = cells[value]
        summary = summarize(cell.values) if not cell.diverged else None
        ok = summary is not None and cell.baseline is not None and beats(summary.mean, cell.baseline, margin,
                                                                           higher_is_better)
        if ok:
            horizon = value
            monotone = monotone and not broken
        else:
            broken = True
    return horizon, monotone


def describe_horizon(cells: dict[int, Cell], margin: float, higher_is_better: bool) -> str:
    """"none", "20", "≥ 100 (longest tested)" or "50 (not monotone)"."""
    horizon, monotone = arm_horizon(cells, margin, higher_is_better)
    if horizon is None:
        return "none"
    if horizon == max(cells):
        return f"≥ {horizon} (longest tested)"
    return f"{horizon}" + ("" if monotone else " (not monotone)")


def score(cell: Cell, higher_is_better: bool) -> float | None:
    """What the horizon plot shows: metric / baseline (losses), or the metric itself (accuracy)."""
    summary = summarize(cell.values)
    if summary is None or cell.baseline is None:
        return None
    return summary.mean if higher_is_better else summary.mean / cell.baseline


def format_table(task, table: dict[str, dict[int, Cell]], margin: float) -> list[str]:
    """Markdown: one row per arm, mean ± sd of the metric (/ baseline for losses) at each value, and
    the arm's horizon."""
    values = sorted({v for cells in table.values() for v in cells})
    higher = task.higher_is_better
    lines = ["| arm | " + " | ".join(f"{v}" for v in values) + " | horizon |", "|" + "---|" * (len(values) + 2)]
    for arm in ordered_arms(table):
        cells, row = table[arm], []
        for value in values:
            cell = cells.get(value)
            summary = summarize(cell.values) if cell else None
            if cell is None:
                row.append("–")
                continue
            text = "–"
            if summary and cell.baseline:
                scale = 1 if higher else cell.baseline
                text = short(summary.mean / scale) + (f" ± {short(summary.sd / scale)}" if summary.n > 1 else "")
            notes = [f"{cell.diverged} diverged"] * bool(cell.diverged) + [f"{cell.failed} failed"] * bool(cell.failed)
            row.append(text + (f" ({', '.join(notes)})" if notes else ""))
        lines.append(f"| {arm} | " + " | ".join(row) + f" | {describe_horizon(cells, margin, higher)} |")
    return lines


def short(value: float) -> str:
    """Two decimals, or two significant digits below 0.1 (a GRU at 0.003x the baseline is not 0.00)."""
    return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.2g}"


def ordered_arms(table: dict) -> list[str]:
    from bench.results import CELL_ORDER, VARIANT_ORDER

    def key(label: str):
        variant, cell, *ablation = label.split("/")
        return (bool(ablation), VARIANT_ORDER.get(variant, 9), CELL_ORDER.get(cell, 9), ablation)

    return sorted(table, key=key)
