"""Run a sweep: one Optuna study per (variant, cell) with the same budget and ranges, then the best
configuration of each retrained once per final seed and tested once. Every trial is an MLflow run.

Resumable and distributable: all state lives in the Optuna storage, so the same command on N
terminals or machines splits the work. A trial whose worker is gone (its pid on this host, or its
Optuna heartbeat elsewhere) is failed and its retry queued; whichever worker comes next runs it, and
no worker returns while a study still has work nobody is doing.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import math
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator

import optuna
import sqlalchemy
from filelock import FileLock
from optuna.trial import TrialState

from bench import console, interrupts, stores, tracking
from bench.config import resolve_config
from bench.errors import UserError, failure_reason
from bench.file_schema import Distribution
from bench.registry import get_task
from bench.results import read_run
from bench.run_keys import Tag as T
from bench.stores import safe_url
from bench.sweep_config import StudyKey, SweepSpec


@contextlib.contextmanager
def stable_in_practice():
    """Heartbeats and stale-trial retries are "experimental" in Optuna 5 (unchanged since 2.x): silence
    that label where we use them, and only there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
ACTIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
RUN_ATTRS = ("mlflow_run_id", "worker", "fail_reason", "pruned_reason", "skipped", "interrupted", "died")
# A failed trial that is not a result: stopped by a signal or a dead worker (and retried at its own point),
# or a slot another worker held. Neither a draw of the sampler's sequence nor a failure in the counts.
NOT_A_DRAW = ("interrupted", "died", "skipped")
MAX_FINAL_FAILURES = 3  # a final seed that fails this often (not by a signal or a dead worker) stops the sweep


class SlotTaken(Exception):
    """Other workers already hold every remaining trial of this study's budget."""


class RetryStaleTrial(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a dead worker's trial (queued as WAITING, same parameters), without the dead
    run's own records (its MLflow run id, owner, reasons): the retry gets its own."""

    def __call__(self, study: optuna.Study, trial) -> None:
        trial = copy.deepcopy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in RUN_ATTRS}
        super().__call__(study, trial)


def make_storage(url: str | None = None) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats, so a trial whose worker died is failed and retried.
    (Optuna's journal file storage has no heartbeat; SQLite, with a lock timeout, serves one machine.)"""
    url = stores.encoded_url(stores.optuna_storage_url(url))
    interval = int(os.environ.get("RNNBENCH_HEARTBEAT_INTERVAL", "10"))
    grace = int(os.environ.get("RNNBENCH_HEARTBEAT_GRACE", str(3 * interval)))
    if url.startswith("sqlite:///"):
        stores.check_sqlite_path(url.removeprefix("sqlite:///"), "Optuna storage")
        engine_kwargs = {"connect_args": {"timeout": 120}}
    elif url.startswith("postgresql"):  # an unreachable server fails in seconds, not minutes
        engine_kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 5}}
    else:
        engine_kwargs = {"pool_pre_ping": True}

    def open_storage():
        with stable_in_practice():
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=RetryStaleTrial(max_retry=3),
            )

    for attempt in range(5):
        try:
            with tracking.sqlite_creation_lock(url):  # workers started together race to create the schema
                return open_storage()
        except Exception as error:
            # On a server, a concurrent schema creation makes the loser fail once; it then finds it.
            if any(word in str(error) for word in ("already exists", "UNIQUE", "duplicate")) and attempt < 4:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise UserError(
                f"cannot open the Optuna storage {safe_url(url)}: {stores.connection_error(error)}"
            ) from None


def study_name(spec: SweepSpec, key: StudyKey, stage: str = "search") -> str:
    prefix = spec.study_prefix or f"{spec.task}:{spec.profile}"
    return f"{prefix}:{key.variant}:{key.cell}{key.suffix}" + (":final" if stage == "final" else "")


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    options = spec.pruner.options
    if spec.pruner.type == "median":
        return optuna.pruners.MedianPruner(**{"n_startup_trials": 3, "n_warmup_steps": 2, **options})
    if spec.pruner.type == "hyperband":  # resources are validations' steps (epochs without a step budget)
        return optuna.pruners.HyperbandPruner(
            **{"min_resource": 2, "max_resource": spec.max_steps or spec.max_epochs, **options}
        )
    return optuna.pruners.NopPruner()


def sampler_seed_for(spec: SweepSpec, name: str, draw: int) -> int:
    """The seed of one trial's draw: from the sweep's sampler_seed and the study's own name, so studies
    draw different points; and from the trial's place in the study's sequence of draws (`draw_index`),
    so one worker is reproducible and resumes the same sequence, even after an interrupted trial, while
    workers asking at the same instant (two places) still draw differently."""
    text = f"{spec.sampler_seed}:{name}:{draw}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


class TrialSeededTPE(optuna.samplers.TPESampler):
    """TPE with `startup_trials` random start-up trials (Optuna's default 10 would leave small
    budgets all random), its random state re-seeded for each trial from `sampler_seed_for`.

    Seeding once per sampler is not enough: every worker loads the study with a fresh sampler, so two
    workers that load it together would draw the same point. Optuna has no public per-trial seed; the
    two generators re-seeded here are TPE's own and its start-up RandomSampler's (Optuna 5.0)."""

    def __init__(self, spec: SweepSpec, name: str) -> None:
        super().__init__(seed=sampler_seed_for(spec, name, 0), n_startup_trials=spec.startup_trials)
        self.spec, self.name = spec, name

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seed = sampler_seed_for(self.spec, self.name, draw_index(study.get_trials(deepcopy=False), trial.number))
        self._rng.rng.seed(seed)
        self._random_sampler._rng.rng.seed(seed)
        super().before_trial(study, trial)


def not_a_draw(trial, retried: set[int]) -> bool:
    """A failed trial that was interrupted, lost its worker, or found its slot taken (NOT_A_DRAW), or
    that Optuna retried (a heartbeat-stale trial of another host)."""
    return trial.state == TrialState.FAIL and (
        trial.number in retried or any(k in trial.user_attrs for k in NOT_A_DRAW)
    )


def draw_index(trials: list, number: int) -> int:
    """Trial `number`'s place in its study's sequence of draws: the lower-numbered trials, less those
    that are not a draw. An interrupted trial's retry (queued at its own parameters) takes its place, so
    the trials after it draw what they would have drawn had nothing been interrupted; without failures
    the place is the trial's number."""
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    return sum(1 for t in trials if t.number < number and not not_a_draw(t, retried))


def load(spec: SweepSpec, storage, name: str) -> optuna.Study:
    direction = "maximize" if get_task(spec.task).monitor_mode == "max" else "minimize"
    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction=direction,
        load_if_exists=True,
        sampler=TrialSeededTPE(spec, name),
        pruner=make_pruner(spec),
    )


def suggest(trial: optuna.Trial, space: dict[str, Distribution]) -> dict:
    values = {}
    for key, dist in space.items():
        if dist.type == "float":
            values[key] = trial.suggest_float(key, dist.low, dist.high, log=dist.log)
        elif dist.type == "int":
            values[key] = trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            values[key] = trial.suggest_categorical(key, dist.choices)
    return values


def hidden_for_parameter_count(task_name: str, variant: str, cell: str, knobs: dict, target: int) -> int:
    """The hidden size whose network has the parameter count closest to `target`, so variants are
    compared at equal size (as in the literature) rather than at equal width."""
    from bench.models import count_parameters  # (lazy: torch, only where a sweep matches parameter counts)
    from bench.results import pin_vectors  # (lazy: MLflow's client, as above)
    from bench.train import build_network  # (lazy: Lightning, as above)

    task = get_task(task_name)
    config = pin_vectors(resolve_config(task_name, variant, cell, knobs))
    data = task.load_data(config.data_settings(), config.data_seed)

    def count(hidden: int) -> int:
        return count_parameters(build_network(task, dataclasses.replace(config, hidden=hidden), data))

    low, high = 1, 4096
    while low < high:  # parameter count grows monotonically with hidden
        middle = (low + high) // 2
        if count(middle) < target:
            low = middle + 1
        else:
            high = middle
    return min((h for h in (low - 1, low) if h >= 1), key=lambda h: abs(count(h) - target))


def claim_slot(study: optuna.Study, trial: optuna.Trial, budget: int) -> None:
    """Exact budgets with many workers: a trial runs only if fewer than `budget` lower-numbered
    trials are finished, running or queued (MaxTrialsCallback overshoots by up to workers-1)."""
    ahead = sum(1 for t in study.get_trials(deepcopy=False, states=TAKEN) if t.number < trial.number)
    if ahead >= budget:
        trial.set_user_attr("skipped", "budget taken by other workers")
        raise SlotTaken(f"budget of {budget} trials already taken by other workers")


# -- the MLflow parent run of each study -----------------------------------------------------------
def parent_run(spec: SweepSpec, storage: optuna.storages.RDBStorage, study: optuna.Study, key: StudyKey) -> str:
    """The study's MLflow run, created by the first worker and adopted (reopened if an interrupt
    closed it) by every worker that works on the study."""
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    if run_id:
        check_same_store(study)
        try:
            tracking.adopt_run(run_id, plan_tags(spec))  # this sitting's plan (a grid may have shrunk)
        except Exception as error:  # noqa: BLE001 - e.g. deleted by hand, or another store
            raise UserError(
                f"study {study.study_name}: its MLflow run {run_id} cannot be opened in "
                f"{stores.safe_url(stores.tracking_uri())} ({stores.connection_error(error)}); "
                f"resume against the MLflow store the sweep began with"
            ) from None
        return run_id
    with study_lock(storage, study.study_name):  # one parent run per study, even when workers race
        if study.user_attrs.get("mlflow_parent_run_id"):
            return parent_run(spec, storage, study, key)
        return create_parent_run(spec, storage, study, key)


def plan_tags(spec: SweepSpec) -> dict[str, str]:
    """Every study this sitting plans, for the report's Status section."""
    return {
        T.SWEEP_STUDIES: json.dumps([k.label for k in spec.studies]),
        T.SWEEP_STUDIES_AT: f"{time.time():.0f}",
    }


def create_parent_run(spec: SweepSpec, storage: optuna.storages.RDBStorage, study: optuna.Study, key: StudyKey) -> str:
    run_id = tracking.open_parent_run(
        spec.experiment,
        f"{spec.experiment}/{key.label}/sweep",
        tags={
            T.TASK: spec.task,
            T.VARIANT: key.variant,
            T.CELL: key.cell,
            T.STAGE: tracking.Stage.STUDY,
            T.PROFILE: spec.profile,
            T.GRID: key.suffix.lstrip(":"),
            T.OPTUNA_STUDY: study.study_name,
            T.OPTUNA_STORAGE: safe_url(storage.url),
            T.OPTUNA_VERSION: optuna.__version__,
            T.GIT_COMMIT: stores.git_commit(),
            T.SWEEP_FILE: str(spec.path),
            **plan_tags(spec),
        },
        params={
            "trials": spec.trials,
            "max_epochs": spec.max_epochs,
            "max_steps": spec.max_steps,
            "eval_every_steps": spec.eval_every_steps,
            "patience_steps": spec.patience_steps,
            "startup_trials": spec.startup_trials,
            "pruner": spec.pruner.type,
            "pruner_warmup": spec.pruner.options.get("n_warmup_steps", ""),
            "sampler_seed": spec.sampler_seed,
            "final_seeds": spec.final_seeds,
            **spec.fixed,
            **dict(key.grid),
        },
    )
    study.set_user_attr("mlflow_store", safe_url(stores.tracking_uri()))
    study.set_user_attr("mlflow_parent_run_id", run_id)
    return run_id


# -- trials whose worker is gone ------------------------------------------------------------------
def recover_dead_trials(storage: optuna.storages.RDBStorage, study: optuna.Study) -> None:
    """Fail the trials whose worker is gone and queue their retries (Optuna's stale-trial callback);
    close their MLflow runs. Gone means: on this host, its process no longer exists (exact, no
    waiting); elsewhere, its Optuna heartbeat is older than the grace period; and a trial that died
    between Optuna's ask() and its first heartbeat (no owner recorded) once the grace period is over."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return
    with stable_in_practice():
        optuna.storages.fail_stale_trials(study)
    grace = (storage.grace_period or 2 * storage.heartbeat_interval) + storage.heartbeat_interval
    now = datetime.now()
    retry = storage.get_heartbeat_stale_trial_callback()
    for trial in running:
        owner = trial.user_attrs.get("worker")
        if owner:
            gone = tracking.process_gone(owner)
        else:
            gone = trial.datetime_start is not None and (now - trial.datetime_start).total_seconds() > grace
        if gone:
            try:
                storage.set_trial_user_attr(trial._trial_id, "died", "worker process gone")
                if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                    retry(study, storage.get_trial(trial._trial_id))
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker failed it first
    for trial in running:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and storage.get_trial(trial._trial_id).state == TrialState.FAIL:
            try:
                if read_run(run_id).status == "RUNNING":
                    owner = trial.user_attrs.get("worker") or {}
                    tracking.close_run(
                        run_id,
                        "KILLED",
                        tracking.State.INTERRUPTED,
                        f"process gone (host {owner.get('host')} pid {owner.get('pid')}); its trial is retried",
                    )
            except Exception:  # noqa: BLE001 - closed meanwhile by another worker
                pass


@dataclass
class Worker:
    """This process's share of a sweep, and the state its stages share: the trial it is running (what a
    signal fails, `fail_current_trial`), what it has said while waiting, and the progress line."""

    spec: SweepSpec
    storage: optuna.storages.RDBStorage
    progress: "Progress | None" = None
    current_trial: int | None = None  # storage id of the trial this worker is running
    current_study: optuna.Study | None = None  # ... and its study
    said: set = field(default_factory=set)

    def search(self, key: StudyKey) -> None:
        """Run this study's trials until its budget is finished or held by live workers."""
        Search(self, key).run()

    def finals(self, key: StudyKey) -> None:
        """Once the study's search is over (waiting for other workers if need be), its final seeds."""
        Finals(self, key, Search(self, key).wait_until_finished()).run()

    def fail_current_trial(self, reason: str) -> None:
        """On SIGINT/SIGTERM: the running trial is failed (not left RUNNING) and its retry queued at the
        same parameters, as Optuna retries a dead worker's trial: a resumed sweep ends with the trial
        points of one that was never interrupted."""
        if self.current_trial is None:
            return
        try:
            if self.storage.get_trial(self.current_trial).state == TrialState.RUNNING:
                self.storage.set_trial_user_attr(self.current_trial, "interrupted", reason)
                if self.storage.set_trial_state_values(self.current_trial, state=TrialState.FAIL):
                    retry = self.storage.get_heartbeat_stale_trial_callback()
                    retry(self.current_study, self.storage.get_trial(self.current_trial))
        except Exception:  # noqa: BLE001 - the next worker finds it by its pid
            pass
        self.current_trial = None

    def wait(self, message: str) -> None:
        if message not in self.said:
            self.said.add(message)
            say(message)
        if self.progress:
            self.progress.refresh()
        interrupts.sleep(float(os.environ.get("RNNBENCH_POLL_SECONDS", "2")))


class Stage:
    """What a search trial and a final seed share: the sequence one trial goes through (its owner
    recorded, trained as an MLflow run under the study's, a failure said in one line), written once
    here; what differs (knobs, names, tags, pruning, what a divergence means, what is kept) is left to
    the stage, `Search` or `Finals`."""

    stage: str  # the runs' tracking.Stage

    def __init__(self, worker: Worker, key: StudyKey) -> None:
        self.worker, self.spec, self.key = worker, worker.spec, key

    def run_one(self, study: optuna.Study, parent: str) -> None:
        """One trial of `study`; Optuna fails it on an exception, and the worker goes on."""
        study.optimize(lambda trial: self.objective(trial, study, parent), n_trials=1, catch=(Exception,))
        self.worker.current_trial = None
        if self.worker.progress:
            self.worker.progress.refresh()

    def objective(self, trial: optuna.Trial, study: optuna.Study, parent: str) -> float:
        self.worker.current_trial, self.worker.current_study = trial._trial_id, study
        trial.set_user_attr("worker", tracking.owner_tags())
        self.claim(trial, study)
        try:
            return self.train(trial, study, parent)
        except (optuna.TrialPruned, SlotTaken):
            raise
        except Exception as error:
            reason = failure_reason(error)
            trial.set_user_attr("fail_reason", reason)
            say(f"{study.study_name} trial {trial.number} failed: {reason}")
            raise

    def train(self, trial: optuna.Trial, study: optuna.Study, parent: str) -> float:
        from bench.train import DivergedError, train  # (lazy: torch, Lightning; not to plan or summarise)

        config = resolve_config(self.spec.task, self.key.variant, self.key.cell, self.knobs(trial, study))
        name, label = self.names(trial)
        progress = self.worker.progress
        try:
            result = train(
                config,
                run_name=f"{self.spec.experiment}/{self.key.label}/{name}",
                parent_run_id=parent,
                tags={**self.run_tags(study, trial), **self.tags()},
                callbacks=self.callbacks(trial),
                progress=False,
                on_progress=progress.running(f"{self.key.label} {label}") if progress else None,
                finished_on=(optuna.TrialPruned, DivergedError),  # a final seed has no pruning callback
                on_run_created=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id),
            )
        except DivergedError as error:
            return self.diverged(trial, study, error)
        except optuna.TrialPruned as error:
            trial.set_user_attr("pruned_reason", str(error))
            raise
        for attr, value in self.kept(result).items():
            trial.set_user_attr(attr, value)
        return result.best_val

    def run_tags(self, study: optuna.Study, trial: optuna.Trial) -> dict:
        """The tags a trial run and a final-seed run share: stage, Optuna study and trial, grid, profile."""
        return {
            T.STAGE: self.stage,
            T.OPTUNA_STUDY: study.study_name,
            T.OPTUNA_TRIAL: trial.number,
            T.GRID: self.key.suffix.lstrip(":"),
            T.PROFILE: self.spec.profile,
        }

    # what differs, stage by stage
    def claim(self, trial: optuna.Trial, study: optuna.Study) -> None:
        """Before training (outside the failure handling): raise SlotTaken if the trial is not to run."""

    def knobs(self, trial: optuna.Trial, study: optuna.Study) -> dict:
        """The trial's knobs, for resolve_config."""
        raise NotImplementedError

    def names(self, trial: optuna.Trial) -> tuple[str, str]:
        """The run's name after the study's label, and the trial's on the progress line."""
        raise NotImplementedError

    def tags(self) -> dict:
        return {}

    def callbacks(self, trial: optuna.Trial) -> list:
        return []

    def diverged(self, trial: optuna.Trial, study: optuna.Study, error: Exception) -> float:
        raise NotImplementedError

    def kept(self, result) -> dict:
        """The result's values stored on the trial."""
        raise NotImplementedError


class Search(Stage):
    """The search of one study: trials until its budget is finished or held by live workers."""

    stage = tracking.Stage.TRIAL

    def run(self) -> None:
        """A queued (WAITING) retry is always run, by whichever worker gets here: it never counts as taken."""
        name = study_name(self.spec, self.key)
        while True:
            interrupts.checkpoint()  # between trials
            study = load(self.spec, self.worker.storage, name)
            recover_dead_trials(self.worker.storage, study)
            trials = study.get_trials(deepcopy=False)
            active = [t for t in trials if t.state in ACTIVE]
            waiting = [t for t in trials if t.state == TrialState.WAITING]
            if len(active) >= self.spec.trials and not waiting:
                return
            failures = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("fail_reason")]
            if len(failures) >= 2 * self.spec.trials:
                raise UserError(
                    f"study {name}: {len(failures)} trials failed (last: "
                    f"{failures[-1].user_attrs['fail_reason']}); see their failure_reason in MLflow"
                )
            self.run_one(study, parent_run(self.spec, self.worker.storage, study, self.key))

    def wait_until_finished(self) -> optuna.Study:
        """The study once its search is over, for the final seeds: wait for trials still running on other
        workers, and run any slot that opens again (a dead worker's retry, a failed trial)."""
        name = study_name(self.spec, self.key)
        while True:
            interrupts.checkpoint()
            study = optuna.load_study(study_name=name, storage=self.worker.storage)
            recover_dead_trials(self.worker.storage, study)
            finished = study.get_trials(deepcopy=False, states=FINISHED)
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if len(finished) >= self.spec.trials and not running and not waiting:
                if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                    raise UserError(f"study {name}: every trial was pruned; no configuration to evaluate")
                return study
            if waiting or len(finished) + len(running) < self.spec.trials:
                self.run()
                continue
            self.worker.wait(f"{self.key.label}: waiting for trials running on other workers")

    def claim(self, trial: optuna.Trial, study: optuna.Study) -> None:
        claim_slot(study, trial, self.spec.trials)

    def knobs(self, trial: optuna.Trial, study: optuna.Study) -> dict:
        spec, key = self.spec, self.key
        knobs = {**spec.fixed, **dict(key.grid), **suggest(trial, spec.space_for(key.variant)), **spec.budget_knobs}
        if spec.match_parameters:
            knobs["hidden"] = hidden_for_parameter_count(spec.task, key.variant, key.cell, knobs, spec.match_parameters)
            trial.set_user_attr("hidden", knobs["hidden"])
        return {**knobs, "seed": spec.sampler_seed}

    def names(self, trial: optuna.Trial) -> tuple[str, str]:
        return f"trial{trial.number}", f"trial {trial.number}"

    def tags(self) -> dict:
        return {T.OPTUNA_VERSION: optuna.__version__}

    def callbacks(self, trial: optuna.Trial) -> list:
        from bench.train import pruning_callback  # Lightning: see Stage.train

        monitor = get_task(self.spec.task).monitor
        return [pruning_callback(trial, monitor, by_step=bool(self.spec.eval_every_steps))]

    def diverged(self, trial: optuna.Trial, study: optuna.Study, error: Exception) -> float:
        trial.set_user_attr("pruned_reason", str(error))
        raise optuna.TrialPruned(str(error)) from None

    def kept(self, result) -> dict:
        # the convergence values: the sweep's best must not be budget-limited noise
        return {"param_count": result.param_count, **result.convergence}


class Finals(Stage):
    """The final seeds of one study: its best configuration retrained once per seed and tested."""

    stage = tracking.Stage.FINAL

    def __init__(self, worker: Worker, key: StudyKey, search: optuna.Study) -> None:
        super().__init__(worker, key)
        self.search, self.best = search, search.best_trial

    def run(self) -> None:
        """Until every seed is finished: a seed on a dead worker is redone here."""
        spec, storage = self.spec, self.worker.storage
        final = load(spec, storage, study_name(spec, self.key, "final"))
        while True:
            interrupts.checkpoint()
            parent = parent_run(spec, storage, self.search, self.key)
            recover_dead_trials(storage, final)
            trials = final.get_trials(deepcopy=False)
            done = {trial_seed(t) for t in trials if t.state == TrialState.COMPLETE}
            if all(seed in done for seed in spec.final_seeds):
                break
            for seed in spec.final_seeds:
                failures = [t for t in trials if trial_seed(t) == seed and t.user_attrs.get("fail_reason")]
                if len(failures) >= MAX_FINAL_FAILURES:
                    raise UserError(
                        f"study {final.study_name}: final seed {seed} failed {len(failures)} times "
                        f"(last: {failures[-1].user_attrs['fail_reason']})"
                    )
            held = {trial_seed(t) for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)}
            for seed in [s for s in spec.final_seeds if s not in done | held]:
                final.enqueue_trial({"seed": seed}, user_attrs={"best_trial": self.best.number})
            if final.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                self.run_one(final, parent)
            else:
                self.worker.wait(f"{self.key.label}: waiting for final seeds running on other workers")
        tracking.finish_parent_run(parent)

    def claim(self, trial: optuna.Trial, study: optuna.Study) -> None:
        """A seed already finished, or held by an earlier trial, is not trained twice."""
        seed = trial.suggest_categorical("seed", self.spec.final_seeds)
        for other in study.get_trials(deepcopy=False):
            if (
                other.number != trial.number
                and trial_seed(other) == seed
                and (other.state == TrialState.COMPLETE or (other.state in TAKEN and other.number < trial.number))
            ):
                trial.set_user_attr("skipped", f"duplicate of trial {other.number}")
                raise SlotTaken(f"seed {seed} is already evaluated by trial {other.number}")

    def knobs(self, trial: optuna.Trial, study: optuna.Study) -> dict:
        seed = trial.params["seed"]
        knobs = {**self.spec.fixed, **dict(self.key.grid), **self.best.params, **self.spec.budget_knobs, "seed": seed}
        if "hidden" in self.best.user_attrs:
            knobs["hidden"] = self.best.user_attrs["hidden"]
        return knobs

    def names(self, trial: optuna.Trial) -> tuple[str, str]:
        return f"final-seed{trial.params['seed']}", f"final seed {trial.params['seed']}"

    def tags(self) -> dict:
        return {T.BEST_TRIAL: self.best.number}

    def diverged(self, trial: optuna.Trial, study: optuna.Study, error: Exception) -> float:
        # A result, not a fault: the same seed would diverge again. The seed is done, its run says
        # why, and the report counts it beside the seeds that finished.
        trial.set_user_attr("diverged", str(error))
        say(f"{study.study_name} seed {trial.params['seed']} diverged: {error}")
        return -math.inf if study.direction == optuna.study.StudyDirection.MAXIMIZE else math.inf  # the worst

    def kept(self, result) -> dict:
        return {**result.test_metrics, **result.baselines}


def say(message: str) -> None:
    """Print without breaking the live progress line."""
    console.say(message)


def trial_seed(trial) -> int | None:
    """A final-seed trial's seed; a queued (WAITING) trial holds it in its fixed params."""
    return trial.params.get("seed", trial.system_attrs.get("fixed_params", {}).get("seed"))


def study_trials(storage, name: str) -> list:
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


@contextlib.contextmanager
def study_lock(storage: optuna.storages.RDBStorage, name: str) -> Iterator[None]:
    """A lock shared by every worker of a study: a file lock next to an SQLite storage (one machine),
    an advisory lock on a PostgreSQL server (many machines). Either is released if its holder dies."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    url = storage.url
    if url.startswith("sqlite:///"):
        with FileLock(f"{url.removeprefix('sqlite:///')}.{key & 0xFFFFFFFF:08x}.lock", timeout=300):
            yield
    elif url.startswith("postgresql"):
        with storage.engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    else:
        yield


def check_same_store(study: optuna.Study) -> None:
    """A sweep resumed against another MLflow store than it began with would lose its runs."""
    began = study.user_attrs.get("mlflow_store")
    now = safe_url(stores.tracking_uri())
    if began and began != now:
        raise UserError(
            f"study {study.study_name} began with the MLflow store {began}, but MLFLOW_TRACKING_URI "
            f"is now {now}: resume with the store it began with, or start afresh with a new Optuna storage "
            "too (export STORAGE=sqlite:///<folder>/optuna.db)"
        )


def study_counts(spec: SweepSpec, storage, key: StudyKey) -> dict:
    """Trials complete / pruned / failed, best validation value and final-seed test losses."""
    search = study_trials(storage, study_name(spec, key))
    final = study_trials(storage, study_name(spec, key, "final"))
    complete = [t for t in search if t.state == TrialState.COMPLETE]
    retried = {n for t in search for n in t.system_attrs.get("retry_history", ())}
    task = get_task(spec.task)
    pick = min if task.monitor_mode == "min" else max
    metric = task.report_metric
    baseline = tracking.Metric.baseline(metric)
    return {
        "done": len(complete),
        "pruned": sum(t.state == TrialState.PRUNED for t in search),
        # failed on its own: a trial stopped by a signal or a dead worker is retried, and neither the
        # report (which counts the runs whose state is failed) nor this count calls it a failure
        "failed": sum(t.state == TrialState.FAIL and not not_a_draw(t, retried) for t in search),
        "best": pick((t.value for t in complete), default=None),
        "finals": sum(t.state == TrialState.COMPLETE for t in final),
        "tests": [t.user_attrs.get(tracking.Metric.test(metric)) for t in final if t.state == TrialState.COMPLETE],
        "diverged": sum(t.state == TrialState.COMPLETE and "diverged" in t.user_attrs for t in final),
        "baseline": next((t.user_attrs[baseline] for t in final if baseline in t.user_attrs), None),
    }


class Progress:
    """The sweep's progress line (bench.console.Progress): runs finished out of the planned trials and
    final seeds of every study, moving within the running trial epoch by epoch; a permanent line
    each time a study finishes its search or its final seeds."""

    def __init__(self, spec: SweepSpec, storage) -> None:
        self.spec, self.storage = spec, storage
        total = len(spec.studies) * (spec.trials + len(spec.final_seeds))
        self.line = console.Progress(f"sweep {spec.task} [{spec.profile}]", total, "runs")
        self.announced: set[tuple[StudyKey, str]] | None = None
        console.activate(self.line)
        self.refresh()

    def running(self, label: str):
        """An on_progress callback for the run `label` of this process."""
        return lambda fraction, text: self.line.set_current(f"{label} {text}", fraction)

    def refresh(self) -> None:
        finished, searched, messages, first = 0, 0, [], self.announced is None
        self.announced = self.announced or set()
        running = ""
        metric = get_task(self.spec.task).report_metric
        for key in self.spec.studies:
            c = study_counts(self.spec, self.storage, key)
            trials = min(c["done"] + c["pruned"], self.spec.trials)
            finished += trials + min(c["finals"], len(self.spec.final_seeds))
            best = "-" if c["best"] is None else f"{c['best']:.3g}"
            if trials >= self.spec.trials:
                searched += 1
                if (key, "search") not in self.announced:
                    self.announced.add((key, "search"))
                    messages.append(
                        f"searched {key.label}: {c['done']} complete, {c['pruned']} pruned, "
                        f"{c['failed']} failed; best val {best}"
                    )
            elif not running:
                running = f"{key.label} {trials}/{self.spec.trials} trials, best {best}"
            tests = [t for t in c["tests"] if t is not None]
            if c["finals"] >= len(self.spec.final_seeds) and (key, "final") not in self.announced:
                self.announced.add((key, "final"))
                spread = f" ± {statistics.stdev(tests):.3g}" if len(tests) > 1 else ""
                baseline = "" if c["baseline"] is None else f" (baseline {c['baseline']:.3g})"
                diverged = f", {c['diverged']} diverged" if c["diverged"] else ""
                messages.append(
                    f"final {key.label}: test/{metric} {statistics.fmean(tests):.4g}{spread} over "
                    f"{len(tests)} seeds{diverged}{baseline}"
                    if tests
                    else f"final {key.label}: done{diverged}"
                )
        if not first:  # a resumed sweep does not repeat what earlier invocations finished
            for message in messages:
                self.line.write(message)
        details = [f"{searched}/{len(self.spec.studies)} studies searched"] + ([running] if running else [])
        self.line.set_done(finished, details)

    def close(self) -> None:
        self.refresh()
        self.line.close()
        console.activate(None)


def run_sweep(spec: SweepSpec, storage_url: str | None = None, show_progress: bool = True) -> list[dict]:
    """Do this worker's share of the sweep; return one summary row per study."""
    # Failures are reported by us in one line (and kept in MLflow with their traceback); Optuna's
    # own warnings would also print every skipped slot of a multi-worker sweep.
    optuna.logging.set_verbosity(optuna.logging.INFO if console.verbose() else optuna.logging.ERROR)
    console.quiet_libraries()  # the progress line is the only bar on screen
    storage = make_storage(storage_url)
    tracking.ensure_experiment(spec.experiment)  # once, before trials: concurrent creation can race
    for key in spec.studies:  # before any training: a resume against another MLflow store stops here
        try:
            check_same_store(optuna.load_study(study_name=study_name(spec, key), storage=storage))
        except KeyError:
            pass
    progress = Progress(spec, storage) if show_progress else None
    worker = Worker(spec, storage, progress)
    try:
        for key in spec.studies:
            worker.search(key)
        for key in spec.studies:
            worker.finals(key)
    except interrupts.Interrupted as interrupt:  # Optuna leaves the trial RUNNING: fail it, so a resume redoes it
        worker.fail_current_trial(str(interrupt))
        raise
    finally:
        if progress:
            progress.close()
    return summary_rows(spec, storage)


def summary_rows(spec: SweepSpec, storage) -> list[dict]:
    rows = []
    for key in spec.studies:
        counts = study_counts(spec, storage, key)
        tests = [t for t in counts["tests"] if t is not None]
        rows.append(
            {
                "variant": "/".join([key.variant, *(f"{k}={v}" for k, v in key.grid)]),
                "cell": key.cell,
                "complete": counts["done"],
                "pruned": counts["pruned"],
                "failed": counts["failed"],
                "best_val": counts["best"],
                "baseline": counts["baseline"],
                "test_mean": statistics.fmean(tests) if tests else None,
                "test_std": statistics.stdev(tests) if len(tests) > 1 else 0.0 if tests else None,
                "seeds": len(tests),
                "diverged": counts["diverged"],
            }
        )
    return rows


def format_summary(rows: list[dict], metric: str = tracking.Metric.test("loss")) -> str:
    width = max([15] + [len(r["variant"]) + 2 for r in rows])
    lines = [
        f"{'variant':<{width}}{'cell':<6}{'trials c/p/f':>14}{'best val':>11}{metric + ' (mean ± sd)':>26}{'baseline':>10}"
    ]
    for r in rows:
        best = "-" if r["best_val"] is None else f"{r['best_val']:.4f}"
        test = "-" if r["test_mean"] is None else f"{r['test_mean']:.4f} ± {r['test_std']:.4f} (n={r['seeds']})"
        diverged = f"  +{r['diverged']} diverged final(s)" if r.get("diverged") else ""  # last: columns stay put
        trials = f"{r['complete']}/{r['pruned']}/{r['failed']}"
        lines.append(
            f"{r['variant']:<{width}}{r['cell']:<6}{trials:>14}"
            f"{best:>11}{test:>26}{'-' if r['baseline'] is None else format(r['baseline'], '.4f'):>10}{diverged}"
        )
    return "\n".join(lines)
