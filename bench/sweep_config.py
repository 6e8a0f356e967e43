"""A sweep file (`sweeps/<task>.yaml`) as its spec, without torch: the variants x cells to compare (one
Optuna study each), the knobs held fixed, the search space (shared, plus per-variant extras), the
budget and the evaluation; profiles (`cpu`, `gpu`, `smoke`, ...) override any of these keys."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from bench import file_schema as schema
from bench import stores
from bench.config import resolve_config
from bench.errors import UserError
from bench.paths import ROOT
from bench.registry import get_task

SWEEP_DIR = ROOT / "sweeps"


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


class SweepSpec(schema.FileSpec):
    variants: schema.Variants = ["simple", "stacked", "bidirectional"]
    grid: schema.Grid = Field({}, description="a mapping of knob: [values] (e.g. train_subset: [500, 2000, 0])")
    variant_grid: schema.PerVariant[schema.Grid] = Field({}, description=schema.PER_VARIANT + "{knob: [values]}")
    search_space: schema.Space = Field({}, description="a mapping of knob: {type: float | int | categorical, ...}")
    variant_space: schema.PerVariant[schema.Space] = Field({}, description=schema.PER_VARIANT + "{knob: {type: ...}}")
    trials: schema.PositiveInt
    # default: half the trials, so TPE's model-based phase gets the rest
    startup_trials: Annotated[schema.NonNegativeInt, schema.OrDefault] = Field(
        default_factory=lambda data: max(1, data["trials"] // 2), description="an integer from 0 to trials"
    )
    pruner: Annotated[schema.Pruner, schema.OrDefault] = Field(
        default_factory=schema.Pruner, description="a mapping with type: median | hyperband | none, and its options"
    )
    sampler_seed: schema.NonNegativeInt = 0
    final_seeds: schema.Seeds = 3  # a list once loaded
    # a target parameter count: hidden is then derived, not searched
    match_parameters: schema.PositiveInt | None = Field(
        None, description="a target parameter count (positive integer) or null"
    )
    study_prefix: str = ""  # task:profile, plus a hash of command-line overrides of `fixed`
    experiment: str = ""  # the MLflow experiment: the task's, or task/<dataset> for the user's own data

    @field_validator("fixed", mode="after")
    @classmethod
    def not_set_by_hand(cls, fixed):
        if "seed" in fixed:
            raise schema.SchemaError("seeds are set by the sweep (sampler_seed, final_seeds)", key="seed")
        for key in [key for key in ("folds", "fold") if str(fixed.get(key, 0)) not in ("0", "-1")]:
            raise schema.SchemaError(
                "cross-validation runs through make train (folds=K); a sweep tunes on validation and tests its "
                "final seeds once",
                key=key,
            )
        return fixed

    @model_validator(mode="after")
    def seeds_and_start_up(self):
        if isinstance(self.final_seeds, int):
            # The search trains with seed sampler_seed: the final seeds are the next ones, so none of
            # the replicates is the selected run itself.
            self.final_seeds = list(range(self.sampler_seed + 1, self.sampler_seed + 1 + self.final_seeds))
        if self.sampler_seed in self.final_seeds:
            raise schema.SchemaError(
                f"must not contain the search seed sampler_seed={self.sampler_seed}: the selected trial would count "
                "as its own replicate",
                "final_seeds",
            )
        if self.startup_trials > self.trials:
            raise schema.SchemaError(
                f"an integer from 0 to trials={self.trials} (got {self.startup_trials})", "startup_trials"
            )
        return self

    @property
    def studies(self) -> list[StudyKey]:
        """Every variant x cell at every grid point; a variant's own grid (e.g. the embedding source of
        embedding-pretrained) multiplies its studies only."""
        return [
            StudyKey(variant, cell, point + extra)
            for point in grid_points(self.grid)
            for variant in self.variants
            for extra in grid_points(self.variant_grid.get(variant, {}))
            for cell in self.cells
        ]

    def space_for(self, variant: str) -> dict[str, schema.Distribution]:
        return {**self.search_space, **self.variant_space.get(variant, {})}


def grid_points(grid: dict[str, list]) -> list[tuple]:
    return [tuple(zip(grid, values)) for values in itertools.product(*grid.values())]


def sweep_path(task: str) -> Path:
    return SWEEP_DIR / f"{task}.yaml"


def load_sweep(
    task: str, profile: str | None = None, path: Path | None = None, overrides: dict[str, str] | None = None
) -> SweepSpec:
    """Read, merge the profile into, and validate a sweep file. Raises UserError naming file and key.
    `overrides` (command-line key=value, e.g. data_dir=...) are added to `fixed`."""
    get_task(task)  # unknown task -> one line listing the tasks
    spec = schema.read_spec(SweepSpec, "sweep", path or sweep_path(task), task, profile, overrides)
    spec.study_prefix = f"{task}:{spec.profile}"
    if overrides:  # studies with other data or settings must not mix with these: named apart
        spec.study_prefix += "+" + schema.digest(overrides)[:6]
    check_one_place_per_knob(spec, set(overrides or {}))
    for study in spec.studies:
        if not spec.space_for(study.variant) and spec.trials > 1:
            raise spec.error(
                "search_space",
                f"nothing is searched for {study.label}, so its {spec.trials} trials would be identical: add a "
                "search_space or set trials: 1",
            )
        check_every_value(spec, study, set(overrides or {}))
    spec.experiment = sweep_experiment(spec)
    return spec


def study_configs(spec: SweepSpec) -> list:
    """Each study's run configuration before search: its fixed knobs and grid point (what its data is)."""
    return [
        resolve_config(spec.task, study.variant, study.cell, spec.fixed | dict(study.grid)) for study in spec.studies
    ]


def sweep_experiment(spec: SweepSpec) -> str:
    """Where the sweep's runs go: the experiment of its studies' dataset. A sweep covers one dataset
    (one experiment, one report): a grid that spans datasets is refused, not mixed into one."""
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
    return stores.experiment_name(spec.task, next(iter(datasets)))


def check_one_place_per_knob(spec: SweepSpec, from_command_line: set[str]) -> None:
    """A searched knob also set elsewhere (fixed in the file, ARGS, a grid) would have one of the two silently
    ignored: name both places. A grid point replacing a fixed value (and ARGS the file's) is the documented use."""
    head = [(k, f"ARGS ({k}={v})" if k in from_command_line else f"fixed.{k}") for k, v in spec.fixed.items()]
    head += [(k, f"grid.{k}") for k in spec.grid]
    # In the file's order (a set's would depend on PYTHONHASHSEED: the message must not)
    variants = dict.fromkeys([*spec.variant_grid, *spec.variant_space]) or [""]
    for variant in variants:  # one study's knobs: one variant's places
        pairs = head + [(k, f"variant_grid.{variant}.{k}") for k in spec.variant_grid.get(variant, {})]
        pairs += [(k, f"search_space.{k}") for k in spec.search_space]
        space = spec.variant_space.get(variant, {})  # (a variant's own range replaces the shared one)
        pairs += [(k, f"variant_space.{variant}.{k}") for k in space if k not in spec.search_space]
        places: dict[str, list[str]] = {}
        for key, where in pairs:
            places.setdefault(key, []).append(where)
        if spec.match_parameters is not None and "hidden" in places:
            places["hidden"].append("match_parameters (hidden is derived from the target count)")
        for key, where in places.items():
            searched = ("search_space.", "variant_space.", "match_parameters")
            if len(where) > 1 and any(w.startswith(searched) for w in where):
                raise spec.error(key, f"set in two places, {where[0]} and {where[1]}; keep one")


def check_every_value(spec: SweepSpec, study: StudyKey, from_command_line: set[str]) -> None:
    """Every value a trial can get must be a valid run config: the fixed knobs and grid point with each
    end of every range and each categorical choice, before anything starts."""
    space = spec.space_for(study.variant)
    first = {key: dist.ends[0] for key, dist in space.items()}
    from_file = {key: value for key, value in spec.fixed.items() if key not in from_command_line}
    candidates = [("fixed/grid", from_file, first), ("ARGS", spec.fixed, first)] + [
        (f"search_space.{key} value {value!r}", spec.fixed, {**first, key: value})
        for key, dist in space.items()
        for value in dist.ends
    ]
    for where, fixed, sample in candidates:
        try:
            resolve_config(spec.task, study.variant, study.cell, fixed | dict(study.grid) | sample | spec.budget_knobs)
        except UserError as error:
            raise spec.error(where, str(error), study.label) from None
