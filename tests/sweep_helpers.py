"""Helpers for sweep tests: tiny sweep files and subprocess workers."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def write_sweep(path: Path, task: str = "adding", **overrides) -> Path:
    spec = {
        "task": task,
        "variants": ["simple"],
        "cells": ["gru"],
        "fixed": {"T": 6, "n_train": 256, "n_val": 64, "n_test": 64},
        "search_space": {
            "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
            "hidden": {"type": "categorical", "choices": [8, 16]},
        },
        "trials": 3,
        "max_epochs": 2,
        "pruner": {"type": "median"},
        "sampler_seed": 0,
        "final_seeds": 2,
        "profiles": {"test": {}},
    }
    spec.update(overrides)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def worker_env(store: Path, extra: dict | None = None) -> dict:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
        "RNNBENCH_CACHE": str(store / "datasets"),
        "RNNBENCH_CHECKPOINTS": str(store / "checkpoints"),
        "RNNBENCH_ARTIFACTS": str(store / "artifacts"),
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


def sweep_command(sweep_file: Path, storage: str, task: str = "adding") -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench",
        "sweep",
        "--task",
        task,
        "--profile",
        "test",
        "--file",
        str(sweep_file),
        "--storage",
        storage,
        "--no-progress",
    ]


def start_worker(sweep_file, storage, store, task="adding", env_extra=None) -> subprocess.Popen:
    return subprocess.Popen(
        sweep_command(sweep_file, storage, task),
        env=worker_env(store, env_extra),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
