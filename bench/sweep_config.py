"""Sweep definitions (`sweeps/<task>.yaml`): parsing, profiles and validation, without torch.

A file lists the variants x cells to compare (one Optuna study each), the knobs held fixed, the
search space shared by every study (plus per-variant extras), the budget and the evaluation.
Profiles (`cpu`, `gpu`, `smoke`, ...) override any of these top-level keys.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.config import resolve_config
from bench.errors import UserError
from bench.paths import ROOT
from bench.registry import get_task
from bench.variants import CELLS, VARIANTS

SWEEP_DIR = ROOT / "sweeps"
TOP_KEYS = {
    "task",
    "description",
    "variants",
    "cells",
    "grid",
    "variant_grid",
    "fixed",
    "search_space",
    "variant_space",
    "trials",
    "max_epochs",
    "max_steps",
    "eval_every_steps",
    "patience_steps",
    "startup_trials",
    "pruner",
    "sampler_seed",
    "final_seeds",
    "match_parameters",
    "profiles",
}
PROFILE_KEYS = TOP_KEYS - {"task", "profiles"}
DIST_KEYS = {
    "float": {"type", "low", "high", "log"},
    "int": {"type", "low", "high", "step", "log"},
    "categorical": {"type", "choices"},
}
PRUNERS = {
    "median": {"type", "n_startup_trials", "n_warmup_steps"},
    "hyperband": {"type", "min_resource", "max_resource", "reduction_factor"},
    "none": {"type"},
}
POSITIVE_KEYS = {"lr", "hidden", "batch_size", "layers", "embedding_size", "max_epochs"}


@dataclass(frozen=True)
class StudyKey:
    """One study of a sweep: a variant x cell, at one point of the optional grid of fixed knobs
    (e.g. train_subset=500 for a learning curve by labeled size)."""

    variant: str
    cell: str
    grid: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        return "/".join([self.variant, self.cell, *(f"{k}={v}" for k, v in self.grid)])

    @property
    def suffix(self) -> str:
        return "".join(f":{k}={v}" for k, v in self.grid)


@dataclass
class SweepSpec:
    task: str
    profile: str
    path: Path
    variants: list[str]
    cells: list[str]
    fixed: dict[str, Any]
    search_space: dict[str, dict]
    variant_space: dict[str, dict[str, dict]]
    trials: int
    max_epochs: int
    pruner: dict[str, Any]
    sampler_seed: int
    final_seeds: list[int]
    match_parameters: int | None = None  # target parameter count; hidden is then derived, not searched
    max_steps: int = 0  # optimizer-step budget of every trial and final run (0: epochs only)
    eval_every_steps: int = 0  # validation (and pruning report) interval in optimizer steps (0: per epoch)
    patience_steps: int = 0  # early-stopping patience in optimizer steps (0: the run config's patience)
    startup_trials: int = 0  # random (start-up) trials before TPE's model-based phase
    description: str = ""
    study_prefix: str = ""  # task:profile, plus a hash of command-line overrides of `fixed`
    experiment: str = ""  # the MLflow experiment: the task's, or task/<dataset> for the user's own data
    grid: dict[str, list] = field(default_factory=dict)
    studies: list[StudyKey] = field(default_factory=list)

    def space_for(self, variant: str) -> dict[str, dict]:
        return {**self.search_space, **self.variant_space.get(variant, {})}

    @property
    def budget_knobs(self) -> dict[str, int]:
        """The run knobs of the budget: epochs, and with a step budget its steps, validation interval
        and patience (counted in validations)."""
        return budget_knobs(self.max_epochs, self.max_steps, self.eval_every_steps, self.patience_steps)

    def describe_budget(self) -> str:
        return describe_budget(self.max_epochs, self.max_steps, self.eval_every_steps, self.patience_steps)


def budget_knobs(max_epochs: int, max_steps: int, eval_every_steps: int, patience_steps: int) -> dict[str, int]:
    knobs = {"max_epochs": max_epochs}
    if max_steps:
        knobs.update(max_steps=max_steps, eval_every_steps=eval_every_steps)
    if patience_steps and eval_every_steps:
        knobs["patience"] = -(-patience_steps // eval_every_steps)  # ceil: at least patience_steps
    return knobs


def describe_budget(max_epochs: int, max_steps: int, eval_every_steps: int, patience_steps: int) -> str:
    if not max_steps:
        return f"{max_epochs} epochs"
    text = f"{max_steps:,} optimizer steps (at most {max_epochs} epochs), validation every {eval_every_steps:,} steps"
    return text + (f", early-stopping patience {patience_steps:,} steps" if patience_steps else "")


def check_budget(fail, merged: dict) -> tuple[int, int, int]:
    """max_steps / eval_every_steps / patience_steps of a sweep or horizon file: all or none."""
    values = []
    for key in ("max_steps", "eval_every_steps", "patience_steps"):
        value = merged.get(key, 0) or 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            fail(key, f"a non-negative integer number of optimizer steps (got {value!r})")
        values.append(value)
    max_steps, every, patience = values
    if max_steps and not every:
        fail("eval_every_steps", "a step budget (max_steps) needs a validation interval in steps")
    if every and not max_steps:
        fail("max_steps", "eval_every_steps needs a step budget (max_steps)")
    if every > max_steps:
        fail("eval_every_steps", f"{every} is longer than the budget max_steps={max_steps}")
    if patience and not every:
        fail("patience_steps", "needs eval_every_steps (patience is counted in validations)")
    return max_steps, every, patience


def sweep_path(task: str) -> Path:
    return SWEEP_DIR / f"{task}.yaml"


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "pruner":
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def default_profile() -> str:
    """gpu when CUDA is present, else cpu (torch is imported only to ask)."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def load_sweep(
    task: str, profile: str | None = None, path: Path | None = None, overrides: dict[str, str] | None = None
) -> SweepSpec:
    """Read, merge the profile into, and validate a sweep file. Raises UserError naming file and key.
    `overrides` (command-line key=value, e.g. data_dir=...) are added to `fixed`."""
    get_task(task)  # unknown task -> one line listing the tasks
    path = path or sweep_path(task)
    merged, profile = read_profiled_file(path, task, profile, "sweep", TOP_KEYS, PROFILE_KEYS)
    prefix = f"{task}:{profile}"
    if overrides:
        merged["fixed"] = {**(merged.get("fixed") or {}), **overrides}
        # Studies with other data or settings must not mix with these: name them apart.
        prefix += "+" + hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:6]
    spec = validate(path, task, profile, merged, set(overrides or {}))
    spec.study_prefix = prefix
    spec.experiment = sweep_experiment(spec)
    return spec


def sweep_experiment(spec: SweepSpec) -> str:
    """Where the sweep's runs go: the experiment of its studies' dataset. A sweep covers one dataset
    (one experiment, one report): a grid that spans datasets is refused, not mixed into one."""
    from bench import tracking

    task = get_task(spec.task)
    datasets: dict[str, str] = {}
    for study in spec.studies:
        config = resolve_config(spec.task, study.variant, study.cell, {**spec.fixed, **dict(study.grid)})
        datasets.setdefault(task.dataset(config.task_settings), study.label)
    if len(datasets) > 1:
        names = ", ".join(f"{name or spec.task} ({label})" for name, label in datasets.items())
        raise UserError(
            f"{spec.path}: the studies span datasets {names}; a sweep covers one dataset (one experiment, "
            'one report): run one sweep per dataset, e.g. make sweep FILE=... ARGS="data_dir=..."'
        )
    return tracking.experiment_name(spec.task, next(iter(datasets)))


def read_profiled_file(
    path: Path, task: str, profile: str | None, kind: str, top_keys: set[str], profile_keys: set[str]
) -> tuple[dict, str]:
    """Read a task's YAML file (sweep or horizon), check its keys and merge the chosen profile into
    its top level. Returns (merged mapping, profile name); UserError names the file and key."""
    if not path.is_file():
        raise UserError(
            f"no {kind} file for task {task}: expected {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}:{where} malformed YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of keys ({', '.join(sorted(top_keys))})")
    check_keys(path, "", raw, top_keys)
    if raw.get("task") != task:
        raise UserError(f"{path}: task: is {raw.get('task')!r}, expected {task!r}")
    profiles = raw.get("profiles") or {}
    profile = profile or default_profile()
    if profile not in profiles:
        raise UserError(
            f"{path}: unknown profile {profile!r}; choose one of: {', '.join(profiles) or '(none defined)'}"
        )
    profile_overrides = profiles[profile] or {}
    if not isinstance(profile_overrides, dict):
        raise UserError(f"{path}: profiles.{profile}: expected a mapping")
    check_keys(path, f"profiles.{profile}.", profile_overrides, profile_keys)
    return deep_merge({k: v for k, v in raw.items() if k != "profiles"}, profile_overrides), profile


def check_keys(path: Path, prefix: str, mapping: dict, allowed: set[str]) -> None:
    for key in mapping:
        if key not in allowed:
            raise UserError(f"{path}: unknown key {prefix}{key}; allowed: {', '.join(sorted(allowed))}")


def validate(path: Path, task: str, profile: str, merged: dict, from_command_line: set[str] = frozenset()) -> SweepSpec:
    def fail(key: str, message: str):
        raise UserError(f"{path}: {key} (profile {profile}): {message}")

    variants = merged.get("variants") or ["simple", "stacked", "bidirectional"]
    cells = merged.get("cells") or list(CELLS)
    for name in variants:
        if name not in VARIANTS:
            fail("variants", f"unknown variant {name!r}; allowed: {', '.join(VARIANTS)}")
    for name in cells:
        if name not in CELLS:
            fail("cells", f"unknown cell {name!r}; allowed: {', '.join(CELLS)}")
    search_space = merged.get("search_space") or {}
    variant_space = merged.get("variant_space") or {}
    for name in variant_space:
        if name not in VARIANTS:
            fail(f"variant_space.{name}", f"unknown variant; allowed: {', '.join(VARIANTS)}")
    for prefix, space in [("search_space", search_space)] + [
        (f"variant_space.{v}", s) for v, s in variant_space.items()
    ]:
        for key, dist in (space or {}).items():
            validate_distribution(fail, f"{prefix}.{key}", key, dist)
    for key in ("trials", "max_epochs"):
        if not isinstance(merged.get(key), int) or merged[key] < 1:
            fail(key, f"must be a positive integer (got {merged.get(key)!r})")
    sampler_seed = merged.get("sampler_seed", 0)
    if not isinstance(sampler_seed, int) or isinstance(sampler_seed, bool) or sampler_seed < 0:
        fail("sampler_seed", f"a non-negative integer (got {sampler_seed!r})")
    final_seeds = merged.get("final_seeds", 3)
    if isinstance(final_seeds, int) and not isinstance(final_seeds, bool):
        # The search trains with seed sampler_seed: the final seeds are the next ones, so none of the
        # replicates is the selected run itself.
        final_seeds = [sampler_seed + 1 + index for index in range(final_seeds)]
    if not final_seeds or not all(isinstance(s, int) and s >= 0 for s in final_seeds):
        fail("final_seeds", "a positive count or a list of non-negative integer seeds")
    if sampler_seed in final_seeds:
        fail(
            "final_seeds",
            f"must not contain the search seed sampler_seed={sampler_seed}: the selected trial "
            "would count as its own replicate",
        )
    max_steps, eval_every_steps, patience_steps = check_budget(fail, merged)
    startup = merged.get("startup_trials", max(1, merged["trials"] // 2))
    if not isinstance(startup, int) or isinstance(startup, bool) or not 0 <= startup <= merged["trials"]:
        fail("startup_trials", f"an integer from 0 to trials={merged['trials']} (got {startup!r})")
    pruner = merged.get("pruner") or {"type": "median"}
    if not isinstance(pruner, dict) or pruner.get("type") not in PRUNERS:
        fail("pruner.type", f"allowed: {', '.join(PRUNERS)}")
    check_keys(path, "pruner.", pruner, PRUNERS[pruner["type"]])
    match = merged.get("match_parameters")
    if match is not None and (not isinstance(match, int) or match < 1):
        fail("match_parameters", "a target parameter count (positive integer) or null")
    fixed = merged.get("fixed") or {}
    if not isinstance(fixed, dict):
        fail("fixed", "expected a mapping of knob: value")
    for key in fixed:
        if key in ("seed",):
            fail(f"fixed.{key}", "seeds are set by the sweep (sampler_seed, final_seeds)")
        if key in ("folds", "fold") and str(fixed[key]) not in ("0", "-1"):
            fail(
                f"fixed.{key}",
                "cross-validation runs through make train (folds=K); a sweep tunes on validation "
                "and tests its final seeds once",
            )
    grid = merged.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        fail("grid", "expected a mapping of knob: [values] (e.g. train_subset: [500, 2000, 0])")
    variant_grid = merged.get("variant_grid") or {}
    for name, knobs in variant_grid.items():
        if name not in VARIANTS:
            fail(f"variant_grid.{name}", f"unknown variant; allowed: {', '.join(VARIANTS)}")
        if not isinstance(knobs, dict) or not all(isinstance(v, list) and v for v in knobs.values()):
            fail(f"variant_grid.{name}", "expected a mapping of knob: [values] (e.g. embedding_vectors: [a, b])")
    check_one_place_per_knob(
        fail, fixed, from_command_line, grid, variant_grid, search_space, variant_space, match is not None
    )
    points = grid_points(grid)
    # A variant's own grid (e.g. the embedding source of embedding-pretrained) multiplies its studies only.
    studies = [
        StudyKey(v, c, point + extra)
        for point in points
        for v in variants
        for extra in grid_points(variant_grid.get(v) or {})
        for c in cells
    ]
    for study in studies:
        space = {**search_space, **variant_space.get(study.variant, {})}
        if not space and merged["trials"] > 1:
            fail(
                "search_space",
                f"nothing is searched for {study.label}, so its {merged['trials']} trials would "
                "be identical: add a search_space or set trials: 1",
            )
        check_every_value(
            path,
            profile,
            task,
            study,
            fixed,
            from_command_line,
            space,
            budget_knobs(merged["max_epochs"], max_steps, eval_every_steps, patience_steps),
        )
    return SweepSpec(
        task=task,
        profile=profile,
        path=path,
        variants=variants,
        cells=cells,
        fixed=fixed,
        search_space=search_space,
        variant_space=variant_space,
        trials=merged["trials"],
        max_epochs=merged["max_epochs"],
        pruner=pruner,
        sampler_seed=sampler_seed,
        final_seeds=final_seeds,
        match_parameters=match,
        description=merged.get("description", ""),
        grid=grid,
        studies=studies,
        max_steps=max_steps,
        eval_every_steps=eval_every_steps,
        patience_steps=patience_steps,
        startup_trials=startup,
    )


def check_one_place_per_knob(
    fail,
    fixed: dict,
    from_command_line: set[str],
    grid: dict,
    variant_grid: dict,
    search_space: dict,
    variant_space: dict,
    match_parameters: bool,
) -> None:
    """A searched knob that is also fixed (in the file, ARGS or a grid) would be silently overwritten by
    one of them: name both places."""
    places: dict[str, list[str]] = {}
    for key in fixed:
        places.setdefault(key, []).append(f"ARGS ({key}={fixed[key]})" if key in from_command_line else f"fixed.{key}")
    for key in grid:
        places.setdefault(key, []).append(f"grid.{key}")
    for name, knobs in variant_grid.items():
        for key in knobs:
            places.setdefault(key, []).append(f"variant_grid.{name}.{key}")
    for key in search_space:
        places.setdefault(key, []).append(f"search_space.{key}")
    for name, space in variant_space.items():
        for key in space:
            if key not in search_space:  # a variant's own range replaces the shared one on purpose
                places.setdefault(key, []).append(f"variant_space.{name}.{key}")
    if match_parameters and "hidden" in places:
        places["hidden"].append("match_parameters (hidden is derived from the target count)")
    searched = ("search_space.", "variant_space.", "match_parameters")
    for key, where in places.items():
        # A grid point replacing a fixed value (and ARGS replacing the file's) is the documented use;
        # a searched knob that is also set elsewhere would have one of the two silently ignored.
        if len(where) > 1 and any(w.startswith(searched) for w in where):
            fail(key, f"set in two places, {where[0]} and {where[1]}; keep one")


def check_every_value(
    path: Path,
    profile: str,
    task: str,
    study: StudyKey,
    fixed: dict,
    from_command_line: set[str],
    space: dict,
    budget: dict,
) -> None:
    """Every value a trial can get must be a valid run config: the fixed knobs and grid point with each
    end of every range and each categorical choice, before anything starts."""
    base = {key: first_value(dist) for key, dist in space.items()}
    candidates = [("ARGS", None, base)]
    for key, dist in space.items():
        values = dist["choices"] if dist["type"] == "categorical" else [dist["low"], dist["high"]]
        candidates += [(key, value, {**base, key: value}) for value in values]
    from_file = {key: value for key, value in fixed.items() if key not in from_command_line}
    candidates.insert(0, ("fixed/grid", None, base, from_file))
    candidates[1] = ("ARGS", None, base, fixed)
    for where, value, sample, *knobs in candidates:
        try:
            resolve_config(
                task,
                study.variant,
                study.cell,
                {**(knobs[0] if knobs else fixed), **dict(study.grid), **sample, **budget},
            )
        except UserError as error:
            if value is not None or where not in ("fixed/grid", "ARGS"):
                where = f"search_space.{where} value {value!r}"
            raise UserError(f"{path}: {where} (profile {profile}, {study.label}): {error}") from None


def grid_points(grid: dict[str, list]) -> list[tuple]:
    points = [()]
    for key, values in grid.items():
        points = [point + ((key, value),) for point in points for value in values]
    return points


def validate_distribution(fail, where: str, key: str, dist: Any) -> None:
    if not isinstance(dist, dict) or dist.get("type") not in DIST_KEYS:
        fail(where, f"expected a mapping with type: {' | '.join(DIST_KEYS)}")
    for field_name in dist:
        if field_name not in DIST_KEYS[dist["type"]]:
            fail(where, f"unknown field {field_name!r}; allowed: {', '.join(sorted(DIST_KEYS[dist['type']]))}")
    if dist["type"] == "categorical":
        if not isinstance(dist.get("choices"), list) or not dist["choices"]:
            fail(where, "choices must be a non-empty list")
        values = dist["choices"]
    else:
        low, high = dist.get("low"), dist.get("high")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            fail(where, "low and high must be numbers")
        if dist["type"] == "int" and not all(isinstance(v, int) for v in (low, high)):
            fail(where, "low and high must be integers for type int")
        if low > high:
            fail(where, f"low ({low}) > high ({high})")
        if dist.get("log") and low <= 0:
            fail(where, f"log scale needs low > 0 (got {low})")
        values = [low, high]
    if key in POSITIVE_KEYS and any(isinstance(v, (int, float)) and v <= 0 for v in values):
        fail(where, f"{key} must be positive (got {values})")


def first_value(dist: dict) -> Any:
    return dist["choices"][0] if dist["type"] == "categorical" else dist["low"]
