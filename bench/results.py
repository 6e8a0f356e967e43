"""Read a task's sweep results back from MLflow (only from the store: works for any tracking URI,
for sweeps run elsewhere and for sweeps still running). Imports mlflow, never torch or Lightning."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from bench import tracking
from bench.errors import UserError


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
        counts = {"complete": 0, "pruned": 0, "failed": 0, "running": 0}
        for run in self.trials:
            state = run.data.tags.get("state") or ("running" if run.info.status == "RUNNING" else "failed")
            counts["failed" if state == "interrupted" else state] = counts.get(state, 0) + 1
        return counts

    @property
    def finished_finals(self) -> list:
        return [r for r in self.finals if r.data.tags.get("state") == "complete"]

    def planned(self, key: str, default: int) -> int:
        if self.parent is None:
            return default
        value = self.parent.data.params.get(key)
        if key == "final_seeds" and value:
            return len(value.strip("[]").split(","))
        return int(value) if value else default


def read_task_runs(task: str, profile: str | None = None) -> tuple[list[StudyResults], str, list]:
    """(studies of the chosen profile, the profile, every run of the task's experiment)."""
    uri = tracking.tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        # Opening a missing SQLite store would create an empty one: report "no runs" instead.
        raise UserError(f"no runs for task {task} in {uri}; run make sweep TASK={task} first")
    try:
        client = tracking.client()
        experiment = client.get_experiment_by_name(task)
        runs = client.search_runs([experiment.experiment_id], max_results=50000) if experiment else []
    except Exception as error:
        raise UserError(f"cannot reach the MLflow store {uri}: {str(error).splitlines()[0]}") from None
    swept = [r for r in runs if r.data.tags.get("stage") in ("study", "trial", "final")]
    if not swept:
        raise UserError(f"no runs for task {task} in {uri}; run make sweep TASK={task} first")
    parents = sorted((r for r in swept if r.data.tags.get("stage") == "study"), key=lambda r: r.info.start_time)
    profiles = {r.data.tags.get("profile") for r in swept}
    if profile is None:
        profile = parents[-1].data.tags.get("profile") if parents else sorted(profiles)[0]
    if profile not in profiles:
        raise UserError(f"no runs of profile {profile!r} for task {task} in {uri}; profiles there: "
                        f"{', '.join(sorted(p for p in profiles if p))}")
    studies: dict[str, StudyResults] = {}
    for run in sorted(swept, key=lambda r: r.info.start_time):
        tags = run.data.tags
        if tags.get("profile") != profile:
            continue
        name = tags.get("optuna_study", "").removesuffix(":final")
        study = studies.setdefault(name, StudyResults(name, tags["variant"], tags["cell"], profile,
                                                      tags.get("grid", "")))
        if tags["stage"] == "study":
            study.parent = run
        elif tags["stage"] == "trial":
            study.trials.append(run)
        else:
            study.finals.append(run)
    ordered = sorted(studies.values(), key=lambda s: (grid_order(s.grid), VARIANT_ORDER.get(s.variant, 9),
                                                      CELL_ORDER.get(s.cell, 9)))
    return ordered, profile, runs


def grid_items(grid: str) -> list[str]:
    """"train_subset=500:embedding_vectors=lm:imdb" -> ["train_subset=500", "embedding_vectors=lm:imdb"]:
    items are joined by ":", and a ":" inside a value (lm:<corpus>) is not followed by `name=`."""
    return [part for part in re.split(r":(?=[A-Za-z_][A-Za-z0-9_]*=)", grid) if part]


def grid_parts(grid: str) -> dict[str, str]:
    """"train_subset=500:embedding_vectors=glove" -> {"train_subset": "500", "embedding_vectors": "glove"}."""
    return dict(part.partition("=")[::2] for part in grid_items(grid))


def counterpart(study: StudyResults, studies: list[StudyResults], variant: str, cell: str) -> StudyResults | None:
    """The study of `variant` x `cell` at the same grid point, ignoring knobs of `study`'s own variant
    grid (a simple study has no embedding source to match)."""
    ours = grid_parts(study.grid).items()
    matches = [s for s in studies if s.variant == variant and s.cell == cell and s is not study
               and grid_parts(s.grid).items() <= ours]
    return max(matches, key=lambda s: len(grid_parts(s.grid)), default=None)


VARIANT_ORDER = {"simple": 0, "stacked": 1, "bidirectional": 2, "embedding-pretrained": 3}
CELL_ORDER = {"rnn": 0, "lstm": 1, "gru": 2}


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


def metric_history(run_id: str, key: str) -> list[float]:
    """Per-epoch values of one metric, in step order."""
    history = tracking.client().get_metric_history(run_id, key)
    return [m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))]
