"""A horizon file (`sweeps/horizon/<task>.yaml`): which arms (variant x cell, plus the simple RNN's
activation ablation) train at which lengths with which seeds, read and validated once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cells import reference_cell
from bench.config import resolve_config
from bench.errors import UserError
from bench.file_schema import HorizonFile, top_keys, validate
from bench.paths import ROOT
from bench.registry import get_task
from bench.sweep_config import budget_knobs, describe_budget, read_profiled_file

HORIZON_DIR = ROOT / "sweeps" / "horizon"
TOP_KEYS = top_keys(HorizonFile)
PROFILE_KEYS = TOP_KEYS - {"task", "profiles"}


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
    # (variant, cell) -> (searched knobs, where from): the configurations the arms train with, resolved
    # from the sweep once per call (horizon.resolve_configs); None until then
    tuned: dict[tuple[str, str], tuple[dict, str]] | None = field(default=None, compare=False)

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
        if self.tuned:  # a sweep whose best changed since: a fresh set, never one cell of two configurations
            knobs["tuned"] = {f"{v}/{c}": tuned for (v, c), (tuned, _) in sorted(self.tuned.items())}
        return hashlib.sha256(json.dumps(knobs, sort_keys=True, default=str).encode()).hexdigest()[:8]


def horizon_path(task: str) -> Path:
    return HORIZON_DIR / f"{task}.yaml"


def load_horizon(task: str, profile: str | None = None, path: Path | None = None) -> HorizonSpec:
    """Read, merge the profile into, and validate a horizon file; UserError names file and key."""
    get_task(task)
    path = path or horizon_path(task)
    merged, profile = read_profiled_file(path, task, profile, "horizon", TOP_KEYS, PROFILE_KEYS)

    file = validate(HorizonFile, merged, path, profile)
    if file.axis not in get_task(task).settings:
        raise UserError(f"{path}: axis (profile {profile}): {file.axis!r} is not a setting of task {task}")
    arms = [Arm(v, c) for v in file.variants for c in file.cells] + [
        Arm("simple", reference_cell(), name) for name in file.ablation
    ]
    spec = HorizonSpec(
        task=task,
        profile=profile,
        path=path,
        axis=file.axis,
        values=file.values,
        seeds=file.seeds,
        margin=file.margin,
        max_epochs=file.max_epochs,
        settings=file.settings,
        fixed=file.fixed,
        arms=arms,
        ablation=file.ablation,
        configs_from=file.configs_from,
        jobs=file.jobs,
        description=file.description,
        max_steps=file.max_steps,
        eval_every_steps=file.eval_every_steps,
        patience_steps=file.patience_steps,
    )
    for arm in arms:  # every arm must resolve to a valid run at every length
        try:
            resolve_config(task, arm.variant, arm.cell, run_knobs(spec, arm, {}, spec.values[-1], spec.seeds[0]))
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
