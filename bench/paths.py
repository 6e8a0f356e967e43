"""Where the project lives on disk: the repo root and the folders derived from it."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """Generated datasets are cached here (override with RNNBENCH_CACHE)."""
    return Path(os.environ.get("RNNBENCH_CACHE", ROOT / ".cache" / "datasets"))


def checkpoint_dir() -> Path:
    """Model checkpoints of running trainings (override with RNNBENCH_CHECKPOINTS)."""
    return Path(os.environ.get("RNNBENCH_CHECKPOINTS", ROOT / ".checkpoints"))


def artifact_root() -> Path:
    """Artifacts of runs in a local (non-server) store (override with RNNBENCH_ARTIFACTS)."""
    return Path(os.environ.get("RNNBENCH_ARTIFACTS", ROOT / "mlartifacts"))
