"""What the terminal shows: third-party chatter quieted (unless -v), the resolved configuration of a
command in one block, and one live progress line that falls back to plain lines off a terminal.

Imports nothing heavy: the CLI uses it before deciding whether torch is needed at all.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Callable, TextIO

from bench import stores
from bench.cells import CELLS
from bench.variants import apply_variant

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).

VERBOSE_ENV = "RNNBENCH_VERBOSE"  # inherited by worker processes (horizon jobs)
PLAIN_INTERVAL = 30.0  # seconds between plain progress lines (no terminal, or a 0-column one)
LIVE_INTERVAL = 0.5  # seconds between redraws of the live line


def counted(count, noun: str, plural: str | None = None) -> str:
    """`1 trial`, `3 trials`, `1 study`, `2 studies`; a count that is not a number (`?`) takes the plural."""
    return f"{count} {noun if count == 1 or count == '1' else plural or noun + 's'}"


def set_verbose(flag: bool) -> None:
    os.environ[VERBOSE_ENV] = "1" if flag else "0"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "0") == "1"


def quiet_libraries() -> None:
    """No Lightning tips and device banners, no `datasets`/tokenizer bars, no Optuna per-trial logs.
    Environment first: `datasets` reads its switch when imported (and horizon workers inherit it)."""
    if verbose():
        return
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # else a warning at each fork after tokenising
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported ("Updating tables")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a report reads many small artifacts
    # ERROR for Optuna too: a failed trial is reported by the sweep in one line (its traceback is kept
    # in MLflow); Optuna's own warning would print the whole traceback on the terminal.
    for name in ("datasets", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if "datasets" in sys.modules:  # imported before us (a notebook, the tests): switch its bars off now
        sys.modules["datasets"].disable_progress_bars()
    if "mlflow" in sys.modules:
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    quiet_lightning()


def quiet_lightning() -> None:
    """Lightning sets its logger to INFO when first imported: call again after that import."""
    if verbose():
        return
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


# -- the resolved configuration ----------------------------------------------------------------------
def short_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def knobs_line(values: dict, keys) -> str:
    return " ".join(f"{k}={short_value(values[k])}" for k in keys if k in values)


def config_block(config, origins: dict[str, str] | None = None, title: str | None = None) -> str:
    """The configuration one training run will use, in a few lines grouped by role; `origins` maps a
    knob to where its value came from when that is not the suite default (task, variant, you)."""
    flat = {k: v for k, v in config.as_flat_dict().items()}
    head = title or f"{config.task} · {config.variant} {config.cell}"
    lines = [f"{head} · seed {config.seed} (data seed {config.data_seed})"]
    network = ["layers", "bidirectional", "hidden", "embedding_size", "dropout", "pooling"]
    if CELLS[config.cell].simple_rnn:
        network = ["activation", "init", *network]
    if config.embedding_vectors:
        network += ["embedding_vectors", "freeze_embedding"]
    groups = [
        ("task", list(config.task_settings)),
        ("network", network),
        (
            "training",
            [
                "lr",
                "batch_size",
                "max_epochs",
                "max_steps",
                "eval_every_steps",
                "patience",
                "stop_on",
                "gradient_clip",
                "weight_decay",
            ],
        ),
        ("device", ["accelerator", "precision", "probe"]),
    ]
    for name, keys in groups:
        lines.append(f"  {name:<9}{knobs_line(flat, keys)}")
    if origins:
        by_source: dict[str, list[str]] = {}
        for key, source in origins.items():
            by_source.setdefault(source, []).append(key)
        lines.append("  set by   " + "; ".join(f"{source}: {' '.join(keys)}" for source, keys in by_source.items()))
    return "\n".join(lines)


def config_origins(task, variant: str, cell: str | None, overrides: dict) -> dict[str, str]:
    """Where each non-default knob came from, in resolution order (later wins)."""

    origins = {k: "task" for k in task.training_defaults}
    origins.update({k: f"variant {variant}" for k in apply_variant(variant)})
    if cell is not None:
        origins["cell"] = "you"
    origins.update({k: "you" for k in overrides})
    return origins


def environment_line() -> str:
    """Threads, stores and system metrics: what makes two runs of the same command differ in speed or
    destination, and what each run records besides its own metrics."""
    threads = os.environ.get("TORCH_THREADS") or "torch default (all cores)"
    system = (
        f"CPU, memory (GPU where present) sampled into each run every {stores.system_metrics_interval():g} s "
        f"({stores.SYSTEM_METRICS}=0: off)"
        if stores.system_metrics_enabled()
        else f"off ({stores.SYSTEM_METRICS}=0)"
    )
    store = stores.safe_url(stores.tracking_uri())  # no password on screen
    return f"  store    {store} · TORCH_THREADS={threads}\n  system   {system}"


def duration(seconds: float | None) -> str:
    """`42 s`, `3:05`, `1:02:03`; `?` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# -- progress ----------------------------------------------------------------------------------------
def terminal_width(stream: TextIO) -> int:
    """Columns of the terminal behind `stream`; 0 when it is not a terminal (a file, a pipe, CI) or
    reports no width (some emulators and `script` without a size)."""
    try:
        if not stream.isatty():
            return 0
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


def fit(parts: list[str], width: int) -> str:
    """Join parts with ' · ', dropping trailing parts (never the first) until the line fits."""
    shown = list(parts)
    while len(shown) > 1 and len(" · ".join(shown)) > width:
        shown.pop()
    line = " · ".join(shown)
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


class Progress:
    """One progress line for many runs: `done` counts finished work (runs, possibly from other workers
    or earlier invocations), `within` the fraction of the run this process is training. The ETA uses
    only work finished *during this invocation*, so a resumed sweep does not read 155 runs/s, and its
    pace is recent (a moving average over the last tenth of the time, at least 10 s), so a slow first
    epoch (a busy machine, a cold cache) does not set it for the whole run.

    On a terminal the line is redrawn in place, cut to its width; elsewhere (a file, a pipe, a
    terminal reporting 0 columns) a plain line is printed every PLAIN_INTERVAL seconds and at each
    finished run."""

    def __init__(
        self,
        title: str,
        total: float,
        unit: str = "runs",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.title, self.total, self.unit = title, total, unit
        self.stream = stream or sys.stderr
        self.clock = clock
        self.started = clock()
        self.timed_from: tuple[float, float] | None = None  # (time, work done) when this process began training
        self.pace: float | None = None  # recent work per second, see `sample_pace`
        self.paced_at: tuple[float, float] | None = None  # (time, work done) of the last pace sample
        self.done = 0.0  # finished work, all workers
        self.within = 0.0  # fraction of the current run of this process
        self.current = ""  # what this process is running now
        self.details: list[str] = []  # compact per-study summaries, shown as the width allows
        self.last_draw = float("-inf")
        self.live = False
        self.closed = False

    # -- state --------------------------------------------------------------------------------------
    def set_done(self, done: float, details: list[str] | None = None) -> None:
        self.done = done
        self.within = 0.0
        if details is not None:
            self.details = details
        self.sample_pace()
        self.draw(force=True)

    def set_position(self, done: float, text: str) -> None:
        """Where a run measured in small units (optimizer steps) is now: redrawn at the usual rate, not
        on every unit as `set_done` would."""
        self.done = min(done, self.total)
        self.set_current(text)

    def set_current(self, text: str, fraction: float = 0.0) -> None:
        self.start_timing()
        self.current, self.within = text, min(max(fraction, 0.0), 1.0)
        self.sample_pace()
        self.draw()

    def start_timing(self) -> None:
        """Training starts now: the pace counts from here. Imports, stores and data preparation are not
        a rate of training. Called by the first `set_current`, or directly where the runs train in
        other processes and report only when they finish (a horizon's worker pool)."""
        if self.timed_from is None:
            self.timed_from = (self.clock(), self.progressed())

    def progressed(self) -> float:
        return min(self.done + self.within, self.total)

    def sample_pace(self) -> None:
        """Work per second since the last sample (at least 1 s ago), folded into a moving average whose
        time constant is a tenth of the time trained so far (at least 10 s). The first sample is the pace
        since training began; work finished by earlier invocations or before that moment never counts."""
        if self.timed_from is None:
            return
        now, progressed = self.clock(), self.progressed()
        last_time, last_work = self.paced_at or self.timed_from
        if now - last_time < 1.0 or (self.pace is None and progressed <= last_work):
            return
        rate = (progressed - last_work) / (now - last_time)
        if self.pace is None:
            self.pace = rate
        else:
            kept = math.exp(-(now - last_time) / max(10.0, 0.1 * (now - self.timed_from[0])))
            self.pace = (1.0 - kept) * rate + kept * self.pace
        self.paced_at = (now, progressed)

    def eta(self) -> float | None:
        """Seconds left at this invocation's recent pace; None until it has timed some work."""
        if not self.pace:
            return None
        return (self.total - self.progressed()) / self.pace

    # -- output -------------------------------------------------------------------------------------
    def share(self) -> float:
        return self.progressed() / self.total if self.total else 1.0

    def parts(self) -> list[str]:
        """Most important first: a narrow terminal drops parts from the end."""
        eta = self.eta()
        timing = (
            f"~{duration(eta)} left" if eta is not None else "time left: once training is timed"
        ) + f" ({duration(self.clock() - self.started)} so far)"
        count = f"{self.done:.0f}/{self.total:.0f} {self.unit} {100 * self.share():.0f}%"
        return [self.title, count, timing, *([self.current] if self.current else []), *self.details]

    def line(self, width: int) -> str:
        parts = self.parts()
        bar_width = max(8, min(24, width // 8))
        filled = int(round(self.share() * bar_width))
        parts[0] = f"{parts[0]} [{'#' * filled}{'.' * (bar_width - filled)}]"
        return fit(parts, width - 1)

    def draw(self, force: bool = False) -> None:
        if self.closed:
            return
        now = self.clock()
        width = terminal_width(self.stream)
        if width <= 0:  # plain lines: never a carriage return, never an empty line
            if force or now - self.last_draw >= PLAIN_INTERVAL:
                self.stream.write(" · ".join(self.parts()) + "\n")
                self.stream.flush()
                self.last_draw = now
            return
        if not force and now - self.last_draw < LIVE_INTERVAL:
            return
        self.stream.write("\r\x1b[K" + self.line(width))
        self.stream.flush()
        self.live, self.last_draw = True, now

    def write(self, message: str, stream: TextIO | None = None) -> None:
        """A permanent line above the live one (a finished study, a failed trial), on `stream` if given
        (a result for stdout while the live line is on stderr)."""
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        out = stream or self.stream
        out.write(message + "\n")
        out.flush()
        self.live = False
        self.draw(force=True) if terminal_width(self.stream) > 0 else None

    def close(self) -> None:
        if self.closed:
            return
        if self.live:
            self.stream.write("\r\x1b[K" + self.line(terminal_width(self.stream)) + "\n")
        else:
            self.stream.write(" · ".join(self.parts()) + "\n")
        self.stream.flush()
        self.closed = True


_ACTIVE: Progress | None = None


def say(message: str, stream: TextIO | None = None) -> None:
    """Print a line (on stderr, or `stream`) without breaking the live progress line, if there is one."""
    if _ACTIVE is not None and not _ACTIVE.closed:
        _ACTIVE.write(message, stream)
    else:
        print(message, file=stream or sys.stderr, flush=True)


def activate(progress: Progress | None) -> None:
    global _ACTIVE
    _ACTIVE = progress


def space_text(space: dict) -> str:
    def one(dist) -> str:
        if dist.type == "categorical":
            return "{" + ",".join(short_value(c) for c in dist.choices) + "}"
        scale = " log" if dist.log else ""
        return f"[{short_value(dist.low)}, {short_value(dist.high)}{scale}]"

    return " ".join(f"{k}={one(d)}" for k, d in space.items())


def sweep_block(spec, storage_url: str) -> str:
    """A sweep's resolved plan in a few lines: studies, budget, fixed knobs, searched ranges, stores."""
    runs = len(spec.studies) * (spec.trials + len(spec.final_seeds))
    pruner = spec.pruner.type
    lines = [
        f"sweep {spec.task} [{spec.profile}] from {spec.path}",
        f"  studies  {len(spec.studies)}: {' '.join(key.label for key in spec.studies)}",
        f"  budget   {counted(spec.trials, 'trial')} + {counted(len(spec.final_seeds), 'final seed')} "
        f"{spec.final_seeds} per study = {counted(runs, 'run')}, each {spec.describe_budget()}; "
        f"{counted(spec.startup_trials, 'random start-up trial')}; pruner "
        f"{pruner}, sampler seed {spec.sampler_seed}",
        f"  fixed    {knobs_line(spec.fixed, spec.fixed) or '–'}",
        f"  searched {space_text(spec.search_space)}",
    ]
    for variant, extra in spec.variant_space.items():
        if variant in spec.variants and extra:
            lines.append(f"  {variant:<8} {space_text(extra)} (searched too)")
    if spec.match_parameters:
        lines.append(f"  hidden   set per trial to match {spec.match_parameters:,} parameters")
    lines.append(f"  optuna   {stores.safe_url(storage_url)}")
    return "\n".join(lines + [environment_line()])


def horizon_block(spec, jobs: int) -> str:
    planned = len(spec.arms) * len(spec.values) * len(spec.seeds)
    lines = [
        f"horizon {spec.task} [{spec.profile}] from {spec.path}",
        f"  arms     {len(spec.arms)}: {' '.join(arm.label for arm in spec.arms)}",
        f"  {spec.axis:<8} {' '.join(str(v) for v in spec.values)} × seeds {spec.seeds}, each run "
        f"{spec.describe_budget()}",
        f"  runs     {planned} planned (runs finished by an earlier call are skipped), {jobs} at a time",
        f"  settings {knobs_line(spec.settings, spec.settings) or '–'}",
    ]
    return "\n".join(lines + [environment_line()])
