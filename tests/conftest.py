"""Test isolation: no hub access, and every test writes to its own temporary store and caches."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when `datasets` is imported: set first
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_store(tmp_path_factory, monkeypatch):
    """A session-wide MLflow store (creating a sqlite store costs ~1 s) and dataset cache;
    tests find their own runs by id or by a unique experiment/tag."""
    base = tmp_path_factory.getbasetemp() / "store"
    base.mkdir(exist_ok=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{base / 'mlflow.db'}")
    monkeypatch.setenv("RNNBENCH_CACHE", str(base / "datasets"))
    monkeypatch.setenv("RNNBENCH_CHECKPOINTS", str(base / "checkpoints"))
    monkeypatch.setenv("RNNBENCH_ARTIFACTS", str(base / "artifacts"))
    return base
