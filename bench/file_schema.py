"""The schema of sweep files (`sweeps/<task>.yaml`) and horizon files (`sweeps/horizon/<task>.yaml`):
one pydantic model per kind of file, sharing what both have (the arms, the knob mappings, the step
budget). A file's keys, types, defaults and valid choices are declared here and nowhere else; a
violation becomes the one line users see: `<file>: <key> (profile <p>): <message>`.

The checks that need the task or the run configuration (a horizon axis that is a task setting, every
searched value giving a valid run) stay with the loaders, which call `validate` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticUseDefault

from bench.cells import CELLS, DEFAULT_GROUP, GROUPS, expand
from bench.errors import UserError
from bench.variants import VARIANTS

# Knobs whose searched values must all be positive.
POSITIVE_KEYS = {"lr", "hidden", "batch_size", "layers", "embedding_size", "max_epochs"}


class SchemaError(ValueError):
    """A rule's own message; `key` names the part of the field it concerns (e.g. a variant)."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class Strict(BaseModel):
    """YAML gives real types: no "3" for 3, no true for 1; unknown keys are errors."""

    model_config = ConfigDict(strict=True, extra="forbid")


# -- search-space distributions ------------------------------------------------------------------------
class FloatRange(Strict):
    type: Literal["float"]
    low: int | float  # (an int stays an int: messages show the value as written)
    high: int | float
    log: bool = False

    @model_validator(mode="after")
    def ordered(self):
        check_range(self.low, self.high, self.log)
        return self


class IntRange(Strict):
    type: Literal["int"]
    low: int
    high: int
    step: int = 1
    log: bool = False

    @model_validator(mode="after")
    def ordered(self):
        check_range(self.low, self.high, self.log)
        return self


class Choices(Strict):
    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)


DISTRIBUTIONS = {"float": FloatRange, "int": IntRange, "categorical": Choices}
Distribution = Annotated[Union[FloatRange, IntRange, Choices], Field(discriminator="type")]


def check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise SchemaError(f"low ({low}) > high ({high})")
    if log and low <= 0:
        raise SchemaError(f"log scale needs low > 0 (got {low})")


def distribution_values(dist: dict) -> list:
    """The values a trial can get at the ends of a distribution (or each choice)."""
    return list(dist["choices"]) if dist["type"] == "categorical" else [dist["low"], dist["high"]]


def first_value(dist: dict) -> Any:
    return distribution_values(dist)[0]


class Pruner(Strict):
    model_config = ConfigDict(strict=True, extra="allow")  # which fields are allowed depends on the type

    type: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int | None = None
    n_warmup_steps: int | None = None
    min_resource: int | None = None
    max_resource: int | Literal["auto"] | None = None
    reduction_factor: int | None = None

    @model_validator(mode="after")
    def fields_of_its_type(self):
        allowed = PRUNER_FIELDS[self.type]
        for name in sorted((self.model_fields_set | set(self.model_extra or {})) - allowed):
            raise SchemaError(f"unknown key pruner.{name}; allowed: {', '.join(sorted(allowed))}", key="")
        return self


PRUNER_FIELDS = {
    "median": {"type", "n_startup_trials", "n_warmup_steps"},
    "hyperband": {"type", "min_resource", "max_resource", "reduction_factor"},
    "none": {"type"},
}


# -- what sweep and horizon files share ----------------------------------------------------------------
class Budget(Strict):
    """Epochs, and optionally a budget in optimizer steps: all of max_steps / eval_every_steps /
    patience_steps or none of them."""

    description: str = ""
    max_epochs: int = Field(None, validate_default=True)  # (required: its validator words the error)
    max_steps: int = 0
    eval_every_steps: int = 0
    patience_steps: int = 0
    variants: list[str]
    cells: list[str] = Field(default_factory=lambda: expand([DEFAULT_GROUP]))  # cell or group names, as cells
    fixed: dict[str, Any] = Field(default_factory=dict)

    @field_validator("max_epochs", mode="before")
    @classmethod
    def positive(cls, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SchemaError(f"a positive integer (got {value!r})")
        return value

    @field_validator("max_steps", "eval_every_steps", "patience_steps", mode="before")
    @classmethod
    def steps(cls, value):
        value = value or 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SchemaError(f"a non-negative integer number of optimizer steps (got {value!r})")
        return value

    @field_validator("variants", mode="before")
    @classmethod
    def known_variants(cls, value):
        return known_names(value, VARIANTS, "variant")

    @field_validator("cells", mode="before")
    @classmethod
    def known_cells(cls, value):
        """Cell names and group names (e.g. `cells: gated` or `[reference, gated]`), expanded to cells."""
        value = [value] if isinstance(value, str) else value
        return expand(known_names(value, [*CELLS, *GROUPS], "cell"))

    @field_validator("fixed", mode="before")
    @classmethod
    def knob_mapping(cls, value):
        value = value or {}
        if not isinstance(value, dict):
            raise SchemaError("expected a mapping of knob: value")
        return value

    @model_validator(mode="after")
    def budget_in_steps(self):
        max_steps, every, patience = self.max_steps, self.eval_every_steps, self.patience_steps
        if max_steps and not every:
            raise SchemaError("a step budget (max_steps) needs a validation interval in steps", "eval_every_steps")
        if every and not max_steps:
            raise SchemaError("eval_every_steps needs a step budget (max_steps)", "max_steps")
        if every > max_steps:
            raise SchemaError(f"{every} is longer than the budget max_steps={max_steps}", "eval_every_steps")
        if patience and not every:
            raise SchemaError("needs eval_every_steps (patience is counted in validations)", "patience_steps")
        return self


def known_names(value, known, kind: str) -> list[str]:
    if value is None:
        raise PydanticUseDefault()
    if value == []:  # (it ran the default list: a sweep of what the file seemed to exclude)
        raise SchemaError(f"an empty list names no {kind}: list at least one of {', '.join(known)}, or drop the key")
    if not isinstance(value, list):
        raise SchemaError(f"a list of {kind}s; allowed: {', '.join(known)}")
    for name in value:
        if name not in known:
            raise SchemaError(f"unknown {kind} {name!r}; allowed: {', '.join(known)}")
    return value


def seed_list(value, default: int, first: int = 0) -> list[int]:
    """A count (seeds first, first+1, ...) or an explicit list of non-negative integer seeds."""
    value = default if value is None else value
    if isinstance(value, int) and not isinstance(value, bool):
        value = [first + index for index in range(value)]
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and s >= 0 for s in value):
        raise SchemaError("a positive count or a list of non-negative integer seeds")
    return value


def grid_mapping(value, example: str) -> dict[str, list]:
    value = value or {}
    if not isinstance(value, dict) or not all(isinstance(v, list) and v for v in value.values()):
        raise SchemaError(f"expected a mapping of knob: [values] (e.g. {example})")
    return value


# -- sweep files ---------------------------------------------------------------------------------------
class SweepFile(Budget):
    variants: list[str] = Field(default_factory=lambda: ["simple", "stacked", "bidirectional"])
    grid: dict[str, list] = Field(default_factory=dict)
    variant_grid: dict[str, dict[str, list]] = Field(default_factory=dict)
    search_space: dict[str, Distribution] = Field(default_factory=dict)
    variant_space: dict[str, dict[str, Distribution]] = Field(default_factory=dict)
    trials: int = Field(None, validate_default=True)
    startup_trials: int | None = None  # default: half the trials, so TPE's model-based phase gets the rest
    pruner: Pruner = Field(default_factory=Pruner)
    sampler_seed: int = 0
    final_seeds: list[int] | int = 3
    match_parameters: int | None = None  # target parameter count: hidden is then derived, not searched

    @field_validator("trials", mode="before")
    @classmethod
    def positive_trials(cls, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SchemaError(f"must be a positive integer (got {value!r})")
        return value

    @field_validator("max_epochs", mode="before")
    @classmethod
    def positive(cls, value):  # (the sweep file's wording)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SchemaError(f"must be a positive integer (got {value!r})")
        return value

    @field_validator("startup_trials", mode="before")
    @classmethod
    def start_up_count(cls, value, info: ValidationInfo):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise SchemaError(f"an integer from 0 to trials={info.data.get('trials')} (got {value!r})")
        return value

    @field_validator("final_seeds", mode="before")
    @classmethod
    def seeds_given(cls, value):
        if isinstance(value, list) and not all(isinstance(s, int) and not isinstance(s, bool) for s in value):
            raise SchemaError("a positive count or a list of non-negative integer seeds")
        return value

    @field_validator("sampler_seed", mode="before")
    @classmethod
    def non_negative_seed(cls, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SchemaError(f"a non-negative integer (got {value!r})")
        return value

    @field_validator("match_parameters", mode="before")
    @classmethod
    def target_count(cls, value):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise SchemaError("a target parameter count (positive integer) or null")
        return value

    @field_validator("pruner", mode="before")
    @classmethod
    def pruner_type(cls, value):
        value = value or {"type": "median"}
        if not isinstance(value, dict) or value.get("type") not in PRUNER_FIELDS:
            raise SchemaError(f"allowed: {', '.join(PRUNER_FIELDS)}", key="type")
        return value

    @field_validator("grid", mode="before")
    @classmethod
    def grid_of_values(cls, value):
        return grid_mapping(value, "train_subset: [500, 2000, 0]")

    @field_validator("variant_grid", mode="before")
    @classmethod
    def variant_grids(cls, value):
        value = value or {}
        for name, knobs in value.items():
            if name not in VARIANTS:
                raise SchemaError(f"unknown variant; allowed: {', '.join(VARIANTS)}", key=name)
            try:
                grid_mapping(knobs, "embedding_vectors: [a, b]")
            except SchemaError as error:
                raise SchemaError(str(error), key=name) from None
        return value

    @field_validator("search_space", "variant_space", mode="before")
    @classmethod
    def spaces(cls, value):
        return value or {}

    @field_validator("variant_space", mode="after")
    @classmethod
    def variant_spaces(cls, value):
        for name, space in value.items():
            if name not in VARIANTS:
                raise SchemaError(f"unknown variant; allowed: {', '.join(VARIANTS)}", key=name)
            positive_values(space, prefix=f"{name}.")
        return value

    @field_validator("search_space", mode="after")
    @classmethod
    def positive_search(cls, value):
        positive_values(value)
        return value

    @field_validator("fixed", mode="after")
    @classmethod
    def not_set_by_hand(cls, value):
        for key in value:
            if key == "seed":
                raise SchemaError("seeds are set by the sweep (sampler_seed, final_seeds)", key=key)
            if key in ("folds", "fold") and str(value[key]) not in ("0", "-1"):
                raise SchemaError(
                    "cross-validation runs through make train (folds=K); a sweep tunes on validation "
                    "and tests its final seeds once",
                    key=key,
                )
        return value

    @model_validator(mode="after")
    def seeds_and_start_up(self):
        try:
            # The search trains with seed sampler_seed: the final seeds are the next ones, so none of
            # the replicates is the selected run itself.
            self.final_seeds = seed_list(self.final_seeds, 3, first=self.sampler_seed + 1)
        except SchemaError as error:
            raise SchemaError(str(error), "final_seeds") from None
        if self.sampler_seed in self.final_seeds:
            raise SchemaError(
                f"must not contain the search seed sampler_seed={self.sampler_seed}: the selected trial "
                "would count as its own replicate",
                "final_seeds",
            )
        if self.startup_trials is None:
            self.startup_trials = max(1, self.trials // 2)
        if not 0 <= self.startup_trials <= self.trials:
            raise SchemaError(
                f"an integer from 0 to trials={self.trials} (got {self.startup_trials!r})", "startup_trials"
            )
        return self


def positive_values(space: dict, prefix: str = "") -> None:
    for key, dist in space.items():
        values = distribution_values(dist.model_dump())
        if key in POSITIVE_KEYS and any(isinstance(v, (int, float)) and v <= 0 for v in values):
            raise SchemaError(f"{key} must be positive (got {values})", key=f"{prefix}{key}")


# -- horizon files -------------------------------------------------------------------------------------
class HorizonFile(Budget):
    variants: list[str] = Field(default_factory=lambda: ["simple"])
    max_epochs: int = 10
    axis: str = "T"
    values: list[int] = Field(None, validate_default=True)
    seeds: list[int] | int = 3
    margin: float = 0.1
    jobs: int = 1
    settings: dict[str, Any] = Field(default_factory=dict)
    ablation: dict[str, dict[str, Any]] = Field(default_factory=dict)
    configs_from: str | None = None  # a sweep profile whose best configurations the arms train with

    @field_validator("values", mode="before")
    @classmethod
    def lengths(cls, value):
        if not isinstance(value, list) or not value or not all(isinstance(v, int) and v >= 1 for v in value):
            raise SchemaError("a non-empty list of positive integers (the lengths to train at)")
        return sorted(value)

    @field_validator("seeds", mode="before")
    @classmethod
    def seed_count(cls, value):
        # a count starts at seed 1: seed 0 is the sweeps' search seed, and a horizon run at the sweep's
        # length with it would replay the selected trial (the bias final seeds avoid)
        return seed_list(value, 3, first=1)

    @field_validator("margin", mode="before")
    @classmethod
    def fraction(cls, value):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
            raise SchemaError(f"a number in [0, 1) (got {value!r})")
        return float(value)

    @field_validator("jobs", mode="before")
    @classmethod
    def positive_jobs(cls, value):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SchemaError(f"a positive integer (got {value!r})")
        return value

    @field_validator("settings", mode="before")
    @classmethod
    def settings_mapping(cls, value):
        value = value or {}
        if not isinstance(value, dict):
            raise SchemaError("expected a mapping of task setting: value")
        return value

    @field_validator("ablation", mode="before")
    @classmethod
    def arms(cls, value):
        value = value or {}
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise SchemaError("a mapping of arm name: {knob: value} applied to the simple RNN")
        return value


# -- keys, and one-line errors -------------------------------------------------------------------------
def top_keys(model: type[BaseModel]) -> set[str]:
    """The keys a file may have at its top level; a profile may override all but `task` and `profiles`
    (and, in a horizon file, `configs_from`)."""
    return set(model.model_fields) | {"task", "profiles"}


def validate(model: type[Budget], merged: dict, path: Path, profile: str) -> Budget:
    """The file's merged mapping (profile applied) as a `model`, or UserError in one line."""
    try:
        return model.model_validate({key: value for key, value in merged.items() if key != "task"})
    except ValidationError as errors:
        raise UserError(one_line(errors.errors()[0], path, profile)) from None


def one_line(error: dict, path: Path, profile: str) -> str:
    loc = [str(part) for part in error["loc"]]
    cause = (error.get("ctx") or {}).get("error")
    in_space = len(loc) >= 2 and loc[0] in ("search_space", "variant_space")
    if isinstance(cause, SchemaError):
        if str(cause).startswith("unknown key "):  # (a pruner's field: the message names it whole)
            return f"{path}: {cause}"
        if in_space:  # (drop the distribution's type tag from the key)
            loc = loc[: 2 if loc[0] == "search_space" else 3]
        key, message = ".".join(filter(None, [*loc, cause.key])), str(cause)
    elif in_space:
        key, message = distribution_error(loc, error)
    else:
        key, message = ".".join(loc), error["msg"]
    return f"{path}: {key} (profile {profile}): {message}"


def distribution_error(loc: list[str], error: dict) -> tuple[str, str]:
    """A search-space entry's error, in the words of the file: which knob, which field."""
    depth = 2 if loc[0] == "search_space" else 3
    key, rest = ".".join(loc[:depth]), loc[depth:]
    kind = error["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found", "model_attributes_type", "model_type"):
        return key, f"expected a mapping with type: {' | '.join(DISTRIBUTIONS)}"
    tag = rest[0] if rest else ""
    if kind == "extra_forbidden":
        allowed = sorted(DISTRIBUTIONS[tag].model_fields)
        return key, f"unknown field {rest[-1]!r}; allowed: {', '.join(allowed)}"
    if rest[-1:] == ["choices"] or (tag == "categorical" and len(rest) > 1 and rest[1] == "choices"):
        return key, "choices must be a non-empty list"
    if tag == "int":
        return key, "low and high must be integers for type int"
    return key, "low and high must be numbers"
