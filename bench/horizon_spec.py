"""A horizon file (`sweeps/horizon/<task>.yaml`): which arms (variant x cell, plus the simple RNN's
activation ablation) train at which lengths with which seeds, read and validated once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import resolve_config
from bench.errors import UserError
from bench.paths import ROOT
from bench.registry import get_task
from bench.sweep_config import budget_knobs, check_budget, describe_budget, read_profiled_file
from bench.variants import CELLS, VARIANTS

HORIZON_DIR = ROOT / "sweeps" / "horizon"
TOP_KEYS = {
    "task",
    "description",
    "axis",
    "margin",
    "configs_from",
    "fixed",
    "variants",
    "cells",
    "ablation",
    "values",
    "seeds",
    "max_epochs",
    "max_steps",
    "eval_every_steps",
    "patience_steps",
    "settings",
    "jobs",
    "profiles",
}
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
    max_steps: int = 0  # optimizer-step budget of every run (0: epochs only)
    eval_every_steps: int = 0
    patience_steps: int = 0

    @property
    def budget_knobs(self) -> dict[str, int]:
        return budget_knobs(self.max_epochs, self.max_steps, self.eval_every_steps, self.patience_steps)

    def describe_budget(self) -> str:
        return describe_budget(self.max_epochs, self.max_steps, self.eval_every_steps, self.patience_steps)

    @property
    def fingerprint(self) -> str:
        """What makes two runs of an arm at one length the same experiment: a file edited in any of
        these starts a fresh set of runs (tag horizon_spec) instead of mixing with the old ones."""
        knobs = {
            "axis": self.axis,
            "settings": self.settings,
            "fixed": self.fixed,
            "ablation": self.ablation,
            "max_epochs": self.max_epochs,
            "configs_from": self.configs_from,
        }
        if self.max_steps:  # (files without a step budget keep their old fingerprint)
            knobs["budget"] = [self.max_steps, self.eval_every_steps, self.patience_steps]
        return hashlib.sha256(json.dumps(knobs, sort_keys=True, default=str).encode()).hexdigest()[:8]


def horizon_path(task: str) -> Path:
    return HORIZON_DIR / f"{task}.yaml"


def load_horizon(task: str, profile: str | None = None, path: Path | None = None) -> HorizonSpec:
    """Read, merge the profile into, and validate a horizon file; UserError names file and key."""
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
    max_steps, eval_every_steps, patience_steps = check_budget(fail, merged)
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
    spec = HorizonSpec(
        task=task,
        profile=profile,
        path=path,
        axis=axis,
        values=sorted(values),
        seeds=seeds,
        margin=float(margin),
        max_epochs=max_epochs,
        settings=settings,
        fixed=fixed,
        arms=arms,
        ablation=ablation,
        configs_from=merged.get("configs_from"),
        jobs=jobs,
        description=merged.get("description", ""),
        max_steps=max_steps,
        eval_every_steps=eval_every_steps,
        patience_steps=patience_steps,
    )
    for arm in arms:  # every arm must resolve to a valid run at every length
        try:
            resolve_config(task, arm.variant, arm.cell, run_knobs(spec, arm, {}, values[-1], seeds[0]))
        except UserError as error:
            raise UserError(f"{path}: fixed/settings/ablation (profile {profile}, {arm.label}): {error}") from None
    return spec


def run_knobs(spec: HorizonSpec, arm: Arm, tuned: dict, value: int, seed: int) -> dict:
    """fixed < the sweep's best (tuned) < the task settings of the profile < the ablation < axis, seed."""
    return {
        **spec.fixed,
        **tuned,
        **spec.settings,
        **spec.ablation.get(arm.ablation, {}),
        spec.axis: value,
        "seed": seed,
        **spec.budget_knobs,
    }
