"""The task registry: every module in `tasks/` defines one `TASK = TaskSpec(...)`, found by name.

Task modules import only numpy at module level so that listing tasks stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from bench.errors import UserError

SPLITS = ("train", "validation", "test")


# Whether a larger value is better, for each kind of metric (the loss itself: lower is better).
HIGHER_IS_BETTER = {"accuracy": True, "mse": False, "perplexity": False}

# A per-step class target that the loss and the metrics skip (e.g. MQAR's steps that ask nothing):
# torch's and torchmetrics' own convention for ignore_index.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class MetricSpec:
    """A metric besides the loss, logged as `val/<name>` and `test/<name>`."""

    name: str
    kind: Literal["accuracy", "mse", "perplexity"]
    last_steps: int | None = None  # per-step tasks: score only the final N steps (e.g. recall)

    @property
    def higher_is_better(self) -> bool:
        return HIGHER_IS_BETTER[self.kind]


@dataclass
class TaskData:
    """A task's loaded data and what the network must know about it (sizes can depend on the data,
    e.g. a vocabulary built on the training split)."""

    splits: dict  # {"train" | "validation" | "test": datasets.Dataset}
    input_size: int  # vocabulary size (tokens) or number of features (floats)
    output_size: int  # number of classes, or 1 for regression
    baseline: float  # loss of the best predictor that ignores the input (memoryless)
    vocabulary: list[str] | None = None  # token strings by id, for word vectors
    extra: dict = field(default_factory=dict)  # e.g. vocabulary coverage, truncation share
    notes: dict[str, str] = field(default_factory=dict)  # how the data was made (split layout, label map): run tags


@dataclass(frozen=True)
class TaskSpec:
    """Everything the generic data and training code needs to know about a task."""

    name: str
    description: str
    input_kind: Literal["tokens", "floats"]
    output_kind: Literal["per-step", "per-sequence"]
    loss: Literal["cross_entropy", "mse"]
    settings: dict[str, Any]  # task settings with their defaults, overridable like any knob
    minimums: dict[str, Any]  # lower bounds of the numeric settings
    load_data: Callable[[dict, int], TaskData]  # (settings, data_seed) -> splits and sizes
    # generated: synthetic sequences of a length T (long-range tasks: horizon, zero-input section);
    # text: labeled texts; image: images read as sequences; language-model: next-word over a corpus.
    family: Literal["generated", "text", "image", "language-model"]
    # tiny settings for the registry-wide tests (with the test's own small data for text and image tasks)
    test_preset: dict[str, Any]
    # fixed: every example the same length (arrays); by-length: token sequences of any length, batched
    # by length (the `batching` setting chooses packing, buckets or padding)
    batching: Literal["fixed", "by-length"] = "fixed"
    metrics: tuple[MetricSpec, ...] = ()
    monitor: str = "val/loss"
    monitor_mode: Literal["min", "max"] = "min"
    training_defaults: dict[str, Any] = field(default_factory=dict)
    references: str = ""
    report_metric: str = "loss"  # what reports compare: test/<report_metric> against baseline/<report_metric>
    train_metrics: bool = False  # also compute the metrics on train (e.g. the train-vs-validation gap)
    choices: dict[str, tuple] = field(default_factory=dict)  # allowed values of string settings
    # Tasks whose data is the user's own name each dataset (from its settings, e.g. the data folder):
    # the name goes into the experiment, run names and reports, so datasets never mix.
    dataset_name: Callable[[dict], str] | None = None
    # Cheap checks of the data (settings) -> None, raising UserError: files, encoding, structure, columns,
    # labels. Run at the edge, before the stores, torch, Lightning and `datasets` start.
    check_data: Callable[[dict], None] | None = None
    # claim 1 (short- vs long-term memory): the largest length T at which this task's recall is a
    # short-term test; 0 = at no length (copy-memory holds 10 symbols over T + 10 steps at every T: a
    # capacity test), so its runs test the long half only
    short_lag: int = 0
    # rules between settings that minimums and choices cannot say (e.g. MQAR's T >= 2 x pairs + queries):
    # raises UserError naming the settings and what would be valid
    check_settings: Callable[[dict], None] | None = None

    def dataset(self, settings: dict) -> str:
        """The dataset's name ("" for a task's own data): settings' `dataset`, or derived by the task."""
        name = self.dataset_name(settings) if self.dataset_name else settings.get("dataset", "")
        if name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise UserError(
                f"dataset name {name!r} is not usable in experiment and file names: "
                "set dataset=<letters, digits, . _ ->"
            )
        return name

    def __post_init__(self):
        if self.report_metric != "loss" and self.report_metric not in {m.name for m in self.metrics}:
            raise ValueError(f"task {self.name}: report_metric {self.report_metric!r} is neither loss nor a metric")

    @property
    def higher_is_better(self) -> bool:
        """Direction of the report metric, as its MetricSpec declares (the loss: lower is better)."""
        return any(m.higher_is_better for m in self.metrics if m.name == self.report_metric)

    @property
    def long_range(self) -> bool:
        """Generated sequences with a gap length T: what horizons and the zero-input section are about."""
        return self.family == "generated"

    def validate_settings(self, settings: dict) -> None:
        for key, minimum in self.minimums.items():
            if settings[key] < minimum:
                raise UserError(f"{key}={settings[key]} is out of range for task {self.name}: must be >= {minimum}")
        for key, allowed in self.choices.items():
            if settings[key] not in allowed:
                raise UserError(
                    f"unknown {key} {settings[key]!r} for task {self.name}; choose one of: {', '.join(allowed)}"
                )
        if self.check_settings:
            self.check_settings(settings)


_TASKS: dict[str, TaskSpec] = {}


def _discover() -> None:
    import tasks as tasks_package  # task modules import this one: found on first use, by name

    for module_info in pkgutil.iter_modules(tasks_package.__path__):
        module = importlib.import_module(f"tasks.{module_info.name}")
        spec = getattr(module, "TASK", None)
        if isinstance(spec, TaskSpec):
            _TASKS[spec.name] = spec


def all_tasks() -> dict[str, TaskSpec]:
    if not _TASKS:
        _discover()
    return dict(sorted(_TASKS.items()))


def get_task(name: str) -> TaskSpec:
    tasks = all_tasks()
    if name not in tasks:
        raise UserError(f"unknown task {name!r}; choose one of: {', '.join(tasks)}")
    return tasks[name]
