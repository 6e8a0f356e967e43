"""Train one configuration end to end: data -> model -> Trainer -> test from the best-val checkpoint,
every step recorded in one MLflow run."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from signal import SIGTERM

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from bench import console, interrupts, probe, stores, tracking
from bench.config import RunConfig, torch_threads
from bench.convergence import convergence
from bench.data import TaskDataModule, removed_on_error
from bench.embeddings import embedding_for_task, trained_rows, vectors_source_run
from bench.errors import RunFailed
from bench.machine import hardware
from bench.models import NetConfig, RecurrentNet, count_parameters
from bench.module import RecurrentTaskModule
from bench.paths import cache_dir, checkpoint_dir
from bench.registry import TaskData, TaskSpec, get_task
from bench.results import pin_vectors

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).

# Lightning advice that does not apply (pyproject.toml filters the same for the tests, with reasons):
# our loaders index whole batches in memory, so extra worker processes would only add overhead; and
# Lightning's own code trips a deprecation of the torch version we pin.
warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


class DivergedError(RunFailed):
    """Training produced a non-finite loss (e.g. a linear-activation RNN exploding)."""

    hint = "a smaller lr (or gradient_clip) may keep it finite"


ABSURD_LOSS = 1e6  # a validation loss this many times the memoryless baseline is divergence, not a result


class StopOnDivergence(pl.Callback):
    """Stop at the first non-finite training loss instead of wasting the remaining epochs, and at a
    validation loss that is non-finite or absurd (> 1e6 x the baseline): a finite 1.7e36 is no result."""

    def __init__(self, baseline: float | None = None) -> None:
        self.baseline = baseline

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss):
            raise DivergedError(
                f"diverged: training loss {loss.item()} at epoch {trainer.current_epoch}, step {trainer.global_step}"
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(tracking.Metric.val("loss"))
        if value is None or trainer.sanity_checking:
            return
        value = float(value)
        if not math.isfinite(value):
            raise DivergedError(f"diverged: validation loss {value} at epoch {trainer.current_epoch}")
        if self.baseline and self.baseline > 0 and value > ABSURD_LOSS * self.baseline:
            raise DivergedError(
                f"diverged: validation loss {value:.3g} at epoch {trainer.current_epoch} is more "
                f"than {ABSURD_LOSS:.0e} x the baseline {self.baseline:.3g}"
            )


class StopOnInterrupt(pl.Callback):
    """After each training, validation and test batch: stop here if SIGINT / SIGTERM arrived."""

    def on_train_batch_end(self, *args) -> None:
        interrupts.checkpoint()

    on_validation_batch_end = on_test_batch_end = on_train_batch_end


class EpochTimer(pl.Callback):
    """Wall time of each training epoch (validation excluded), logged as time/epoch_seconds."""

    def __init__(self) -> None:
        self.durations: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.durations.append(time.perf_counter() - self._start)
        pl_module.log("time/epoch_seconds", self.durations[-1], on_epoch=True)


class ReportProgress(pl.Callback):
    """Tell `report(fraction, text)` how far this run is, batch by batch: the fraction counts epochs
    and the steps within the current one, so a progress line moves during a run, not only after it."""

    def __init__(self, report) -> None:
        self.report = report

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        batches = trainer.num_training_batches or 1
        epoch = trainer.current_epoch
        if trainer.max_steps > 0:  # a step budget: the steps, not the (capping) epochs, measure progress
            self.report(
                min(trainer.global_step / trainer.max_steps, 1.0), f"step {trainer.global_step}/{trainer.max_steps}"
            )
            return
        fraction = (epoch + (batch_idx + 1) / batches) / trainer.max_epochs
        self.report(fraction, f"epoch {epoch + 1}/{trainer.max_epochs} step {batch_idx + 1}/{batches}")


class EpochLines(pl.Callback):
    """One permanent line per finished epoch (train and validation metrics, seconds): what `train`
    shows under its progress line, and all it shows when the output is not a terminal."""

    def __init__(self, progress: console.Progress, by_steps: bool = False) -> None:
        self.progress, self.by_steps = progress, by_steps

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Runs after this epoch's validation, before the module logs train/loss: read its running sum.
        metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith(tracking.Metric.val("")) and v.numel() == 1
        }
        if getattr(pl_module, "train_examples", 0):
            metrics["train/loss"] = float(pl_module.train_loss_sum) / pl_module.train_examples
        shown = " ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))
        where = (
            f"epoch {trainer.current_epoch + 1} (step {trainer.global_step:,}/{trainer.max_steps:,})"
            if self.by_steps
            else f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
        )
        self.progress.write(f"{where}: {shown} ({time.perf_counter() - self._start:.1f} s)")
        if not self.by_steps:
            self.progress.set_done(trainer.current_epoch + 1)


def apply_thread_setting() -> None:
    """TORCH_THREADS=N caps torch's CPU threads (default: one per core). On a machine busy with other
    work, fewer threads than cores avoids oversubscription, which slows every process down."""
    threads = torch_threads()
    if threads:
        torch.set_num_threads(threads)


class ValidationHistory(pl.Callback):
    """(optimizer step, monitored value) at every validation: the input of the convergence signal."""

    def __init__(self, monitor: str) -> None:
        self.monitor, self.points = monitor, []

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if not trainer.sanity_checking and value is not None:
            self.points.append((trainer.global_step, float(value)))


def pruning_callback(trial, monitor: str, by_step: bool) -> pl.Callback:
    """Optuna's Lightning pruning callback; with step budgets it reports at the optimizer step instead
    of the epoch, so warm-up and the median compare trials of any batch size at equal training."""
    from optuna import TrialPruned  # (lazy: optuna, only for sweep trials)
    from optuna_integration import PyTorchLightningPruningCallback  # (lazy: optuna)

    class StepPruning(PyTorchLightningPruningCallback):
        def on_validation_end(self, trainer, pl_module) -> None:
            value = trainer.callback_metrics.get(self.monitor)
            if trainer.sanity_checking or value is None or self.is_ddp_backend:
                return super().on_validation_end(trainer, pl_module)
            self._trial.report(value.item(), step=trainer.global_step)
            if self._trial.should_prune():
                raise TrialPruned(f"Trial was pruned at step {trainer.global_step}.")

    return (StepPruning if by_step else PyTorchLightningPruningCallback)(trial, monitor=monitor)


@dataclass
class TrainResult:
    run_id: str
    best_val: float
    test_metrics: dict[str, float]
    epochs: int
    param_count: int
    seconds_per_epoch: float
    baseline: float
    baselines: dict[str, float] = field(default_factory=dict)  # baseline/<metric> for every metric known
    convergence: dict[str, float] = field(default_factory=dict)  # bench.convergence: still improving at the end?
    seconds: float = 0.0  # wall time of the run, data loading included


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    return "bf16-mixed" if torch.cuda.is_available() else "32-true"


def packs_sequences(config: RunConfig) -> bool:
    """Text batching policy (task setting `batching`, see bench/text.py). Packing is only needed for
    exactness when a backward direction would otherwise read padding first; measured on IMDB-shaped
    lengths, bucketed unpacked batches train 3x (CPU) to 7.7x (H200) faster than padded-to-max ones,
    packed ones 0.1x (CPU) and 1.9x (H200)."""
    return config.task_settings.get("batching", "packed") == "packed" or config.bidirectional


def build_network(task: TaskSpec, config: RunConfig, data: TaskData) -> RecurrentNet:
    pretrained, coverage = None, None
    if config.embedding_vectors:
        pretrained, coverage = embedding_for_task(task, data, config)
    net_config = NetConfig.of(config, task, data, pack=packs_sequences(config))
    if pretrained is not None and not config.freeze_embedding:
        net_config = dataclasses.replace(net_config, trained_rows=trained_rows(data))
    net = RecurrentNet(net_config, pretrained)
    net.embedding_coverage = coverage  # vocabulary and per-split token coverage of the vectors, logged
    return net


def experiment_of(config: RunConfig) -> str:
    """The MLflow experiment of a run: the task's, per dataset for the user's own data."""
    return stores.experiment_name(config.task, get_task(config.task).dataset(config.task_settings))


def default_run_name(config: RunConfig) -> str:
    return f"{experiment_of(config)}/{config.variant}/{config.cell}/seed{config.seed}"


def train(
    config: RunConfig,
    *,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    tags: dict | None = None,
    callbacks: list | None = None,
    progress: bool = True,
    finished_on: tuple[type[BaseException], ...] = (),
    on_run_created=None,
    on_progress=None,
) -> TrainResult:
    """Run one training; raise on failure (the MLflow run is then closed as FAILED).

    `progress`: this run's own progress line and one line per epoch (the `train` command).
    `on_progress(fraction, text)`: how far the run is, after every batch (a sweep's progress line).
    `finished_on`: exception types (e.g. optuna.TrialPruned) that end the run normally but early.
    `on_run_created(run_id)`: called once the MLflow run exists (sweeps link trial and run).
    """
    started = time.monotonic()
    interrupts.checkpoint()  # a signal during the imports or between two runs
    task = get_task(config.task)
    config = pin_vectors(config)  # lm:<corpus> -> one pretraining run's file, found here and only here
    console.quiet_lightning()  # no banners about GPUs, tips and checkpoints unless -v
    apply_thread_setting()
    stores.system_metrics_enabled()  # a bad SYSTEM_METRICS fails before any run exists
    pl.seed_everything(config.seed, workers=True, verbose=False)
    experiment = experiment_of(config)
    datamodule = TaskDataModule(task, config.data_settings(), config.data_seed, config.batch_size, config.seed)
    datamodule.setup()  # before the run exists: bad data must not leave a run behind
    data = datamodule.data
    net = build_network(task, config, data)
    initial = probe.initial_state(net) if config.probe else None  # the untrained net, for the probe
    param_count = count_parameters(net)
    module = RecurrentTaskModule(task, net, config.lr, config.weight_decay, num_classes=data.output_size)
    run_tags = {**describe_run(task, config, datamodule, param_count), **(tags or {})}
    with tracking.tracked_run(
        experiment, run_name or default_run_name(config), run_tags, parent_run_id, finished_on=finished_on
    ) as run_id:
        if on_run_created:
            on_run_created(run_id)
        log_inputs(run_id, task, config, datamodule, net, param_count)
        line = progress_line(task, config) if progress else None
        extra = list(callbacks or []) + (line_callbacks(line, config) if line else [])
        if on_progress:
            extra.append(ReportProgress(on_progress))
        try:
            with tracking.system_metrics(run_id):
                result = _fit_and_test(task, config, module, datamodule, run_id, extra, param_count, initial)
            result.seconds = time.monotonic() - started
            return result
        finally:
            if line:
                line.close()
                console.activate(None)


def describe_run(task: TaskSpec, config: RunConfig, datamodule: TaskDataModule, param_count: int) -> dict:
    """The run's tags: what it trained, on which data and code, on what machine."""
    T, dataset = tracking.Tag, task.dataset(config.task_settings)
    return {
        T.TASK: task.name,
        T.VARIANT: config.variant,
        T.CELL: config.cell,
        T.SEED: config.seed,
        T.GIT_COMMIT: stores.git_commit(),
        T.DATASET_FINGERPRINT: datamodule.fingerprint,
        T.PARAM_COUNT: param_count,
        T.TORCH_VERSION: torch.__version__,
        T.DEVICE: torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        T.HARDWARE: hardware(),
        T.LOAD_AVERAGE: f"{os.getloadavg()[0]:.1f}",
        **datamodule.data.notes,
        **({T.DATASET: dataset} if dataset else {}),
    }


def log_inputs(run_id: str, task: TaskSpec, config: RunConfig, datamodule, net: RecurrentNet, param_count: int):
    """What the run starts from: its parameters and config file, size, baselines, data and vectors."""
    from bench.dataset_record import log_dataset  # (lazy: MLflow, ~2.5 s that a plan's probe does without)

    data, mlflow_client = datamodule.data, tracking.client()
    tracking.log_params(run_id, config.as_flat_dict())
    mlflow_client.log_dict(
        run_id, {"task": config.task, "variant": config.variant, **config.as_flat_dict()}, "config.yaml"
    )
    mlflow_client.log_metric(run_id, tracking.Metric.PARAM_COUNT, param_count)
    tracking.log_metrics(run_id, {tracking.Metric.baseline("loss"): data.baseline, **data.extra})
    log_dataset(
        run_id,
        task.dataset(config.task_settings) or task.name,
        datamodule.fingerprint,
        data.splits,
        data.source,
        {"task": task.name, "data_seed": config.data_seed, **config.task_settings},
    )
    if net.embedding_coverage is not None:
        tracking.log_metrics(run_id, net.embedding_coverage)
    if config.embedding_vectors.startswith("lm:"):  # pinned: which pretraining run they came from
        mlflow_client.set_tag(run_id, tracking.Tag.EMBEDDING_SOURCE_RUN, vectors_source_run(config.embedding_vectors))


def progress_line(task: TaskSpec, config: RunConfig) -> console.Progress:
    # A step budget is measured in steps; its epochs are only a cap (e.g. 1000), not the length.
    total, unit = (config.max_steps, "steps") if config.max_steps else (config.max_epochs, "epochs")
    line = console.Progress(f"{task.name} {config.variant}/{config.cell}", total, unit)
    console.activate(line)
    line.set_done(0)
    return line


def line_callbacks(line: console.Progress, config: RunConfig) -> list[pl.Callback]:
    """The run's own progress line: moved after every batch, one line per epoch."""
    total = line.total

    def report(fraction: float, text: str) -> None:
        if config.max_steps:
            line.set_position(fraction * total, text)
        else:
            line.set_current(text, fraction * total - int(fraction * total))

    return [EpochLines(line, by_steps=bool(config.max_steps)), ReportProgress(report)]


@dataclass
class Watchers:
    """The callbacks that watch validation: the best checkpoint, early stopping (also once solved), the
    epoch times and the validation history."""

    best: ModelCheckpoint
    early_stop: EarlyStopping
    timer: EpochTimer
    history: ValidationHistory
    solved_at: float | None

    @classmethod
    def of(cls, task: TaskSpec, config: RunConfig, baseline: float, checkpoints: Path) -> Watchers:
        # A run that reaches `solved` x the baseline loss stops there (Lightning's stopping_threshold): its
        # remaining steps would only polish a solved task. It counts as converged, not as still improving.
        solved_at = (
            config.solved * baseline
            if config.solved and task.monitor == tracking.Metric.val("loss") and baseline > 0
            else None
        )
        # stop_on=loss: overfitting shows in the validation loss first and smoothly (every example counts,
        # not only those near the decision boundary), so training stops there, while the weights kept and
        # tested are still those of the best monitored value (e.g. accuracy) seen before the stop.
        stop_on, stop_mode = (
            (tracking.Metric.val("loss"), "min") if config.stop_on == "loss" else (task.monitor, task.monitor_mode)
        )
        return cls(
            ModelCheckpoint(
                dirpath=checkpoints, filename="best", monitor=task.monitor, mode=task.monitor_mode, save_top_k=1
            ),
            EarlyStopping(
                stop_on,
                mode=stop_mode,
                patience=config.patience,
                check_finite=True,
                stopping_threshold=solved_at,
            ),
            EpochTimer(),
            ValidationHistory(task.monitor),
            solved_at,
        )


def _fit_and_test(task, config, module, datamodule, run_id, extra_callbacks, param_count, initial) -> TrainResult:
    """Fit with early stopping on validation, test once from the best checkpoint, record the outcome."""
    checkpoints = checkpoint_dir() / run_id
    data = datamodule.data
    watch = Watchers.of(task, config, data.baseline, checkpoints)
    callbacks = [StopOnDivergence(data.baseline), StopOnInterrupt(), watch.best, watch.early_stop]
    callbacks += [watch.timer, watch.history, *extra_callbacks]
    logger = MLFlowLogger(experiment_name=experiment_of(config), tracking_uri=stores.tracking_uri(), run_id=run_id)
    trainer = make_trainer(config, datamodule, callbacks, logger)
    try:
        trainer.fit(module, datamodule=datamodule)
        # Selection happened on validation only; test is evaluated once, from the best checkpoint.
        results = trainer.test(module, datamodule=datamodule, ckpt_path="best", verbose=console.verbose())[0]
        test_metrics = {k: float(v) for k, v in results.items() if k.startswith(tracking.Metric.test(""))}
        final, signal = outcome(task, trainer, watch, data, test_metrics)
        tracking.log_metrics(run_id, final)
        tracking.client().log_artifact(run_id, str(Path(watch.best.best_model_path)), "checkpoints")
        if initial is not None:  # module.net holds the best-validation weights (loaded for test)
            probe.log_probe(
                run_id,
                module.net,
                initial,
                datamodule,
                module.loss,
                f"{default_run_name(config)}: gradient probe on {probe.PROBE_ROWS} validation sequences",
            )
        return TrainResult(
            run_id=run_id,
            best_val=final[f"{task.monitor}_best"],
            test_metrics=test_metrics,
            epochs=trainer.current_epoch,
            param_count=param_count,
            seconds_per_epoch=final[tracking.Metric.SECONDS_PER_EPOCH],
            baseline=data.baseline,
            baselines={
                tracking.Metric.baseline("loss"): data.baseline,
                **{k: v for k, v in data.extra.items() if k.startswith(tracking.Metric.baseline(""))},
            },
            convergence=signal,
        )
    except SIGTERMException:  # Lightning's own check of SIGTERM came before ours (e.g. at an epoch's end)
        raise interrupts.Interrupted(SIGTERM) from None
    finally:
        shutil.rmtree(checkpoints, ignore_errors=True)


def outcome(
    task: TaskSpec, trainer: pl.Trainer, watch: Watchers, data: TaskData, test_metrics: dict
) -> tuple[dict, dict]:
    """The run's final metrics (best validation, budget used, convergence signal, test) and the signal."""
    best_val, baseline = float(watch.best.best_model_score), data.baseline
    # Gains are measured against the baseline loss (or in accuracy points), not the value itself.
    higher = task.monitor_mode == "max"
    solved = watch.solved_at is not None and best_val <= watch.solved_at
    signal = convergence(
        watch.history.points,
        higher,
        early_stopped=watch.early_stop.wait_count >= watch.early_stop.patience or solved,
        scale=1.0 if higher else baseline if baseline > 0 else None,
        baseline=tracking.Metric.baseline_for_validation(
            {tracking.Metric.baseline("loss"): baseline, **data.extra}, tracking.Metric.name_of(task.monitor)
        ),
    )
    durations = watch.timer.durations
    final = {
        f"{task.monitor}_best": best_val,
        tracking.Metric.EPOCHS_TRAINED: trainer.current_epoch,
        tracking.Metric.STEPS_TRAINED: trainer.global_step,
        **signal,
        **({tracking.Metric.SOLVED: float(solved)} if watch.solved_at is not None else {}),
        tracking.Metric.SECONDS_PER_EPOCH: sum(durations) / max(len(durations), 1),
        **test_metrics,
    }
    if tracking.Metric.test("loss") in test_metrics and baseline > 0:
        final[tracking.Metric.test("loss_over_baseline")] = test_metrics[tracking.Metric.test("loss")] / baseline
    return final, signal


def make_trainer(config: RunConfig, datamodule, callbacks: list, logger) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=config.max_epochs,
        max_steps=config.max_steps or -1,
        # A step budget validates every eval_every_steps optimizer steps, across epoch boundaries.
        val_check_interval=config.eval_every_steps or None,
        check_val_every_n_epoch=None if config.eval_every_steps else 1,
        accelerator=config.accelerator,
        devices=1,
        precision=resolve_precision(config.precision),
        gradient_clip_val=config.gradient_clip or None,
        callbacks=callbacks,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        # Step-level metrics every 50 steps, or once per epoch when an epoch is shorter.
        log_every_n_steps=max(1, min(50, len(datamodule.train_dataloader()))),
        num_sanity_val_steps=0,
    )


@dataclass
class CrossValidationResult:
    parent_run_id: str
    folds: list[TrainResult]
    summary: dict[str, tuple[float, float]]  # metric -> (mean, sd) over folds


def cross_validate(config: RunConfig, *, progress: bool = True, on_fold_end=None) -> CrossValidationResult:
    """Stratified K-fold cross-validation (task setting folds=K): one MLflow run per fold, nested under
    a parent run that holds every test metric's mean and sd over the folds (`cv/<metric>_mean|_sd`).

    `progress`: one line for the whole cross-validation (folds done, the current fold and its epoch, the
    time left), not a line per fold. `on_fold_end(fold, result)`: called as each fold ends."""
    folds = config.task_settings["folds"]
    first = dataclasses.replace(config, task_settings={**config.task_settings, "fold": 0})
    task = get_task(config.task)
    with removed_on_error(cache_dir()):  # bad data fails before any run exists, and leaves nothing behind
        task.load_data(first.data_settings(), config.data_seed)
    name = f"{experiment_of(config)}/{config.variant}/{config.cell}/seed{config.seed}/cv{folds}"
    T, dataset = tracking.Tag, task.dataset(config.task_settings)
    tags = {T.TASK: task.name, T.VARIANT: config.variant, T.CELL: config.cell, T.SEED: config.seed}
    tags |= {T.STAGE: tracking.Stage.CV, T.FOLDS: folds, T.GIT_COMMIT: stores.git_commit()}
    tags |= {T.DATASET: dataset} if dataset else {}
    line = console.Progress(f"{task.name} {config.variant}/{config.cell}", folds, "folds") if progress else None
    if line:
        console.activate(line)
        line.set_done(0)
    try:
        with tracking.tracked_run(experiment_of(config), name, tags) as parent:
            tracking.log_params(parent, config.as_flat_dict())
            results = []
            for fold in range(folds):
                fold_config = dataclasses.replace(config, task_settings={**config.task_settings, "fold": fold})

                def report(fraction: float, text: str, fold: int = fold) -> None:
                    line.set_current(f"fold {fold + 1}/{folds} {text}", fraction)

                if line:  # the new fold shows at once (redraws are rate-limited; a small fold may take less)
                    report(0.0, "starting")
                    line.draw(force=True)
                results.append(
                    train(
                        fold_config,
                        run_name=f"{name}/fold{fold}",
                        parent_run_id=parent,
                        progress=False,
                        on_progress=report if line else None,
                        tags={T.STAGE: tracking.Stage.FOLD, T.FOLD: fold, T.FOLDS: folds},
                    )
                )
                if on_fold_end:
                    on_fold_end(fold, results[-1])
                if line:
                    line.set_done(fold + 1)
            if line:
                line.set_current("")  # the closing bar names no fold
            summary = fold_summary(results)
            tracking.log_metrics(
                parent,
                {f"cv/{key}_{part}": value for key, ms in summary.items() for part, value in zip(("mean", "sd"), ms)}
                | {"cv/folds": folds},
            )
    finally:
        if line:
            line.close()
            console.activate(None)
    return CrossValidationResult(parent, results, summary)


def fold_summary(results: list[TrainResult]) -> dict[str, tuple[float, float]]:
    """Every test metric and baseline: (mean, sd) over the folds."""
    summary = {}
    for key in results[0].test_metrics | results[0].baselines:
        values = [r.test_metrics.get(key, r.baselines.get(key)) for r in results]
        summary[key] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
    return summary
