"""`make sweep ... DRY_RUN=1` (`python -m bench sweep --plan`): what a sweep would run and roughly how
long, from a short timing probe on this machine. Starts nothing: no Optuna study, no MLflow run."""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass

from bench import console
from bench.config import resolve_config
from bench.file_schema import Distribution, Pruner
from bench.horizon_spec import run_knobs
from bench.registry import get_task
from bench.sweep_config import StudyKey, SweepSpec

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).

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


def study_config(spec: SweepSpec, key: StudyKey, **extra):
    knobs = {
        **spec.fixed,
        **dict(key.grid),
        **{k: middle(d) for k, d in spec.space_for(key.variant).items()},
        "max_epochs": spec.max_epochs,
        **extra,
    }
    if spec.match_parameters:
        from bench.sweep import hidden_for_parameter_count  # (lazy: Optuna)

        knobs["hidden"] = hidden_for_parameter_count(spec.task, key.variant, key.cell, knobs, spec.match_parameters)
    return resolve_config(spec.task, key.variant, key.cell, knobs)


def probe_overhead(spec: SweepSpec, key: StudyKey, seconds_per_epoch: float) -> float:
    """Seconds a sweep run costs besides its epochs (Optuna bookkeeping, tracking, trainer set-up,
    checkpoint, test): real one-epoch trials of the study, in a throw-away Optuna storage and MLflow
    store, minus their epoch. The second trial is timed: the first pays once-per-process costs
    (creating the stores, first-time set-up)."""
    from bench.sweep import Worker, make_storage  # (lazy: Optuna)

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
            Worker(probe.model_copy(update={"trials": 1}), storage).search(key)
            start = time.perf_counter()
            Worker(probe.model_copy(update={"trials": 2}), storage).search(key)
            wall = time.perf_counter() - start
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return max(wall - seconds_per_epoch, 0.0)


@dataclass(frozen=True)
class EpochCost:
    step_seconds: float  # one training step
    steps: int  # training steps (batches) in one epoch
    validation_seconds: float  # one forward pass over the validation split

    @property
    def seconds(self) -> float:
        """One epoch validated at its end (an epoch budget)."""
        return self.step_seconds * self.steps + self.validation_seconds


def probe_epoch(spec: SweepSpec, key: StudyKey) -> EpochCost:
    """What one epoch of this study costs, from its middle configuration (`probe_config`)."""
    from bench.results import pin_vectors  # (lazy: MLflow, only for lm: vectors)

    return probe_config(pin_vectors(study_config(spec, key)))


def probe_config(config, steps_to_time: int = PROBE_STEPS) -> EpochCost:
    """What one epoch of a run configuration costs: a few real training steps (the suite's own data,
    network and loss), scaled to an epoch of training batches plus a forward pass over validation; and
    how many steps an epoch has (a step budget's length)."""
    import torch  # (lazy: torch and Lightning only when a plan is asked for)

    from bench.data import TaskDataModule  # (lazy: imports torch and Lightning)
    from bench.module import RecurrentTaskModule  # (lazy: imports torch and Lightning)
    from bench.train import apply_thread_setting, build_network  # (lazy: imports torch and Lightning)

    apply_thread_setting()
    task = get_task(config.task)
    datamodule = TaskDataModule(task, config.data_settings(), config.data_seed, config.batch_size, config.seed)
    datamodule.setup()
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
    from bench.sweep import make_storage, study_counts  # (lazy: Optuna)

    counts = study_counts(spec, make_storage(storage_url), key)
    done = min(counts["done"] + counts["pruned"], spec.trials)
    return spec.trials - done, len(spec.final_seeds) - min(counts["finals"], len(spec.final_seeds))


def build_plan(
    spec: SweepSpec, storage_url: str, epoch_probe=probe_epoch, overhead_probe=probe_overhead
) -> list[StudyPlan]:
    """Each study with work left is timed for a few steps; the fixed cost of a run is measured once,
    on the first such study, and assumed the same for the others."""
    plans, overhead = [], None
    for key in spec.studies:
        trials, finals = remaining(spec, storage_url, key)
        seconds = 0.0
        if trials + finals:
            epoch = epoch_probe(spec, key)
            if overhead is None:
                overhead = overhead_probe(spec, key, epoch.seconds)
            seconds = overhead + training_seconds(spec, epoch)
        plans.append(StudyPlan(key, trials, finals, seconds))
    return plans


def training_seconds(spec: SweepSpec, epoch: EpochCost) -> float:
    """Seconds a run trains at most: max_epochs epochs validated at each end; or, with a step budget,
    max_steps steps (fewer if max_epochs ends it sooner) validated every eval_every_steps. The steps an
    epoch has come from the probe's own data loader, so a text task's labeled subset counts as a
    generated task's n_train does; and a small subset's many short epochs are not each validated."""
    if not spec.max_steps:
        return spec.max_epochs * epoch.seconds
    steps = min(spec.max_steps, spec.max_epochs * epoch.steps)
    return steps * epoch.step_seconds + (steps / spec.eval_every_steps) * epoch.validation_seconds


def format_plan(spec: SweepSpec, plans: list[StudyPlan], load: float | None) -> str:
    width = max(len(p.key.label) for p in plans) + 2
    lines = [
        "plan (nothing was started; the same command without DRY_RUN=1 / --plan runs it):",
        f"  {'study':<{width}}{'trials left':>12}{'finals left':>12}{'s / run (max)':>15}{'time (max)':>12}",
    ]
    for p in plans:
        lines.append(
            f"  {p.key.label:<{width}}{p.trials_left:>12}{p.finals_left:>12}"
            f"{p.seconds_per_run:>15.1f}{console.duration(p.runs_left * p.seconds_per_run):>12}"
        )
    runs = sum(p.runs_left for p in plans)
    total = sum(p.runs_left * p.seconds_per_run for p in plans)
    planned = len(spec.studies) * (spec.trials + len(spec.final_seeds))
    machine = f"load average {load:.1f}" if load is not None else "load unknown"
    lines += [
        f"  {len(plans)} studies, {runs} of {planned} runs left, estimated at most {console.duration(total)} "
        f"for one worker ({machine}, TORCH_THREADS={os.environ.get('TORCH_THREADS') or 'default'}).",
        "  The estimate times a few training steps of each study's middle configuration plus a real "
        "one-epoch trial (in throw-away stores) for the fixed cost of a run, and assumes every run goes "
        f"to its budget ({spec.describe_budget()}): pruning and early stopping usually make it shorter, a busier "
        "machine longer.",
    ]
    return "\n".join(lines)


def print_plan(spec: SweepSpec, storage_url: str) -> None:
    console.quiet_libraries()
    print("timing probe: a few training steps per study and two one-epoch trials ...", flush=True)
    plans = build_plan(spec, storage_url)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(format_plan(spec, plans, load))


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
    total = 0.0
    for value in spec.values:
        seconds = 0.0
        for arm in spec.arms:
            knobs = run_knobs(spec, arm, {}, value, spec.seeds[0])
            config = resolve_config(spec.task, arm.variant, arm.cell, knobs)
            seconds += training_seconds(spec, probe_config(config, HORIZON_PROBE_STEPS)) * len(spec.seeds)
        total += seconds
        lines.append(f"  {spec.axis}={value}: at most {console.duration(seconds)} of training for one worker")
    lines.append(
        f"estimated at most {console.duration(total)} for one worker, {console.duration(total / jobs)} with {jobs} "
        f"job{'s' if jobs > 1 else ''}, on "
        f"this machine ({os.cpu_count()} CPUs{', CUDA' if cuda_available() else ', no GPU'}; load "
        f"{os.getloadavg()[0]:.1f}); a GPU run of the same file takes a fraction of a CPU estimate"
    )
    return "\n".join(lines)


def cuda_available() -> bool:
    import torch  # (lazy: start-up)

    return torch.cuda.is_available()
