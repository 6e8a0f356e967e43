"""Memory horizon runner (`make horizon TASK=copy-memory`).

For every length T of a grid (task setting `axis`, e.g. T), every arm (variant x cell, plus the simple
RNN's activation ablation: linear, ReLU, identity-initialised ReLU) and K seeds, one training run,
logged to the task's MLflow experiment with stage=horizon. An arm's configuration is the best one
its (variant, cell) study found in the task's sweep (`configs_from`), else the file's fixed one.
Finished runs are found in MLflow and skipped, so an interrupted horizon run resumes where it stopped.
The file is read by `horizon_spec`, the horizon rule and table live in `horizon_rule`. Torch is
imported only to train.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from bench import console, interrupts
from bench.config import resolve_config
from bench.errors import UserError
from bench.horizon_rule import run_outcome, seed_key
from bench.horizon_spec import Arm, HorizonSpec, run_knobs
from bench.results import horizon_runs, read_task_runs
from bench.run_keys import Tag
from bench.sweep_config import load_sweep

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).


# -- configurations from the sweep -------------------------------------------------------------------
def tuned_configs(spec: HorizonSpec) -> dict[tuple[str, str], tuple[dict, str]]:
    """(variant, cell) -> (the searched knobs of its study's best configuration, where from), read
    from the final-seed runs of the sweep profile `configs_from` in MLflow. Missing -> not listed.
    A best trial that was still improving when its budget ran out is budget-limited: its
    configuration is noise of the budget, so the arm keeps the file's fixed one (and says why)."""
    if not spec.configs_from:
        return {}
    try:
        studies, _, _ = read_task_runs(spec.task, spec.configs_from)
    except UserError:
        return {}
    sweeps, found = {}, {}
    for study in studies:
        finals = study.finished_finals
        if study.grid or not finals:
            continue
        # The sweep file the study ran from (its parent run names it) says which knobs were searched.
        named = Path(study.parent.tags.get(Tag.SWEEP_FILE, "")) if study.parent else None
        path = named if named and named.is_file() else None
        if path not in sweeps:
            try:
                sweeps[path] = load_sweep(spec.task, spec.configs_from, path)
            except UserError:
                sweeps[path] = None
        sweep = sweeps[path]
        if sweep is None:
            continue
        params, best = finals[0].params, finals[0].tags.get(Tag.BEST_TRIAL, "?")
        best_run = next((r for r in study.trials if r.tags.get(Tag.OPTUNA_TRIAL) == best), None)
        if best_run is not None and best_run.still_improving:
            found[(study.variant, study.cell)] = (
                {},
                f"fixed configuration: sweep {spec.configs_from} best trial "
                f"{best} was still improving at the end of its budget",
            )
            continue
        keys = list(sweep.space_for(study.variant)) + (["hidden"] if sweep.match_parameters else [])
        knobs = {k: params[k] for k in keys if k in params}
        found[(study.variant, study.cell)] = (knobs, f"sweep {spec.configs_from} best trial {best}")
    return found


# -- running -----------------------------------------------------------------------------------------
@dataclass
class Job:
    arm: Arm
    value: int
    seed: int
    knobs: dict
    source: str

    @property
    def key(self) -> tuple:
        return (self.arm.label, self.value, self.seed)


def finished_keys(spec: HorizonSpec) -> set[tuple]:
    """(arm, value, seed) of this spec's horizon runs that ended with a result (complete, or diverged)."""
    return {
        seed_key(r)
        for r in horizon_runs(spec.task, spec.profile, spec.fingerprint, spec.stage)
        if run_outcome(r) in ("complete", "diverged")
    }


def resolve_configs(spec: HorizonSpec) -> HorizonSpec:
    """Fix the configurations this call trains with (once: the sweep may move on meanwhile). They are
    part of the spec's fingerprint, so runs resumed after the sweep's best changed start a fresh set
    instead of mixing two configurations in one cell."""
    if spec.tuned is None:
        spec.tuned = tuned_configs(spec)
    return spec


def plan(spec: HorizonSpec) -> list[Job]:
    tuned = resolve_configs(spec).tuned
    jobs = []
    for value in spec.values:  # shortest first: partial results already cover every arm
        for seed in spec.seeds:
            for arm in spec.arms:
                knobs, source = tuned.get((arm.variant, arm.cell), ({}, "fixed configuration"))
                jobs.append(Job(arm, value, seed, run_knobs(spec, arm, knobs, value, seed), source))
    return jobs


def run_job(spec: HorizonSpec, job: Job, threads: int | None = None, on_progress=None) -> str:
    """Train one run; returns its outcome (complete | diverged | failed)."""
    import torch  # (lazy: torch and Lightning only in the processes that train)

    from bench.train import DivergedError, train  # (lazy: Lightning)

    if threads:
        torch.set_num_threads(threads)
    config = resolve_config(spec.task, job.arm.variant, job.arm.cell, {**job.knobs, "probe": True})
    tags = spec.run_tags | {
        Tag.HORIZON_PROFILE: spec.profile,
        Tag.HORIZON_SPEC: spec.fingerprint,
        Tag.ARM: job.arm.label,
        Tag.ABLATION: job.arm.ablation,
        Tag.HORIZON_AXIS: spec.axis,
        Tag.HORIZON_VALUE: job.value,
        Tag.HORIZON_MARGIN: spec.margin,
        Tag.CONFIG_SOURCE: job.source,
    }
    try:
        train(  # stops at a signal (interrupts.Interrupted), before its run begins too
            config,
            run_name=f"{spec.task}/{spec.stage}/{job.arm.label}/{spec.axis}={job.value}/seed{job.seed}",
            tags=tags,
            progress=False,
            finished_on=(DivergedError,),
            on_progress=on_progress,
        )
    except DivergedError:
        return "diverged"
    except UserError:
        raise
    except Exception:  # recorded in MLflow (FAILED, with its traceback); the grid goes on
        return "failed"
    return "complete"


def run_horizon(spec: HorizonSpec, jobs: int | None = None, show_progress: bool = True) -> dict[str, int]:
    console.quiet_libraries()  # this line is the only bar on screen
    resolve_configs(spec)  # before the fingerprint is read
    done, planned = finished_keys(spec), plan(spec)
    pending = [job for job in planned if job.key not in done]
    jobs = min(jobs or spec.jobs, max(len(pending), 1))
    counts = {"complete": 0, "diverged": 0, "failed": 0, "skipped": len(planned) - len(pending)}
    line = console.Progress(f"horizon {spec.task} [{spec.profile}]", len(pending), "runs") if show_progress else None
    console.activate(line)
    finished = 0

    def finish(outcome: str) -> None:
        nonlocal finished
        counts[outcome] += 1
        finished += 1
        if line:
            line.set_done(finished, [", ".join(f"{v} {k}" for k, v in counts.items() if v)])

    if line:
        line.set_done(0)
    try:
        if jobs == 1:
            for job in pending:
                label = f"{job.arm.label} {spec.axis}={job.value} seed {job.seed}"
                finish(
                    run_job(
                        spec,
                        job,
                        on_progress=(lambda fraction, text, label=label: line.set_current(f"{label} {text}", fraction))
                        if line
                        else None,
                    )
                )
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            context = multiprocessing.get_context("spawn")  # not fork: the parent holds database connections
            stop = interrupts.pool_flag(context)  # the pool processes stop at this process's signals too
            pool = ProcessPoolExecutor(
                max_workers=jobs, mp_context=context, initializer=interrupts.install_in_pool_worker, initargs=(stop,)
            )
            try:
                running = {pool.submit(run_job, spec, job, threads) for job in pending}
                if line:
                    line.start_timing()  # the workers report finished runs only: the pace counts from here
                while running:
                    done, running = wait(running, timeout=0.1, return_when=FIRST_COMPLETED)
                    for future in done:
                        finish(future.result())
                    interrupts.checkpoint()
            except BaseException:
                stop_pool(pool, stop)
                raise
            pool.shutdown()
    finally:
        if line:
            line.close()
        console.activate(None)
    return counts


STOP_WAIT = 60  # seconds a signalled pool process gets to close its run before it is killed


def stop_pool(pool: ProcessPoolExecutor, stop) -> None:
    """Interrupted (or failed): drop the queued jobs and stop the running ones at their next batch (as
    SIGTERM would, on a failure), so each closes its own MLflow run as KILLED, then wait for them."""
    stop.value = stop.value or signal.SIGTERM
    processes = list((pool._processes or {}).values())  # noqa: SLF001 - the executor has no public handle
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=STOP_WAIT)
        if process.is_alive():  # not closed in time: end it (the next command closes its run as KILLED)
            process.kill()
            process.join()
