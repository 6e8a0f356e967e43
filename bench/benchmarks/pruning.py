"""Pruning efficiency: the same study (same sampler seed, same trial budget) run without and with
the sweep's pruner. Prints the training epochs and wall time the pruned study needs to reach the
unpruned study's best validation value, as ratios (goal <= 0.4).

Usage: python -m bench.benchmarks.pruning [--task adding] [--trials 20] [--pruner median]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import optuna
import yaml

from bench.cells import DEFAULT_CELL
from bench.sweep import Worker, make_storage, study_name
from bench.sweep_config import StudyKey, load_sweep

# Lazy imports: the heavy libraries and suite modules a measurement needs are imported inside the
# functions that use them, after the environment (cache, threads) is set up.


def run_study(task: str, pruner: dict, trials: int, work: Path) -> list:

    name = "none" if pruner["type"] == "none" else pruner["type"]
    spec_file = work / f"{name}.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "task": task,
                "variants": ["simple"],
                "cells": [DEFAULT_CELL],
                "fixed": {"T": 50 if task == "adding" else 10, "n_train": 4000, "n_val": 500, "n_test": 500},
                "search_space": {
                    "lr": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
                    "hidden": {"type": "categorical", "choices": [16, 32, 64]},
                    "batch_size": {"type": "categorical", "choices": [32, 64, 128]},
                },
                "trials": trials,
                "max_epochs": 10,
                "pruner": pruner,
                "sampler_seed": 0,
                "final_seeds": 1,
                "profiles": {"bench": {}},
            }
        )
    )
    spec = load_sweep(task, "bench", spec_file)
    storage = make_storage(f"sqlite:///{work / (name + '.db')}")
    Worker(spec, storage).search(StudyKey("simple", DEFAULT_CELL))
    study = optuna.load_study(study_name=study_name(spec, StudyKey("simple", DEFAULT_CELL)), storage=storage)
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def cost_to_reach(trials: list, target: float) -> tuple[int | None, float | None, int, float]:
    """(epochs, seconds) spent until a complete trial reaches `target`, and the totals."""
    epochs = seconds = 0.0
    reached = None
    for trial in trials:
        if trial.datetime_complete is None:
            continue
        epochs += len(trial.intermediate_values)
        seconds += (trial.datetime_complete - trial.datetime_start).total_seconds()
        if reached is None and trial.value is not None and trial.state.name == "COMPLETE" and trial.value <= target:
            reached = (int(epochs), seconds)
    return (reached or (None, None)) + (int(epochs), seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", default="adding")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pruner", default="median", choices=["median", "hyperband"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        os.environ["RNNBENCH_ARTIFACTS"] = str(work / "artifacts")
        unpruned = run_study(args.task, {"type": "none"}, args.trials, work)
        pruned = run_study(args.task, {"type": args.pruner}, args.trials, work)
    best = min(t.value for t in unpruned if t.value is not None)
    u_epochs, u_seconds, u_total_epochs, u_total_seconds = cost_to_reach(unpruned, best)
    p_epochs, p_seconds, p_total_epochs, p_total_seconds = cost_to_reach(pruned, best)
    p_best = min(t.value for t in pruned if t.value is not None and t.state.name == "COMPLETE")
    print(f"task {args.task}, simple LSTM, {args.trials} trials x up to 10 epochs, TPE seed 0")
    print(
        f"unpruned: best val {best:.4f}, reached after {u_epochs} epochs / {u_seconds:.0f} s; "
        f"whole study {u_total_epochs} epochs / {u_total_seconds:.0f} s"
    )
    print(
        f"{args.pruner} pruner: best val {p_best:.4f} ({sum(t.state.name == 'PRUNED' for t in pruned)} pruned); "
        f"whole study {p_total_epochs} epochs / {p_total_seconds:.0f} s"
    )
    if p_epochs is None:
        print(
            f"the pruned study never reached the unpruned best ({best:.4f}); "
            f"total-cost ratio {p_total_epochs / u_total_epochs:.2f} (epochs), "
            f"{p_total_seconds / u_total_seconds:.2f} (time)"
        )
    else:
        print(
            f"to reach the unpruned best: {p_epochs} epochs / {p_seconds:.0f} s pruned vs "
            f"{u_epochs} epochs / {u_seconds:.0f} s unpruned"
        )
        print(
            f"ratio (pruned cost to reach it / unpruned cost to reach it): epochs {p_epochs / u_epochs:.2f}, "
            f"wall time {p_seconds / u_seconds:.2f} (goal <= 0.4)"
        )
        print(
            f"ratio (pruned cost to reach it / whole unpruned study): epochs {p_epochs / u_total_epochs:.2f}, "
            f"wall time {p_seconds / u_total_seconds:.2f}"
        )


if __name__ == "__main__":
    main()
