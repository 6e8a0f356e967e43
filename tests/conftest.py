"""Test isolation: no hub access, and every test writes to its own temporary store and caches."""

import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read when `datasets` is imported: set first
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_store(tmp_path_factory, monkeypatch, empty_mlflow_store):
    """A session-wide MLflow store (a copy of the empty one: creating a sqlite store's tables costs
    seconds) and dataset cache; tests find their own runs by id or by a unique experiment/tag."""
    base = tmp_path_factory.getbasetemp() / "store"
    base.mkdir(exist_ok=True)
    if not (base / "mlflow.db").exists():
        shutil.copy(empty_mlflow_store, base / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{base / 'mlflow.db'}")
    monkeypatch.setenv("RNNBENCH_CACHE", str(base / "datasets"))
    monkeypatch.setenv("RNNBENCH_CHECKPOINTS", str(base / "checkpoints"))
    monkeypatch.setenv("RNNBENCH_ARTIFACTS", str(base / "artifacts"))
    return base


@pytest.fixture(scope="session")
def smoke_sweep_store(tmp_path_factory):
    """A small finished sweep (copy-memory, 2 variants x 2 cells, 2 trials, 2 final seeds) in its own
    MLflow store and Optuna storage, shared by the report and UI tests."""
    from bench.sweep import run_sweep
    from bench.sweep_config import load_sweep
    from tests.sweep_helpers import worker_env, write_sweep

    base = tmp_path_factory.mktemp("smoke-sweep")
    env = worker_env(base)
    keys = [k for k in env if k.startswith(("MLFLOW_", "RNNBENCH_"))]
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    try:
        path = write_sweep(
            base / "s.yaml",
            task="copy-memory",
            variants=["simple", "stacked"],
            cells=["rnn", "gru"],
            trials=2,
            final_seeds=2,
            fixed={"T": 2, "n_train": 128, "n_val": 32, "n_test": 32},
        )
        run_sweep(load_sweep("copy-memory", "test", path), f"sqlite:///{base / 'optuna.db'}", show_progress=False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return base


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory):
    """An MLflow SQLite store with its tables created and nothing in it, made once per session: tests
    that need a store of their own copy the file instead of migrating a new one."""
    import mlflow

    path = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path
