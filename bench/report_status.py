"""What a report says about itself before any number: whether it comes from a smoke profile (which
checks the machinery, not the science) and, for a sweep still running or interrupted, the state of
every planned study (done / running / not started) against the planned totals."""

from __future__ import annotations

import contextlib
import json

from bench.console import counted
from bench.results import grid_items
from bench.run_keys import Tag

SMOKE_NOTE = "checks the machinery, not the science"


def is_smoke(profile: str | None) -> bool:
    return bool(profile) and str(profile).split()[-1].startswith("smoke")


def smoke_banner(profile: str, budget: str = "") -> list[str]:
    return [
        f"> **Smoke run (profile `{profile}`): this report {SMOKE_NOTE}.** "
        f"{budget + ' is' if budget else 'Its budget is'} far too small for any conclusion about the models, "
        "so it carries no findings, no importances and no verdicts: it shows that sweeps, tracking and "
        "reports work end to end.",
        "",
    ]


def study_label(variant: str, cell: str, grid: str = "") -> str:
    """As the sweep names its studies (StudyKey.label): variant/cell/key=value/..."""

    return "/".join([variant, cell, *grid_items(grid)])


def planned_labels(studies) -> list[str]:
    """Every study the sweep planned, as its latest sitting recorded it on the parent runs (a sweep
    resumed with a smaller grid plans fewer studies than its first sitting did); without that record
    (runs made before it existed), the studies that have runs."""
    parents = [s.parent for s in studies if s.parent is not None and Tag.SWEEP_STUDIES in s.parent.tags]
    if parents:
        # when the plan was recorded; for parents from before that tag, when the parent was created
        latest = max(parents, key=lambda r: (float(r.tags.get(Tag.SWEEP_STUDIES_AT) or 0), r.start_time or 0))
        with contextlib.suppress(ValueError):
            return list(json.loads(latest.tags[Tag.SWEEP_STUDIES]))
    return [study_label(s.variant, s.cell, s.grid) for s in studies]


def study_state(study, planned_trials: int, planned_seeds: int) -> tuple[str, str]:
    """(done | running, what is finished) for a study that has runs."""
    counts = study.state_counts()
    finished = counts["complete"] + counts["pruned"]
    seeds = len(study.finished_finals) + len(study.diverged_finals)
    diverged = f" ({len(study.diverged_finals)} diverged)" if study.diverged_finals else ""
    detail = f"{finished}/{planned_trials} trials, {seeds}/{planned_seeds} final seeds{diverged}"
    return ("done" if finished >= planned_trials and seeds >= planned_seeds else "running"), detail


def sweep_status(studies) -> tuple[list[str], bool]:
    """The Status section and whether the sweep is incomplete. Lists every planned study with its
    state when anything is missing; one line when everything is done."""
    plan = planned_labels(studies)
    by_label = {study_label(s.variant, s.cell, s.grid): s for s in studies}
    trials = max((s.planned("trials", 0) for s in studies), default=0)
    seeds = max((s.planned("final_seeds", 0) for s in studies), default=0)
    rows, finished_runs, done_studies = [], 0, 0
    for label in plan + [label for label in by_label if label not in plan]:
        study = by_label.get(label)
        if study is None:
            rows.append(f"| {label} | not started | 0/{trials} trials, 0/{seeds} final seeds |")
            continue
        state, detail = study_state(study, study.planned("trials", trials), study.planned("final_seeds", seeds))
        counts = study.state_counts()
        finished_runs += min(counts["complete"] + counts["pruned"], study.planned("trials", trials)) + min(
            len(study.finished_finals) + len(study.diverged_finals), study.planned("final_seeds", seeds)
        )
        done_studies += state == "done"
        rows.append(f"| {label} | {state} | {detail} |")
    total_studies = len(rows)
    planned_runs = total_studies * (trials + seeds)
    if done_studies == total_studies:
        return [
            "## Status",
            "",
            f"Complete: {'the 1 planned study' if total_studies == 1 else f'all {total_studies} planned studies'} "
            f"finished {'its' if total_studies == 1 else 'their'} {counted(trials, 'trial')} and "
            f"{counted(seeds, 'final seed')} ({counted(planned_runs, 'run')}).",
            "",
        ], False
    share = f" ({100 * finished_runs / planned_runs:.0f}%)" if planned_runs else ""
    return [
        "## Status",
        "",
        f"**Incomplete**: {done_studies} of {total_studies} planned studies done, {finished_runs} of "
        f"{planned_runs} planned runs finished{share} ({trials} trials + {seeds} final seeds per study). "
        "A sweep still running, or interrupted: run the same `make sweep` command to resume. "
        "Tables and findings below cover the finished runs only.",
        "",
        "| study | state | finished |",
        "|---|---|---|",
        *rows,
        "",
    ], True
