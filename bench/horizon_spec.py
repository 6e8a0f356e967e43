"""A horizon file (`sweeps/horizon/<task>.yaml`) as its spec: which arms (variant x cell, plus the
simple RNN's activation ablation) train at which lengths with which seeds, read and validated once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, model_validator

from bench import file_schema as schema
from bench.cells import reference_cell
from bench.config import resolve_config
from bench.errors import UserError
from bench.paths import ROOT
from bench.registry import get_task
from bench.run_keys import Stage, Tag

HORIZON_DIR = ROOT / "sweeps" / "horizon"
FROM_SEED_1 = AfterValidator(lambda n: n if isinstance(n, list) else [*range(1, n + 1)])  # a count: 1, 2, ...


@dataclass(frozen=True)
class Arm:
    """One curve of the horizon plot: a variant x cell, or an ablation of the simple RNN."""

    variant: str
    cell: str
    ablation: str = ""  # name of the activation-ablation arm, "" for the variant x cell grid
    name: str = ""  # a claim experiment's arm: its name in the file (and learning rate), the label
    knobs: tuple = ()  # a claim experiment's arm: its own knobs, as (key, value) pairs

    @property
    def label(self) -> str:
        return self.name or "/".join(filter(None, [self.variant, self.cell, self.ablation]))


class HorizonSpec(schema.FileSpec):
    variants: schema.Variants = ["simple"]
    max_epochs: schema.PositiveInt = 10
    axis: str = Field("T", description="a setting of the task (e.g. T)")
    values: Annotated[list[schema.PositiveInt], Field(min_length=1), AfterValidator(sorted)] = Field(
        description="a non-empty list of positive integers (the lengths to train at)"
    )
    # a count starts at seed 1: seed 0 is the sweeps' search seed, and a horizon run at the sweep's
    # length with it would replay the selected trial (the bias final seeds avoid)
    seeds: Annotated[schema.Seeds, FROM_SEED_1] = [1, 2, 3]
    margin: float = Field(0.1, ge=0, lt=1, description="a number in [0, 1)")
    jobs: schema.PositiveInt = 1
    settings: schema.Knobs = Field({}, description="a mapping of task setting: value")
    ablation: Annotated[dict[str, dict[str, Any]], schema.OrDefault] = Field(
        {}, description="a mapping of arm name: {knob: value} applied to the simple RNN"
    )
    configs_from: str | None = Field(
        None, description="a sweep profile whose best configurations the arms train with, or null"
    )
    # (variant, cell) -> (searched knobs, where from): the configurations the arms train with, resolved
    # from the sweep once per call (horizon.resolve_configs); None until then
    tuned: dict[tuple[str, str], tuple[dict, str]] | None = None

    @model_validator(mode="after")
    def axis_of_the_task(self):
        if self.axis not in get_task(self.task).settings:
            raise schema.SchemaError(f"{self.axis!r} is not a setting of task {self.task}", "axis")
        return self

    stage: ClassVar[str] = Stage.HORIZON  # the runs' stage tag (a claim experiment's: Stage.CLAIM)

    @property
    def run_tags(self) -> dict[str, str]:
        """What tells this file's runs apart from other grids' in the task's MLflow experiment."""
        return {Tag.STAGE: self.stage}

    @property
    def arms(self) -> list[Arm]:
        return [Arm(v, c) for v in self.variants for c in self.cells] + [
            Arm("simple", reference_cell(), name) for name in self.ablation
        ]

    @property
    def fingerprint(self) -> str:
        """What makes two runs of an arm at one length the same experiment: a file edited in any of
        these starts a fresh set of runs (tag horizon_spec) instead of mixing with the old ones."""
        knobs = self.model_dump(include={"axis", "settings", "fixed", "ablation", "max_epochs", "configs_from"})
        if self.max_steps:  # (files without a step budget keep their old fingerprint)
            knobs["budget"] = [self.max_steps, self.eval_every_steps, self.patience_steps]
        if self.tuned:  # a sweep whose best changed since: a fresh set, never one cell of two configurations
            knobs["tuned"] = {f"{v}/{c}": tuned for (v, c), (tuned, _) in sorted(self.tuned.items())}
        return schema.digest(knobs)


def load_horizon(task: str, profile: str | None = None, path: Path | None = None) -> HorizonSpec:
    """Read, merge the profile into, and validate a horizon file; UserError names file and key."""
    get_task(task)
    return check_arms(schema.read_spec(HorizonSpec, "horizon", path or HORIZON_DIR / f"{task}.yaml", task, profile))


def check_arms(spec: HorizonSpec) -> HorizonSpec:
    """Every arm must resolve to a valid run at every length (before anything trains)."""
    for arm in spec.arms:
        try:
            resolve_config(spec.task, arm.variant, arm.cell, run_knobs(spec, arm, {}, spec.values[-1], spec.seeds[0]))
        except UserError as error:
            raise spec.error("fixed/settings/arms", str(error), arm.label) from None
    return spec


def run_knobs(spec: HorizonSpec, arm: Arm, tuned: dict, value: int, seed: int) -> dict:
    """fixed < the sweep's best (tuned) < the task settings of the profile < the arm's own knobs (an ablation's,
    a lineup arm's) < axis, seed < the budget."""
    arm_knobs = spec.ablation.get(arm.ablation, {}) | dict(arm.knobs)
    return spec.fixed | tuned | spec.settings | arm_knobs | {spec.axis: value, "seed": seed} | spec.budget_knobs
