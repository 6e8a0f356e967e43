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
from bench.file_schema import SweepFile, distribution_values, first_value, top_keys, validate
from bench.paths import ROOT
from bench.registry import get_task

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).

SWEEP_DIR = ROOT / "sweeps"
TOP_KEYS = top_keys(SweepFile)
PROFILE_KEYS = TOP_KEYS - {"task", "profiles"}


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


def sweep_path(task: str) -> Path:
    return SWEEP_DIR / f"{task}.yaml"


REPLACED_WHOLE = {"pruner", "ablation"}  # a profile's pruner or ablation arms replace the file's, not merge


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in REPLACED_WHOLE:
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
    spec = validate_sweep(path, task, profile, merged, set(overrides or {}))
    spec.study_prefix = prefix
    spec.experiment = sweep_experiment(spec)
    return spec


def study_configs(spec: SweepSpec) -> list:
    """Each study's run configuration before search: its fixed knobs and grid point (what its data is)."""
    return [
        resolve_config(spec.task, study.variant, study.cell, {**spec.fixed, **dict(study.grid)})
        for study in spec.studies
    ]


def sweep_experiment(spec: SweepSpec) -> str:
    """Where the sweep's runs go: the experiment of its studies' dataset. A sweep covers one dataset
    (one experiment, one report): a grid that spans datasets is refused, not mixed into one."""
    from bench import tracking

    task = get_task(spec.task)
    datasets: dict[str, str] = {}
    for study, config in zip(spec.studies, study_configs(spec)):
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
        raw = yaml.load(path.read_text(), Loader=UniqueKeyLoader)
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


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping: PyYAML keeps the last silently
    (`fixed: {T: 6, T: 7}` ran T=7)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden: that is what it is for
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (list, dict)):
                continue  # (an unhashable key: SafeLoader's own error follows)
            if key in seen:
                first = seen[key]
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice in one mapping (first at line {first.line + 1}, column "
                    f"{first.column + 1}): keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def check_keys(path: Path, prefix: str, mapping: dict, allowed: set[str]) -> None:
    for key in mapping:
        if key not in allowed:
            raise UserError(f"{path}: unknown key {prefix}{key}; allowed: {', '.join(sorted(allowed))}")


def validate_sweep(
    path: Path, task: str, profile: str, merged: dict, from_command_line: set[str] = frozenset()
) -> SweepSpec:
    """The file through its schema (`file_schema.SweepFile`), then what needs the task: no knob set in
    two places, and every value a trial can get is a valid run."""
    file = validate(SweepFile, merged, path, profile)

    def fail(key: str, message: str):
        raise UserError(f"{path}: {key} (profile {profile}): {message}")

    search_space = {key: dist.model_dump(exclude_unset=True) for key, dist in file.search_space.items()}
    variant_space = {
        name: {key: dist.model_dump(exclude_unset=True) for key, dist in space.items()}
        for name, space in file.variant_space.items()
    }
    check_one_place_per_knob(
        fail,
        file.fixed,
        from_command_line,
        file.grid,
        file.variant_grid,
        search_space,
        variant_space,
        file.match_parameters is not None,
    )
    budget = budget_knobs(file.max_epochs, file.max_steps, file.eval_every_steps, file.patience_steps)
    points = grid_points(file.grid)
    # A variant's own grid (e.g. the embedding source of embedding-pretrained) multiplies its studies only.
    studies = [
        StudyKey(v, c, point + extra)
        for point in points
        for v in file.variants
        for extra in grid_points(file.variant_grid.get(v) or {})
        for c in file.cells
    ]
    for study in studies:
        space = {**search_space, **variant_space.get(study.variant, {})}
        if not space and file.trials > 1:
            fail(
                "search_space",
                f"nothing is searched for {study.label}, so its {file.trials} trials would "
                "be identical: add a search_space or set trials: 1",
            )
        check_every_value(path, profile, task, study, file.fixed, from_command_line, space, budget)
    return SweepSpec(
        task=task,
        profile=profile,
        path=path,
        variants=file.variants,
        cells=file.cells,
        fixed=file.fixed,
        search_space=search_space,
        variant_space=variant_space,
        trials=file.trials,
        max_epochs=file.max_epochs,
        pruner=file.pruner.model_dump(exclude_none=True),
        sampler_seed=file.sampler_seed,
        final_seeds=file.final_seeds,
        match_parameters=file.match_parameters,
        description=file.description,
        grid=file.grid,
        studies=studies,
        max_steps=file.max_steps,
        eval_every_steps=file.eval_every_steps,
        patience_steps=file.patience_steps,
        startup_trials=file.startup_trials,
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
        values = distribution_values(dist)
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
