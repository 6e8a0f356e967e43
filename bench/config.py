"""The resolved configuration of one training run, and how `key=value` overrides become one.

Resolution order (later wins): suite defaults < the task's training defaults < the variant preset
< user overrides. Everything is validated here, once, so bad input fails before anything runs.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from bench.cells import ACTIVATIONS, CELLS, DEFAULT_CELL, INITS, network_parameters
from bench.errors import UserError
from bench.registry import get_task
from bench.variants import VARIANTS, apply_variant

PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed", "64-true")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
POOLINGS = ("last", "mean", "max")
STOP_ON = ("monitor", "loss")


@dataclass
class RunConfig:
    """Every knob of one training run. Field comments are the user-facing documentation."""

    task: str
    variant: str = "simple"
    # network
    cell: str = DEFAULT_CELL  # a name from bench/cells (`make list`)
    activation: str = "tanh"  # simple RNN only: tanh | relu | linear
    init: str = "default"  # simple RNN only: default | identity (W_hh = I, b = 0; with relu: IRNN, Le et al. 2015)
    layers: int = 1
    bidirectional: bool = False
    hidden: int = 64
    embedding_size: int = 32  # token embedding / float-feature projection width
    dropout: float = 0.0  # between stacked layers
    pooling: str = "last"  # per-sequence head reads: last valid state | mean | max over steps
    embedding_vectors: str = ""  # word-vectors file (GloVe/word2vec text) for embedding-pretrained
    freeze_embedding: bool = True
    random_vectors: bool = False  # a control for embedding_vectors: the same words, random vectors of the same scale
    # optimisation
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    max_epochs: int = 10
    max_steps: int = 0  # optimizer-step budget (Lightning's max_steps); 0 = epochs only. Whichever ends first
    eval_every_steps: int = 0  # validate every this many optimizer steps (across epochs); 0 = once per epoch
    patience: int = 5  # early-stopping patience, in validations without improvement (epochs, or eval_every_steps)
    # what early stopping watches: monitor (the task's, e.g. val/acc) | loss (val/loss, where overfitting shows
    # first); either way the weights kept and tested are those of the best monitored value before the stop
    stop_on: str = "monitor"
    solved: float = 0.0  # stop once val/loss <= this share of the baseline loss (solved: steps go elsewhere); 0 = off
    gradient_clip: float = 1.0  # max global grad norm; 0 disables
    seed: int = 0  # model init and batch order
    data_seed: int = 0  # dataset generation / carving
    precision: str = "auto"  # auto = bf16-mixed on GPU, 32-true on CPU
    accelerator: str = "auto"
    probe: bool = False  # log the gradient-decay probe (dL/dh_t, dh_T/dx_t; trained vs untrained) as artifacts
    # task-specific settings (T, dataset sizes, ...), declared by the task
    task_settings: dict[str, Any] = field(default_factory=dict)
    # not a knob: the file behind embedding_vectors=lm:<corpus>, found once at the edge
    # (`results.pin_vectors`) so that loading data and building the network never query MLflow
    vectors_file: str = ""

    def as_flat_dict(self) -> dict[str, Any]:
        """All values in one flat mapping: what MLflow logs as params."""
        flat = {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_KNOBS}
        flat.update(self.task_settings)
        return flat

    def data_settings(self) -> dict[str, Any]:
        """What the task's data loader reads: its settings, plus the word-vectors source (a text
        vocabulary takes in the words those vectors know)."""
        return {**self.task_settings, "embedding_vectors": self.vectors_file or self.embedding_vectors}


NOT_KNOBS = ("task_settings", "vectors_file")
GENERAL_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in ("task", "variant", *NOT_KNOBS))
CHOICES = {
    "cell": tuple(CELLS),
    "activation": ACTIVATIONS,
    "init": INITS,
    "precision": PRECISIONS,
    "accelerator": ACCELERATORS,
    "pooling": POOLINGS,
    "stop_on": STOP_ON,
}
MINIMUMS = {
    "layers": 1,
    "hidden": 1,
    "embedding_size": 1,
    "batch_size": 1,
    "max_epochs": 1,
    "max_steps": 0,
    "eval_every_steps": 0,
    "patience": 0,
    "solved": 0.0,
    "gradient_clip": 0.0,
    "weight_decay": 0.0,
    "dropout": 0.0,
    "seed": 0,
    "data_seed": 0,
}


def coerce(key: str, raw: Any, like: Any) -> Any:
    """Convert a command-line string (or a YAML value) to the type of the default `like`."""
    if isinstance(like, bool):
        if isinstance(raw, bool):
            return raw
    elif isinstance(like, int):
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    elif isinstance(like, float):
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
            return float(raw)
    elif isinstance(raw, str):
        return raw
    text = str(raw).strip()
    try:
        if isinstance(like, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
            return value
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a finite number"}[type(like)]
        raise UserError(f"{key}={raw!r} is not valid: expected {kind}") from None
    return text


def parse_overrides(items: list[str]) -> dict[str, str]:
    """`["T=50", "hidden=64"]` -> {"T": "50", "hidden": "64"}."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {item!r} is not of the form key=value (e.g. hidden=64)")
        overrides[key.strip()] = value
    return overrides


def resolve_config(
    task_name: str, variant: str = "simple", cell: str | None = None, overrides: dict[str, Any] | None = None
) -> RunConfig:
    """Build and validate the full configuration; raises UserError naming any bad value."""
    task = get_task(task_name)
    if variant not in VARIANTS:
        raise UserError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    config = RunConfig(task=task.name, variant=variant, task_settings=dict(task.settings))
    values: dict[str, Any] = dict(task.training_defaults)
    values.update(apply_variant(variant))
    if cell is not None:
        values["cell"] = cell
    values.update(overrides or {})
    for key, raw in values.items():
        if key in GENERAL_KEYS:
            setattr(config, key, coerce(key, raw, getattr(RunConfig, key)))
        elif key in config.task_settings:
            config.task_settings[key] = coerce(key, raw, task.settings[key])
        else:
            valid = sorted(GENERAL_KEYS) + sorted(task.settings)
            raise UserError(f"unknown key {key!r} for task {task.name}; valid keys: {', '.join(valid)}")
    validate_config(config)
    task.validate_settings(config.task_settings)
    return config


def estimated_parameters(config: RunConfig) -> int:
    """The recurrent layers' parameter count (the bulk of the network), without building it."""
    directions = 2 if config.bidirectional else 1
    return network_parameters(config.cell, config.embedding_size, config.hidden, config.layers, directions)


def memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_network_size(config: RunConfig) -> None:
    """A network whose weights, gradients and Adam state (16 bytes a parameter) exceed this machine's
    memory fails in one line now, instead of an allocation traceback after seconds of data loading."""
    total = memory_bytes()
    count = estimated_parameters(config)
    if total and 16 * count > total:
        raise UserError(
            f"hidden={config.hidden} (layers={config.layers}) is too large: about {count:,} "
            f"parameters need {16 * count / 2**30:.0f} GiB with gradients and optimizer state; "
            f"this machine has {total / 2**30:.0f} GiB"
        )


def check_sequence_memory(config: RunConfig) -> None:
    """Generated sequences of length T live in memory, and backpropagation keeps a batch's hidden states
    for every step: a T that cannot fit fails in one line now, not in a numpy allocation traceback
    (T=10**9 asked for 29 TiB). Lower bounds (a byte a step, float32 states), so no run that fits is refused."""
    total, task = memory_bytes(), get_task(config.task)
    if not total or not task.long_range:
        return
    settings = config.task_settings
    steps, sequences = settings["T"], settings["n_train"] + settings["n_val"] + settings["n_test"]
    states = config.batch_size * steps * config.hidden * config.layers * (2 if config.bidirectional else 1) * 4
    machine = f"this machine has {total / 2**30:.0f} GiB"
    if sequences * steps > total:
        raise UserError(
            f"T={steps} is too large: {sequences:,} sequences (n_train + n_val + n_test) of {steps:,} steps need "
            f"at least {sequences * steps / 2**30:,.0f} GiB; {machine}"
        )
    if states > total:
        raise UserError(
            f"T={steps} is too large: backpropagation through a batch of {config.batch_size} sequences of "
            f"{steps:,} steps keeps at least {states / 2**30:,.0f} GiB of hidden states; {machine}"
        )


def check_accelerator(accelerator: str) -> None:
    """A GPU asked for where torch sees none fails here (Lightning's MisconfigurationException came after
    the run was created). torch is imported only when a GPU is asked for."""
    if accelerator not in ("gpu", "cuda", "mps"):
        return
    import torch  # (lazy: only to ask for a GPU that was named)

    found = torch.backends.mps.is_available() if accelerator == "mps" else torch.cuda.is_available()
    if not found:
        raise UserError(
            f"accelerator={accelerator}: torch {torch.__version__} sees no "
            f"{'Apple GPU' if accelerator == 'mps' else 'CUDA GPU'} here; use accelerator=auto (or cpu)"
        )


LM_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_lm_label(label: str) -> None:
    """`embedding_vectors=lm:<corpus-label>` names a pretraining run, e.g. lm:imdb-unsupervised."""
    if not LM_LABEL.fullmatch(label):
        raise UserError(
            f"embedding_vectors=lm:{label} is not valid: a corpus label has letters, digits, "
            f"'.', '_' and '-' only (e.g. lm:imdb-unsupervised)"
        )


def validate_config(config: RunConfig) -> None:
    """Range and consistency checks on the general knobs."""
    for key, allowed in CHOICES.items():
        value = getattr(config, key)
        if value not in allowed:
            raise UserError(f"unknown {key} {value!r}; choose one of: {', '.join(allowed)}")
    for key, minimum in MINIMUMS.items():
        if getattr(config, key) < minimum:
            raise UserError(f"{key}={getattr(config, key)} is out of range: must be >= {minimum}")
    if not config.lr > 0:
        raise UserError(f"lr={config.lr} is out of range: must be > 0")
    if not config.dropout < 1:
        raise UserError(f"dropout={config.dropout} is out of range: must be in [0, 1)")
    if config.variant == "stacked" and config.layers < 2:
        raise UserError(f"variant stacked needs layers >= 2 (got layers={config.layers})")
    simple_cells = ", ".join(name for name, spec in CELLS.items() if spec.simple_rnn)
    if config.activation != "tanh" and not CELLS[config.cell].simple_rnn:
        raise UserError(f"activation={config.activation} applies to cell {simple_cells} only (cell is {config.cell})")
    if config.init != "default" and not CELLS[config.cell].simple_rnn:
        raise UserError(f"init={config.init} applies to cell {simple_cells} only (cell is {config.cell})")
    if config.embedding_vectors.startswith("lm:"):  # lm:<corpus label>[@<pretraining run id>]
        label, _, run_id = config.embedding_vectors[3:].partition("@")
        check_lm_label(label)
        if run_id and not re.fullmatch(r"[0-9a-f]{4,32}", run_id):
            raise UserError(
                f"embedding_vectors={config.embedding_vectors}: after '@' comes a pretraining run id "
                "(hex, e.g. lm:imdb-unsupervised@3f2a9c1e)"
            )
    check_network_size(config)
    check_sequence_memory(config)
    check_accelerator(config.accelerator)
    if config.variant == "embedding-pretrained" and not config.embedding_vectors:
        raise UserError("variant embedding-pretrained needs embedding_vectors=<path to a GloVe/word2vec text file>")


def torch_threads() -> int | None:
    """TORCH_THREADS=N caps torch's CPU threads (unset: torch's default, one per core); a value that is
    not a whole number >= 1 is an error, found before any import of torch."""
    raw = os.environ.get("TORCH_THREADS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise UserError(f"TORCH_THREADS={raw!r} is not valid: expected a whole number >= 1")
    return int(raw)
