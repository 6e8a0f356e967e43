"""What sweep and horizon specs share: reading a file (strict YAML, profile merged) into its pydantic
model, the base with arms and budget, key types, distributions, the pruner, and the one-line errors."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticUseDefault

from bench.cells import CELLS, DEFAULT_GROUP, GROUPS, expand
from bench.console import counted
from bench.errors import UserError
from bench.paths import ROOT
from bench.variants import VARIANTS

POSITIVE_KEYS = {"lr", "hidden", "batch_size", "layers", "embedding_size", "max_epochs"}  # searched > 0
SET_BY_LOADER = {"profile", "path", "study_prefix", "experiment", "tuned", "name"}  # never keys of a file
REPLACED_WHOLE = {"pruner", "ablation"}  # a profile's pruner or ablation arms replace the file's, not merge


class SchemaError(ValueError):
    """A rule's own message; `key` names the part of the field it concerns (e.g. a variant)."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class Strict(BaseModel):
    """YAML gives real types: no "3" for 3, no true for 1; unknown keys are errors."""

    model_config = ConfigDict(strict=True, extra="forbid")


def use_default(value):
    if value is None:  # an empty key (`fixed:`) is its default
        raise PydanticUseDefault()
    return value


OrDefault = BeforeValidator(use_default)
PositiveInt = Annotated[int, Field(ge=1, description="a positive integer")]
NonNegativeInt = Annotated[int, Field(ge=0, description="a non-negative integer")]
Steps = Annotated[int, OrDefault, Field(ge=0, description="a non-negative integer number of optimizer steps")]
Seeds = Annotated[
    Union[Annotated[list[NonNegativeInt], Field(min_length=1)], PositiveInt],
    OrDefault,
    Field(description="a positive count or a non-empty list of non-negative integer seeds"),
]
Knobs = Annotated[dict[str, Any], OrDefault]
Grid = Annotated[dict[str, Annotated[list, Field(min_length=1)]], OrDefault]
Variant = Literal[tuple(VARIANTS)]
Variants = Annotated[
    list[Variant],
    OrDefault,
    Field(min_length=1, description=f"a non-empty list of variants from {', '.join(VARIANTS)}"),
]
Cells = Annotated[
    list[Literal[tuple([*CELLS, *GROUPS])]],
    OrDefault,
    BeforeValidator(lambda names: [names] if isinstance(names, str) else names),  # `cells: gated`
    Field(min_length=1, description=f"cell or group names, a non-empty list from {', '.join([*CELLS, *GROUPS])}"),
    AfterValidator(expand),
]


# -- search-space distributions and the pruner ---------------------------------------------------------
class Range(Strict):
    log: bool = False

    @property
    def ends(self) -> list:
        """The values a trial can get at the ends of the range (each choice, for choices)."""
        return [self.low, self.high]

    @model_validator(mode="after")
    def ordered(self):
        if self.low > self.high:
            raise SchemaError(f"low ({self.low}) > high ({self.high})")
        if self.log and self.low <= 0:
            raise SchemaError(f"log scale needs low > 0 (got {self.low})")
        return self


class FloatRange(Range):
    type: Literal["float"]
    low: int | float  # (an int stays an int: messages show the value as written)
    high: int | float


class IntRange(Range):
    type: Literal["int"]
    low: int
    high: int
    step: int = 1


class Choices(Strict):
    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)

    @property
    def ends(self) -> list:
        return self.choices


DISTRIBUTIONS = {"float": FloatRange, "int": IntRange, "categorical": Choices}
Distribution = Annotated[Union[FloatRange, IntRange, Choices], Field(discriminator="type")]


def positive_values(space: dict[str, Distribution]) -> dict[str, Distribution]:
    for key, dist in space.items():
        if key in POSITIVE_KEYS and any(isinstance(v, (int, float)) and v <= 0 for v in dist.ends):
            raise SchemaError(f"{key} must be positive (got {dist.ends})", key=key)
    return space


Space = Annotated[dict[str, Distribution], OrDefault, AfterValidator(positive_values)]
PerVariant = Annotated[dict[Variant, TypeVar("T")], OrDefault]  # PerVariant[Grid]: a variant's own grid
PER_VARIANT = f"a mapping of variant ({', '.join(VARIANTS)}): "


class Pruner(Strict):
    model_config = ConfigDict(extra="allow")  # (still strict) which fields are allowed depends on the type

    type: Literal["median", "hyperband", "none"] = Field("median", description="median, hyperband or none")
    n_startup_trials: NonNegativeInt | None = Field(None, description="a non-negative integer")
    n_warmup_steps: NonNegativeInt | None = Field(None, description="a non-negative integer")
    min_resource: PositiveInt | None = Field(None, description="a positive integer")
    max_resource: PositiveInt | Literal["auto"] | None = Field(None, description="a positive integer or auto")
    reduction_factor: PositiveInt | None = Field(None, description="a positive integer")

    @model_validator(mode="after")
    def fields_of_its_type(self):
        allowed = PRUNER_FIELDS[self.type]
        for name in sorted(self.model_fields_set - allowed):  # (the extra keys included)
            raise SchemaError(f"unknown key pruner.{name}; allowed: {', '.join(sorted(allowed))}")
        return self

    @property
    def options(self) -> dict[str, Any]:
        """The pruner's arguments the file gives."""
        return self.model_dump(exclude_none=True, exclude={"type"})


PRUNER_FIELDS = {
    "median": {"type", "n_startup_trials", "n_warmup_steps"},
    "hyperband": {"type", "min_resource", "max_resource", "reduction_factor"},
    "none": {"type"},
}


# -- what sweep and horizon specs share ----------------------------------------------------------------
class FileSpec(Strict):
    """The file (its profile and path set by the loader), the arms (variants x cells), fixed knobs and budget."""

    task: str
    profile: str
    path: Path
    description: str = Field("", description="text")
    max_epochs: PositiveInt
    max_steps: Steps = 0
    eval_every_steps: Steps = 0
    patience_steps: Steps = 0
    variants: Variants
    cells: Cells = Field(default_factory=lambda: expand([DEFAULT_GROUP]))
    fixed: Knobs = Field({}, description="a mapping of knob: value")

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

    @property
    def budget_knobs(self) -> dict[str, int]:
        """The budget as run knobs (patience counted in validations)."""
        knobs = {"max_epochs": self.max_epochs}
        if self.max_steps:
            knobs.update(max_steps=self.max_steps, eval_every_steps=self.eval_every_steps)
        if self.patience_steps:  # (only with eval_every_steps)
            knobs["patience"] = -(-self.patience_steps // self.eval_every_steps)  # ceil: at least patience_steps
        return knobs

    def describe_budget(self) -> str:
        return describe_budget(self.max_epochs, self.max_steps, self.eval_every_steps, self.patience_steps)

    def error(self, key: str, message: str, run: str = "") -> UserError:
        """One line naming the file, the key, the profile and the study or arm `run` it concerns."""
        return UserError(f"{self.path}: {key} (profile {self.profile}{', ' + run if run else ''}): {message}")


def digest(knobs: dict) -> str:
    """8 hex digits of `knobs`: a spec's fingerprint (what makes its runs one experiment); 6 name a sweep's ARGS."""
    return hashlib.sha256(json.dumps(knobs, sort_keys=True, default=str).encode()).hexdigest()[:8]


def describe_budget(max_epochs: int, max_steps: int, eval_every_steps: int, patience_steps: int) -> str:
    if not max_steps:
        return counted(max_epochs, "epoch")
    text = f"{max_steps:,} optimizer steps (at most {max_epochs} epochs), validation every {eval_every_steps:,} steps"
    return text + (f", early-stopping patience {patience_steps:,} steps" if patience_steps else "")


# -- reading a file ------------------------------------------------------------------------------------
Spec = TypeVar("Spec", bound=FileSpec)


def read_spec(
    model: type[Spec], kind: str, path: Path, task: str, profile: str | None, knobs: dict | None = None
) -> Spec:
    """A task's YAML file with the profile merged into its top level and `knobs` (the command line's)
    into `fixed`, as a `model`; UserError names the file and key."""
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
    top_keys = set(model.model_fields) - SET_BY_LOADER | {"profiles"}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of keys ({', '.join(sorted(top_keys))})")
    check_keys(path, "", raw, top_keys)
    if raw.get("task") != task:
        raise UserError(f"{path}: task: is {raw.get('task')!r}, expected {task!r}")
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise UserError(f"{path}: profiles: expected a mapping of profile name: keys (got {profiles!r})")
    profile = profile or default_profile()
    if profile not in profiles:
        raise UserError(
            f"{path}: unknown profile {profile!r}; choose one of: {', '.join(profiles) or '(none defined)'}"
        )
    overrides = profiles[profile] or {}
    if not isinstance(overrides, dict):
        raise UserError(f"{path}: profiles.{profile}: expected a mapping")
    check_keys(path, f"profiles.{profile}.", overrides, top_keys - {"task", "profiles"})
    merged = deep_merge({k: v for k, v in raw.items() if k != "profiles"}, overrides)
    if knobs and isinstance(merged.get("fixed") or {}, dict):  # (a bad `fixed` stays for its error)
        merged["fixed"] = {**(merged.get("fixed") or {}), **knobs}
    try:
        return model.model_validate({**merged, "path": path, "profile": profile})
    except ValidationError as errors:
        raise UserError(one_line(errors.errors()[0], model, merged, path, profile)) from None


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden: that is what it is for
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (list, dict)):
                continue  # (an unhashable key: SafeLoader's own error follows)
            if (first := seen.setdefault(key, key_node.start_mark)) is not key_node.start_mark:
                at = f"first at line {first.line + 1}, column {first.column + 1}"
                message = f"key {key!r} given twice in one mapping ({at}): keep one"
                raise yaml.constructor.ConstructorError(None, None, message, key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def check_keys(path: Path, prefix: str, mapping: dict, allowed: set[str]) -> None:
    for key in mapping:
        if key not in allowed:
            raise UserError(f"{path}: unknown key {prefix}{key}; allowed: {', '.join(sorted(allowed))}")


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
    import torch  # (lazy: start-up)

    return "gpu" if torch.cuda.is_available() else "cpu"


# -- one-line errors -----------------------------------------------------------------------------------
def one_line(error: dict, model: type[BaseModel], given: dict, path: Path, profile: str) -> str:
    loc = [str(part) for part in error["loc"]]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SchemaError) and str(cause).startswith("unknown key "):
        return f"{path}: {cause}"  # (a pruner's field: the message names it whole)
    depth = {"search_space": 2, "variant_space": 3}.get(loc[0] if loc else "", 0)
    if isinstance(cause, SchemaError):  # (file_key: a distribution's without its type tag)
        key, message = ".".join(filter(None, [file_key(loc, given), cause.key])), str(cause)
    elif depth and len(loc) >= depth and "[key]" not in loc:  # in a distribution
        key, message = ".".join(loc[:depth]), distribution_error(loc[depth:], error)
    else:
        key, message = file_key(loc, given), allowed(model, loc, error)
    return f"{path}: {key} (profile {profile}): {message}"


def file_key(loc: list[str], given: Any) -> str:
    """The part of an error's location that is keys of the file (not list positions or union tags)."""
    parts = loc[:1]
    for depth, part in enumerate(loc):
        given = {str(key): value for key, value in given.items()} if isinstance(given, dict) else {}
        if part not in given:
            break
        parts, given = loc[: depth + 1], given[part]
    return ".".join(parts)


def allowed(model: type[BaseModel], loc: list[str], error: dict) -> str:
    """What the deepest key along `loc` with a description allows, and what the file gave (pydantic's
    own words where no key says)."""
    allows = None
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            break
        allows, model = field.description or allows, field.annotation
    if allows is None:
        return error["msg"]
    return f"{allows} ({'missing' if error['type'] == 'missing' else 'got ' + repr(error['input'])})"


def distribution_error(rest: list[str], error: dict) -> str:
    """A search-space entry's error, in the words of the file: which field."""
    kind = error["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found", "model_attributes_type", "model_type"):
        return f"expected a mapping with type: {' | '.join(DISTRIBUTIONS)}"
    tag = rest[0] if rest else ""
    if kind == "extra_forbidden":
        return f"unknown field {rest[-1]!r}; allowed: {', '.join(sorted(DISTRIBUTIONS[tag].model_fields))}"
    if "choices" in rest:
        return "choices must be a non-empty list"
    if tag == "int":
        return "low and high must be integers for type int"
    return "low and high must be numbers"
