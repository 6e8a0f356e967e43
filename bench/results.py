"""The one module that reads runs back from MLflow: a task's sweep studies, its horizon runs, the
pretrained vectors of a corpus, and the values computed from runs (final-seed metrics, baselines,
best trials, probe ratios). Only from the store: works for any tracking URI, for sweeps run
elsewhere and for sweeps still running. Imports mlflow, never torch or Lightning."""

from __future__ import annotations

import csv
import dataclasses
import math
import re
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bench import stores, tracking
from bench.cells import CELL_ORDER
from bench.config import check_lm_label
from bench.embeddings import LM_PREFIX
from bench.errors import UserError
from bench.run_keys import Metric, Stage, State, Tag
from bench.variants import VARIANT_ORDER


@dataclass
class StudyResults:
    """One (variant, cell) study of a sweep: its parent run, its trials and its final-seed runs."""

    name: str
    variant: str
    cell: str
    profile: str
    grid: str = ""  # e.g. "train_subset=500": a point of the sweep's grid
    parent: object | None = None
    trials: list = field(default_factory=list)
    finals: list = field(default_factory=list)

    def state_counts(self) -> dict[str, int]:
        """Trial runs by state. An interrupted run is not a failure: the sweep retries its trial at the
        same point when resumed (the terminal's c/p/f counts the same way, `sweep.study_counts`)."""
        counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0, "interrupted": 0}
        for run in self.trials:
            state = run.tags.get(Tag.STATE) or ("running" if run.status == "RUNNING" else "failed")
            counts[state] = counts.get(state, 0) + 1
        return counts

    @property
    def finished_finals(self) -> list:
        return [r for r in self.finals if r.tags.get(Tag.STATE) == State.COMPLETE]

    @property
    def diverged_finals(self) -> list:
        """Final seeds that diverged: done (the same seed would diverge again), with no test value."""
        return [r for r in self.finals if r.tags.get(Tag.STATE) == State.PRUNED]

    def planned(self, key: str, default: int) -> int:
        if self.parent is None:
            return default
        value = self.parent.params.get(key)
        if key == "final_seeds" and value:
            return len(value.strip("[]").split(","))
        return int(value) if value else default


def store_missing() -> bool:
    """A SQLite store that does not exist (opening it would create an empty one)."""
    uri = stores.tracking_uri()
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


@dataclass
class RunRecord:
    """One run as every reader sees it, read once from MLflow: this module is the only one that touches
    MLflow's Run. Tag, param and metric keys are named in bench.run_keys (`Tag`, `Metric`)."""

    run_id: str
    name: str
    status: str  # MLflow's: RUNNING | FINISHED | FAILED | KILLED
    start_time: int | None  # ms since the epoch
    end_time: int | None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # the run's configuration, as logged
    metrics: dict[str, float] = field(default_factory=dict)
    experiment_id: str = ""

    @classmethod
    def of(cls, run) -> RunRecord:
        info, data = run.info, run.data
        return cls(
            info.run_id,
            info.run_name,
            info.status,
            info.start_time,
            info.end_time,
            data.tags,
            data.params,
            data.metrics,
            info.experiment_id,
        )

    # identity and lifecycle
    @property
    def stage(self) -> str:
        return self.tags.get(Tag.STAGE, "")  # "" for a single `make train` run

    @property
    def state(self) -> str:
        return self.tags.get(Tag.STATE, "")  # "" while open

    @property
    def variant(self) -> str:
        return self.tags.get(Tag.VARIANT, "?")

    @property
    def cell(self) -> str:
        return self.tags.get(Tag.CELL, "?")

    @property
    def complete(self) -> bool:
        return self.state == State.COMPLETE

    # the flags reports judge by, from what the run logged
    @property
    def diverged(self) -> bool:
        return self.state == State.PRUNED and self.tags.get(Tag.FAILURE_REASON, "").startswith("diverged")

    @property
    def still_improving(self) -> bool | None:
        """Still improving when its budget ran out (None: logged before the signal existed)."""
        value = self.metrics.get(Metric.STILL_IMPROVING)
        return None if value is None else bool(value)

    @property
    def flat(self) -> bool:
        """Its validation never left the memoryless baseline."""
        return self.metrics.get(Metric.LEFT_BASELINE) == Metric.NEVER_LEFT

    def history(self, key: str) -> list[tuple[int, float]]:
        """(step, value) of one metric, in step order; read when asked."""
        points = tracking.client().get_metric_history(self.run_id, key)
        return [(m.step, m.value) for m in sorted(points, key=lambda m: (m.step, m.timestamp))]


def read_run(run_id: str) -> RunRecord:
    return RunRecord.of(tracking.client().get_run(run_id))


def search_runs(experiment_name: str, query: str = "", **options) -> list[RunRecord]:
    """Runs of one experiment matching an MLflow search filter ([] when the experiment does not exist)."""
    client = tracking.client()
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    found = client.search_runs([experiment.experiment_id], query, **{"max_results": 50000, **options})
    return [RunRecord.of(run) for run in found]


class NoSweepRuns(UserError):
    """The experiment holds no sweep runs; `runs` are its finished runs (single runs, cross-validations)."""

    def __init__(self, message: str, runs: list):
        super().__init__(message)
        self.runs = runs


def dataset_experiments(task: str) -> list[str]:
    """The datasets with an experiment of their own under `task` (text-classification/<name>)."""
    if store_missing():
        return []
    stores.check_store(stores.tracking_uri())
    try:
        experiments = tracking.client().search_experiments(filter_string=f"name LIKE '{task}/%'")
    except Exception as error:
        raise stores.unreachable(error) from None
    return sorted(e.name.removeprefix(f"{task}/") for e in experiments)


def read_task_runs(
    task: str, profile: str | None = None, dataset: str | None = None
) -> tuple[list[StudyResults], str, list]:
    """(studies of the chosen profile, the profile, every run of the task's experiment, or of the
    dataset's). Runs left RUNNING by a process that is gone are closed first (a report touches the
    experiment too). Raises NoSweepRuns, holding the finished runs, when none of them belongs to a sweep."""
    uri = stores.safe_url(stores.tracking_uri())
    what = f"task {task}" + (f" dataset {dataset}" if dataset else "")
    hint = f"run make sweep TASK={task} first" + (" (or make train)" if dataset else "")
    if store_missing():
        raise UserError(f"no runs for {what} in {uri}; {hint}")
    stores.check_store(stores.tracking_uri())
    name = stores.experiment_name(task, dataset or "")
    try:
        experiment = tracking.client().get_experiment_by_name(name)
        if experiment is not None:
            tracking.close_orphan_runs(experiment.experiment_id)
        runs = search_runs(name)
    except Exception as error:
        raise stores.unreachable(error) from None
    swept = [r for r in runs if r.tags.get(Tag.STAGE) in Stage.SWEPT]
    if not swept:
        raise NoSweepRuns(f"no runs for {what} in {uri}; {hint}", [r for r in runs if r.status == "FINISHED"])
    parents = sorted((r for r in swept if r.tags.get(Tag.STAGE) == Stage.STUDY), key=lambda r: r.start_time)
    profiles = {r.tags.get(Tag.PROFILE) for r in swept}
    if profile is None:
        profile = parents[-1].tags.get(Tag.PROFILE) if parents else sorted(profiles)[0]
    if profile not in profiles:
        raise UserError(
            f"no runs of profile {profile!r} for task {task} in {uri}; profiles there: "
            f"{', '.join(sorted(p for p in profiles if p))}"
        )
    studies: dict[str, StudyResults] = {}
    for run in sorted(swept, key=lambda r: r.start_time):
        tags = run.tags
        if tags.get(Tag.PROFILE) != profile:
            continue
        name = tags.get(Tag.OPTUNA_STUDY, "").removesuffix(":final")
        study = studies.setdefault(
            name, StudyResults(name, tags[Tag.VARIANT], tags[Tag.CELL], profile, tags.get(Tag.GRID, ""))
        )
        if tags[Tag.STAGE] == Stage.STUDY:
            study.parent = run
        elif tags[Tag.STAGE] == Stage.TRIAL:
            study.trials.append(run)
        else:
            study.finals.append(run)
    ordered = sorted(
        studies.values(), key=lambda s: (grid_order(s.grid), VARIANT_ORDER.get(s.variant, 9), CELL_ORDER.get(s.cell, 9))
    )
    return ordered, profile, runs


def compute_time(runs: list) -> tuple[float, float, int]:
    """(busy wall seconds, run seconds summed, runs) of finished runs. Busy time is the union of the runs'
    start-end intervals: the wall time during which at least one of them trained, so idle time between
    sittings does not count and parallel workers do not count twice."""
    spans = sorted((r.start_time, r.end_time) for r in runs if r.start_time and r.end_time)
    busy, until = 0, None
    for start, end in spans:
        if until is None or start > until:
            busy, until = busy + end - start, end
        elif end > until:
            busy, until = busy + end - until, end
    return busy / 1000, sum(end - start for start, end in spans) / 1000, len(spans)


def grid_items(grid: str) -> list[str]:
    """ "train_subset=500:embedding_vectors=lm:imdb" -> ["train_subset=500", "embedding_vectors=lm:imdb"]:
    items are joined by ":", and a ":" inside a value (lm:<corpus>) is not followed by `name=`."""
    return [part for part in re.split(r":(?=[A-Za-z_][A-Za-z0-9_]*=)", grid) if part]


def grid_parts(grid: str) -> dict[str, str]:
    """ "train_subset=500:embedding_vectors=glove" -> {"train_subset": "500", "embedding_vectors": "glove"}."""
    return dict(part.partition("=")[::2] for part in grid_items(grid))


def counterpart(study: StudyResults, studies: list[StudyResults], variant: str, cell: str) -> StudyResults | None:
    """The study of `variant` x `cell` at the same grid point, ignoring knobs of `study`'s own variant
    grid (a simple study has no embedding source to match)."""
    ours = grid_parts(study.grid).items()
    matches = [
        s
        for s in studies
        if s.variant == variant and s.cell == cell and s is not study and grid_parts(s.grid).items() <= ours
    ]
    return max(matches, key=lambda s: len(grid_parts(s.grid)), default=None)


def grid_order(grid: str) -> tuple:
    """Sort grid points numerically where they are numbers (train_subset=500 before 2000; 0 = all, last)."""
    values = []
    for part in grid_items(grid):
        value = part.partition("=")[2]
        try:
            number = float(value)
            values.append((0, number if number else float("inf")))
        except ValueError:
            values.append((1, value))
    return tuple(values)


# -- values computed from a study's runs -------------------------------------------------------------
def final_values(study: StudyResults, key: str) -> list[float]:
    """`key` of each finished final-seed run that logged it."""
    return [r.metrics[key] for r in study.finished_finals if key in r.metrics]


def task_baseline(studies: list[StudyResults], metric: str) -> float | None:
    """The memoryless baseline of `metric` (e.g. baseline/loss, baseline/acc), as the runs logged it."""
    key = Metric.baseline(Metric.name_of(metric))
    for study in studies:
        for run in study.finals + study.trials:
            if key in run.metrics:
                return run.metrics[key]
    return None


def best_trial(study: StudyResults, monitor_best: str, mode: str):
    complete = [r for r in study.trials if r.tags.get(Tag.STATE) == State.COMPLETE and monitor_best in r.metrics]
    if not complete:
        return None
    pick = min if mode == "min" else max
    return pick(complete, key=lambda r: r.metrics[monitor_best])


def searched_keys(studies: list[StudyResults]) -> list[str]:
    """Hyperparameters that vary between the trials of some study (i.e. were searched)."""
    keys: set[str] = set()
    for study in studies:
        for key in {k for r in study.trials for k in r.params}:
            if len({r.params.get(key) for r in study.trials}) > 1 and key != "seed":
                keys.add(key)
    return sorted(keys)


def train_validation_gap(run, task) -> float | None:
    """Train minus validation metric at the validation the checkpoint was taken from (the best one).
    Train is the eval-mode score of a fixed train sample, logged with each validation (train_eval/);
    the in-epoch train-mode value (train/) mixes dropout and a moving model, so it is never used.
    None for runs without train_eval values."""
    name = task.metrics[0].name if task.metrics else "loss"
    val, train = dict(run.history(Metric.val(name))), dict(run.history(Metric.train_eval(name)))
    if not val or not train:
        return None
    pick = max if task.monitor_mode == "max" else min
    best = pick(sorted(val), key=val.__getitem__)
    return train[best] - val[best] if best in train else None


# -- runs outside sweeps: single runs and cross-validations ------------------------------------------
@dataclass
class RunGroup:
    """Finished runs outside any sweep that share variant, cell and every other knob but the seed, or
    the folds of one cross-validation (kind "cv", with its parent run)."""

    variant: str
    cell: str
    kind: str  # "runs" | "cv"
    runs: list = field(default_factory=list)
    parent: object | None = None
    settings: str = ""  # what tells this group apart from others of the same variant and cell


def group_single_runs(runs: list) -> list[RunGroup]:
    """Complete runs outside sweeps grouped by variant and cell (and by any other knob that differs
    between them, so unlike runs never share a mean); each cross-validation is one group of its folds."""
    complete = [r for r in runs if r.tags.get(Tag.STATE) == State.COMPLETE]
    singles = [r for r in complete if not r.tags.get(Tag.STAGE)]
    differing = sorted(
        k
        for k in {k for r in singles for k in r.params}
        if k not in ("seed", "variant", "cell") and len({r.params.get(k) for r in singles}) > 1
    )
    groups: dict[tuple, RunGroup] = {}
    for run in sorted(singles, key=lambda r: r.start_time):
        knobs = ", ".join(f"{k}={run.params.get(k)}" for k in differing)
        key = ("runs", run.tags.get(Tag.VARIANT, "?"), run.tags.get(Tag.CELL, "?"), knobs)
        groups.setdefault(key, RunGroup(key[1], key[2], "runs", settings=knobs)).runs.append(run)
    for parent in sorted((r for r in complete if r.tags.get(Tag.STAGE) == Stage.CV), key=lambda r: r.start_time):
        tags = parent.tags
        folds = sorted(
            (r for r in complete if r.tags.get("mlflow.parentRunId") == parent.run_id),
            key=lambda r: int(r.tags.get(Tag.FOLD, 0)),
        )
        groups[("cv", parent.run_id)] = RunGroup(
            tags.get(Tag.VARIANT, "?"),
            tags.get(Tag.CELL, "?"),
            "cv",
            folds,
            parent,
            f"{tags.get(Tag.FOLDS, '?')} folds, seed {tags.get(Tag.SEED, '?')}",
        )
    return sorted(
        groups.values(), key=lambda g: (g.kind, VARIANT_ORDER.get(g.variant, 9), CELL_ORDER.get(g.cell, 9), g.settings)
    )


# -- horizon runs ------------------------------------------------------------------------------------
def horizon_runs(
    task: str, profile: str | None = None, fingerprint: str | None = None, stage: str = Stage.HORIZON
) -> list:
    """A horizon grid's runs (stage horizon), or a claim experiment's (stage claim: the same grid)."""
    query = f"tags.{Tag.STAGE} = '{stage}'" + (f" and tags.{Tag.HORIZON_PROFILE} = '{profile}'" if profile else "")
    query += f" and tags.{Tag.HORIZON_SPEC} = '{fingerprint}'" if fingerprint else ""
    return search_runs(task, query)


def has_horizon_runs(task: str) -> bool:
    """Without creating a store that is not there, or failing on one that cannot be reached."""
    if store_missing():
        return False
    try:
        return bool(horizon_runs(task))
    except Exception:
        return False


DEFAULT_MARGIN = 0.1


@dataclass
class HorizonRuns:
    """The horizon runs of one profile and spec, with what they were made with (the rule that tabulates
    them is bench.horizon_rule.tabulate)."""

    profile: str
    runs: list
    margin: float
    axis: str
    seeds: int
    sources: dict[str, str] = field(default_factory=dict)  # arm -> where its configuration came from


def read_horizon(task, margin_from_file=None, profile: str | None = None) -> HorizonRuns | None:
    """The most recent horizon profile's runs of `task` (of `profile` when given), or None when there are
    none. The margin is the one the runs were made with (tag horizon_margin); runs from before that tag
    existed ask `margin_from_file(task name, profile)` (the horizon file), else use the default 0.1."""
    runs = horizon_runs(task.name, profile)
    if not runs:
        return None
    latest = max(runs, key=lambda r: r.start_time).tags
    profile, fingerprint = latest.get(Tag.HORIZON_PROFILE, ""), latest.get(Tag.HORIZON_SPEC)
    runs = [
        r for r in runs if r.tags.get(Tag.HORIZON_PROFILE) == profile and r.tags.get(Tag.HORIZON_SPEC) == fingerprint
    ]
    margin = latest.get(Tag.HORIZON_MARGIN)
    if margin is not None:
        margin = float(margin)
    else:
        try:
            margin = margin_from_file(task.name, profile) if margin_from_file else DEFAULT_MARGIN
        except Exception:  # the file changed or is gone: the runs still report, at the default margin
            margin = DEFAULT_MARGIN
    seeds = len({r.tags.get(Tag.SEED) for r in runs})
    sources = {r.tags[Tag.ARM]: r.tags.get(Tag.CONFIG_SOURCE, "?") for r in runs}
    return HorizonRuns(profile, runs, margin, runs[0].tags.get(Tag.HORIZON_AXIS, "T"), seeds, sources)


def probe_runs(data: HorizonRuns, arm: str, value: int) -> list:
    """The finished horizon runs of `arm` at length `value` that logged the gradient probe."""
    return [
        r
        for r in data.runs
        if r.tags.get(Tag.ARM) == arm
        and int(r.tags.get(Tag.HORIZON_VALUE, -1)) == value
        and r.tags.get(Tag.STATE) == State.COMPLETE
        and any(k.startswith(Metric.PROBE_PREFIX) for k in r.metrics)
    ]


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if math.isfinite(v))
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def probe_ratio(runs: list, column: str, which: str) -> float | None:
    """Median over runs of the probe's far / near ratio of `column` (dhT_dx, dL_dh), trained or untrained."""
    return median([r.metrics.get(f"{Metric.PROBE_PREFIX}{column}_{which}_far_over_near", math.nan) for r in runs])


def probe_curves(run_id: str) -> dict[str, list[float]]:
    """The probe's per-distance columns of one run, from its CSV artifact ({} when it has none)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = tracking.client().download_artifacts(run_id, "probe/gradient_probe.csv", tmp)
        except Exception:  # artifact missing (e.g. a run from before the probe existed)
            return {}
        with Path(path).open() as handle:
            rows = list(csv.DictReader(handle))
    return {key: [float(r[key]) for r in rows] for key in rows[0]} if rows else {}


# -- pretrained vectors ------------------------------------------------------------------------------
def pretrained_vectors_file(corpus: str, run_id: str = "") -> tuple[Path, str] | None:
    """(embeddings file, pretraining run id): of run `run_id` when given (a pinned source), else of
    the most recent finished pretraining run on `corpus`; the file is downloaded from the run's
    artifacts when the local copy is gone. None when there is no such run."""
    check_lm_label(corpus)  # it goes into an MLflow filter string: names only, no quotes
    client = tracking.client()
    query = f"tags.{Tag.STAGE} = '{Stage.PRETRAIN}' and tags.{Tag.CORPUS} = '{corpus}' and tags.{Tag.STATE} = '{State.COMPLETE}'"
    runs = search_runs("next-word", query, order_by=["start_time DESC"], max_results=50000 if run_id else 1)
    runs = [r for r in runs if not run_id or r.run_id.startswith(run_id)][:1]
    if not runs:
        return None
    run_id = runs[0].run_id
    local = Path(runs[0].tags.get(Tag.EMBEDDINGS_FILE, ""))
    if local.is_file():
        return local, run_id
    artifacts = [a.path for a in client.list_artifacts(run_id, "embeddings")]
    if not artifacts:
        raise UserError(f"pretraining run {run_id} has no embeddings artifact")
    return Path(client.download_artifacts(run_id, artifacts[0])), run_id


# -- everything a task's report shows, read once -----------------------------------------------------
@dataclass
class TaskResults:
    """A task's sweep studies of one profile and its latest horizon runs, with what reports derive
    from them. `studies` is empty for a task with horizon runs only."""

    task: object  # TaskSpec
    studies: list[StudyResults]
    profile: str | None
    horizon: object  # bench.horizon_rule.HorizonData: the horizon runs tabulated
    dataset: str | None = None  # the user's own data: one report per dataset
    groups: list[RunGroup] = field(default_factory=list)  # without a sweep: the finished runs, grouped

    @property
    def main_metric(self) -> str:
        return Metric.test(self.task.report_metric)

    @property
    def monitor_best(self) -> str:
        return f"{self.task.monitor}_best"

    @cached_property
    def baseline(self) -> float | None:
        return task_baseline(self.studies, self.main_metric)

    @property
    def finals(self) -> list:
        """Every finished final-seed run."""
        return [r for s in self.studies for r in s.finished_finals]

    @property
    def sweep_runs(self) -> list:
        """Every run of the sweep: parents, trials and final seeds."""
        return [r for s in self.studies for r in ([s.parent] if s.parent else []) + s.trials + s.finals]


# -- embedding_vectors=lm:<corpus>: resolved here, at the edge of a command, never inside data loading ---
def pretrained_lm_vectors(source: str) -> tuple[Path, str]:
    """(file, run id) of `<corpus>@<run id>` (pinned: that pretraining run, an id prefix is enough) or
    `<corpus>` (the most recent finished pretraining run on it), from MLflow (so sweeps name a source,
    not a machine-specific path). Runs record the id they used (tag embedding_source_run)."""
    corpus, _, run_id = source.partition("@")
    found = pretrained_vectors_file(corpus, run_id)
    if found is None:
        which = (
            f"pretraining run {run_id} on corpus {corpus!r}"
            if run_id
            else f"finished pretraining run on corpus {corpus!r}"
        )
        raise UserError(
            f"embedding_vectors={LM_PREFIX}{source}: no {which}; run make pretrain-embeddings CORPUS=... first"
        )
    return found


def pin_vectors(config):
    """The run configuration with embedding_vectors=lm:<corpus> pinned: `lm:<corpus>@<run id>` (logged,
    so the run says which pretraining run it used) and `vectors_file` set. Called once at the edge
    (train, the sweep's parameter matching, the plan); files and packages pass unchanged."""
    if not config.embedding_vectors.startswith(LM_PREFIX) or config.vectors_file:
        return config
    corpus = config.embedding_vectors[len(LM_PREFIX) :].partition("@")[0]
    path, run_id = pretrained_lm_vectors(config.embedding_vectors[len(LM_PREFIX) :])
    return dataclasses.replace(config, embedding_vectors=f"{LM_PREFIX}{corpus}@{run_id}", vectors_file=str(path))
