"""`make sweep ... DRY_RUN=1` (`python -m bench sweep --plan`): what a sweep would run and roughly how
long, from a short timing probe on this machine. Starts nothing: no Optuna study, no MLflow run."""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bench import console
from bench.config import resolve_config
from bench.data import TaskDataModule
from bench.file_schema import Distribution, Pruner
from bench.horizon_spec import run_knobs
from bench.module import RecurrentTaskModule
from bench.registry import get_task
from bench.results import pin_vectors, read_run
from bench.run_keys import Metric
from bench.sweep import Worker, hidden_for_parameter_count, load, make_storage, study_counts, study_name
from bench.sweep_config import StudyKey, SweepSpec
from bench.train import apply_thread_setting, build_network

# A plan probes real training steps, so this module imports torch, Lightning, Optuna and MLflow at the
# top: the commands import it only once a plan is asked for (`--plan`), after their input is checked.

PROBE_STEPS = 8  # timed training steps per probed configuration, after one untimed warm-up step


@dataclass
class StudyPlan:
    key: StudyKey
    trials_left: int
    finals_left: int
    seconds_per_run: float  # at max_epochs (no pruning, no early stopping): an upper bound

    @property
    def runs_left(self) -> int:
        return self.trials_left + self.finals_left


def middle(dist: Distribution):
    """A representative value of a searched range: its middle (geometric for log scales)."""
    if dist.type == "categorical":
        return dist.choices[len(dist.choices) // 2]
    low, high = dist.low, dist.high
    value = math.sqrt(low * high) if dist.log and low > 0 else (low + high) / 2
    return int(round(value)) if dist.type == "int" else value


def middle_params(spec: SweepSpec, key: StudyKey) -> dict:
    """The searched knobs of a study at the middle of their ranges."""
    return {k: middle(d) for k, d in spec.space_for(key.variant).items()}


def study_config(spec: SweepSpec, key: StudyKey, **extra):
    knobs = {
        **spec.fixed,
        **dict(key.grid),
        **middle_params(spec, key),
        "max_epochs": spec.max_epochs,
        **extra,
    }
    if spec.match_parameters:
        knobs["hidden"] = hidden_for_parameter_count(spec.task, key.variant, key.cell, knobs, spec.match_parameters)
    return resolve_config(spec.task, key.variant, key.cell, knobs)


@dataclass(frozen=True)
class RunCost:
    """What a sweep run costs besides its bare training steps, measured on real runs of the sweep's
    own code; and what the sweep command costs once."""

    overhead: float  # per run: Optuna bookkeeping, tracking, trainer set-up, checkpoint, test
    step_scale: float  # Lightning's training step (loop, loader, logging, callbacks) over the bare step
    startup: float  # once per sweep: Lightning's import, data preparation, the stores, the first run's set-up

    def run_seconds(self, spec: SweepSpec, epoch: "EpochCost") -> float:
        return self.overhead + training_seconds(spec, epoch.scaled(self.step_scale))


def probe_overhead(spec: SweepSpec, key: StudyKey, epoch: EpochCost) -> RunCost:
    """Two real one-epoch trials of the study at its middle configuration (the one `probe_epoch`
    timed), in a throw-away Optuna storage and MLflow store. The second gives the run's fixed cost and
    Lightning's own epoch time, hence its per-step cost over the bare step; the first, minus the
    second, what only the first run of a command pays (creating the stores, first-time set-up)."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "RNNBENCH_CHECKPOINTS", "RNNBENCH_ARTIFACTS")}
    with tempfile.TemporaryDirectory(prefix="rnnbench-plan-") as scratch:
        os.environ.update(
            {
                "MLFLOW_TRACKING_URI": f"sqlite:///{scratch}/mlflow.db",
                "RNNBENCH_CHECKPOINTS": f"{scratch}/checkpoints",
                "RNNBENCH_ARTIFACTS": f"{scratch}/artifacts",
            }
        )
        try:
            storage = make_storage(f"sqlite:///{scratch}/optuna.db")
            probe = spec.model_copy(
                update=dict(
                    max_epochs=1,
                    max_steps=0,
                    eval_every_steps=0,
                    patience_steps=0,
                    pruner=Pruner(type="none"),
                    study_prefix="plan-probe",
                )
            )
            walls = []
            for trials in (1, 2):
                start = time.perf_counter()
                study = load(probe, storage, study_name(probe, key))
                study.enqueue_trial(middle_params(spec, key))  # the configuration probe_epoch timed
                Worker(probe.model_copy(update={"trials": trials}), storage).search(key)
                walls.append(time.perf_counter() - start)
            run_id = study.get_trials(deepcopy=False)[-1].user_attrs["mlflow_run_id"]
            lightning_epoch = read_run(run_id).metrics[Metric.SECONDS_PER_EPOCH]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    scale = lightning_epoch / max(epoch.step_seconds * epoch.steps, 1e-9)
    overhead = max(walls[1] - lightning_epoch - epoch.validation_seconds * scale, 0.0)
    return RunCost(overhead, scale, first_probe_seconds() + max(walls[0] - walls[1], 0.0))


def process_age() -> float:
    """Seconds since this process started (Linux's /proc; 0 where it is missing)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return max(float(Path("/proc/uptime").read_text().split()[0]) - ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0


_first_probe: dict[str, float] = {}


def first_probe_seconds() -> float:
    """Seconds the first `probe_config` of this process spent preparing its data: a sweep pays them too, in
    its first trial (the probe trials find it done). Importing torch and Lightning, which a sweep's first
    trial pays as well, came with this module: the process's age when the plan starts counts it."""
    return _first_probe.get("seconds", 0.0)


@dataclass(frozen=True)
class EpochCost:
    step_seconds: float  # one training step
    steps: int  # training steps (batches) in one epoch
    validation_seconds: float  # one forward pass over the validation split

    @property
    def seconds(self) -> float:
        """One epoch validated at its end (an epoch budget)."""
        return self.step_seconds * self.steps + self.validation_seconds

    def scaled(self, factor: float) -> "EpochCost":
        """The same epoch with steps and validation `factor` times as long (Lightning's loop around them)."""
        return EpochCost(self.step_seconds * factor, self.steps, self.validation_seconds * factor)


def probe_epoch(spec: SweepSpec, key: StudyKey) -> EpochCost:
    """What one epoch of this study costs, from its middle configuration (`probe_config`)."""
    return probe_config(pin_vectors(study_config(spec, key)))


def probe_config(config, steps_to_time: int = PROBE_STEPS) -> EpochCost:
    """What one epoch of a run configuration costs: a few real training steps (the suite's own data,
    network and loss), scaled to an epoch of training batches plus a forward pass over validation; and
    how many steps an epoch has (a step budget's length)."""
    started = time.perf_counter()
    apply_thread_setting()
    task = get_task(config.task)
    datamodule = TaskDataModule(task, config.data_settings(), config.data_seed, config.batch_size, config.seed)
    datamodule.setup()
    _first_probe.setdefault("seconds", time.perf_counter() - started)
    net = build_network(task, config, datamodule.data)
    module = RecurrentTaskModule(task, net, config.lr, config.weight_decay, num_classes=datamodule.data.output_size)
    cuda = torch.cuda.is_available() and config.accelerator in ("auto", "gpu", "cuda")
    device = torch.device("cuda" if cuda else "cpu")
    module.to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    batches = iter(train_loader)
    timed = 0.0
    steps = min(steps_to_time + 1, len(train_loader))
    for step in range(steps):
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in next(batches).items()}
        start = time.perf_counter()
        loss = module.loss(module(batch), batch["targets"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        if step > 0 or steps == 1:  # the first step pays one-off costs (allocations, kernel choice)
            timed += time.perf_counter() - start
    per_step = timed / max(steps - 1, 1)
    # A validation batch is a forward pass only: about a third of a training step.
    return EpochCost(per_step, len(train_loader), per_step * len(val_loader) / 3)


def remaining(spec: SweepSpec, storage_url: str, key: StudyKey) -> tuple[int, int]:
    """(trials, final seeds) this study still needs, read from an existing storage; never creates one."""
    if storage_url.startswith("sqlite:///") and not os.path.exists(storage_url.removeprefix("sqlite:///")):
        return spec.trials, len(spec.final_seeds)
    counts = study_counts(spec, make_storage(storage_url), key)
    done = min(counts["done"] + counts["pruned"], spec.trials)
    return spec.trials - done, len(spec.final_seeds) - min(counts["finals"], len(spec.final_seeds))


@dataclass
class Plan:
    studies: list[StudyPlan]
    startup: float  # seconds the command pays once (imports, stores, first-time set-up)

    @property
    def seconds(self) -> float:
        runs = sum(p.runs_left * p.seconds_per_run for p in self.studies)
        return runs + (self.startup if runs else 0.0)


def build_plan(
    spec: SweepSpec, storage_url: str, epoch_probe=probe_epoch, overhead_probe=probe_overhead, started: float = 0.0
) -> Plan:
    """Each study with work left is timed for a few bare steps; the cost of a run around them (its fixed
    cost, Lightning's loop) and the sweep's start-up are measured once, on the first such study, and
    assumed the same for the others. `started`: seconds the command ran before the plan began."""
    plans, cost = [], None
    for key in spec.studies:
        trials, finals = remaining(spec, storage_url, key)
        seconds = 0.0
        if trials + finals:
            epoch = epoch_probe(spec, key)
            cost = cost or overhead_probe(spec, key, epoch)
            seconds = cost.run_seconds(spec, epoch)
        plans.append(StudyPlan(key, trials, finals, seconds))
    return Plan(plans, started + cost.startup if cost else 0.0)


def training_seconds(spec: SweepSpec, epoch: EpochCost) -> float:
    """Seconds a run trains at most: max_epochs epochs validated at each end; or, with a step budget,
    max_steps steps (fewer if max_epochs ends it sooner) validated every eval_every_steps. The steps an
    epoch has come from the probe's own data loader, so a text task's labeled subset counts as a
    generated task's n_train does; and a small subset's many short epochs are not each validated."""
    if not spec.max_steps:
        return spec.max_epochs * epoch.seconds
    steps = min(spec.max_steps, spec.max_epochs * epoch.steps)
    return steps * epoch.step_seconds + (steps / spec.eval_every_steps) * epoch.validation_seconds


def format_plan(spec: SweepSpec, plan: Plan, load: float | None) -> str:
    width = max(len(p.key.label) for p in plan.studies) + 2
    lines = [
        "plan (nothing was started; the same command without DRY_RUN=1 / --plan runs it):",
        f"  {'study':<{width}}{'trials left':>12}{'finals left':>12}{'s / run':>10}{'time':>10}",
    ]
    for p in plan.studies:
        lines.append(
            f"  {p.key.label:<{width}}{p.trials_left:>12}{p.finals_left:>12}"
            f"{p.seconds_per_run:>10.1f}{console.duration(p.runs_left * p.seconds_per_run):>10}"
        )
    runs = sum(p.runs_left for p in plan.studies)
    planned = len(spec.studies) * (spec.trials + len(spec.final_seeds))
    machine = f"load average {load:.1f}" if load is not None else "load unknown"
    startup = f", start-up {console.duration(plan.startup)} included" if runs else ""
    lines += [
        f"  {console.counted(len(plan.studies), 'study', 'studies')}, {runs} of {console.counted(planned, 'run')} left, "
        f"estimated {console.duration(plan.seconds)} for one worker if every run goes to its budget "
        f"({spec.describe_budget()}{startup}; {machine}, TORCH_THREADS={os.environ.get('TORCH_THREADS') or 'default'}).",
        "  How: a few bare training steps of each study's middle configuration, scaled by Lightning's own "
        "epoch time and a run's fixed cost as two real one-epoch trials measured them (in throw-away stores). "
        "It is a minute's sample of this machine at its present load: pruning, early stopping or a lighter load "
        "make a sweep shorter; a heavier load, or a search that favours larger networks or batches than the "
        "middle of the ranges, longer.",
    ]
    return "\n".join(lines)


def print_plan(spec: SweepSpec, storage_url: str) -> None:
    started = process_age()  # the sweep command gets this far too before it trains
    console.quiet_libraries()
    print("timing probe: a few training steps per study and two one-epoch trials ...", flush=True)
    plan = build_plan(spec, storage_url, started=started)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(format_plan(spec, plan, load))


# -- horizons: `make horizon TASK=... PROFILE=gpu DRY_RUN=1` ----------------------------------------------
HORIZON_PROBE_STEPS = 2  # long sequences: two timed steps per arm and length are enough for a plan


def horizon_plan(spec, jobs: int) -> str:
    """Every arm at every length probed for a few training steps on this machine, scaled to the file's
    budget x seeds: an upper bound (early stopping ends runs sooner), from the file's fixed knobs (not a
    sweep's tuned ones). Starts nothing."""
    lines = [
        f"horizon plan {spec.task} [{spec.profile}]: {len(spec.arms)} arms x {spec.axis} {spec.values} x "
        f"{len(spec.seeds)} seeds, each run at most {spec.describe_budget()} (nothing was started)"
    ]
    by_value = horizon_seconds(spec)
    total = sum(by_value.values())
    for value, seconds in by_value.items():
        lines.append(f"  {spec.axis}={value}: at most {console.duration(seconds)} of training for one worker")
    lines.append(
        f"estimated at most {console.duration(total)} for one worker, {console.duration(total / jobs)} with {jobs} "
        f"job{'s' if jobs > 1 else ''}, on "
        f"this machine ({os.cpu_count()} CPUs{', CUDA' if torch.cuda.is_available() else ', no GPU'}; load "
        f"{os.getloadavg()[0]:.1f}); a GPU run of the same file takes a fraction of a CPU estimate"
    )
    return "\n".join(lines)


def horizon_seconds(spec) -> dict[int, float]:
    """Per length, the seconds every arm's seeds train at most for one worker (a few probed steps each)."""
    by_value = {}
    for value in spec.values:
        seconds = 0.0
        for arm in spec.arms:
            knobs = run_knobs(spec, arm, {}, value, spec.seeds[0])
            config = resolve_config(spec.task, arm.variant, arm.cell, knobs)
            seconds += training_seconds(spec, probe_config(config, HORIZON_PROBE_STEPS)) * len(spec.seeds)
        by_value[value] = seconds
    return by_value
