"""Adding problem (Hochreiter & Schmidhuber 1997, as in Arjovsky et al. 2016).

Two channels of length T: values uniform in [0, 1], and markers with exactly two 1s, one in each
half. Target: the sum of the two marked values. Loss: MSE of the final output.
"""

from __future__ import annotations

import numpy as np

from bench.registry import TaskData, TaskSpec
from bench.synthetic import generated_splits

GENERATOR_VERSION = 1


def generate(T: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Vectorised: n sequences at once; inputs (n, T, 2) float32, targets (n,) float32."""
    values = rng.random((n, T), dtype=np.float32)
    half = T // 2
    first = rng.integers(0, max(half, 1), size=n)
    second = rng.integers(half, T, size=n) if T > 1 else first
    markers = np.zeros((n, T), dtype=np.float32)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second]).astype(np.float32)
    return {"inputs": np.stack([values, markers], axis=-1), "targets": targets}


def memoryless_baseline(settings: dict) -> float:
    """Always predicting 1 (the mean of a sum of two U(0,1)) scores the variance: 2/12 = 1/6."""
    return 1.0 / 6.0


def load_data(settings: dict, data_seed: int) -> TaskData:
    return TaskData(
        splits=generated_splits("adding", settings, data_seed, GENERATOR_VERSION, generate),
        input_size=2,
        output_size=1,
        baseline=memoryless_baseline(settings),
    )


TASK = TaskSpec(
    name="adding",
    short_lag=10,  # at T=10 the two marked values lie at most 9 steps before the answer
    description="output the sum of the two marked values among T; MSE of the final output",
    input_kind="floats",
    output_kind="per-sequence",
    loss="mse",
    settings={"T": 50, "n_train": 20000, "n_val": 2000, "n_test": 2000},
    minimums={"T": 2, "n_train": 1, "n_val": 1, "n_test": 1},
    load_data=load_data,
    family="generated",
    test_preset={"T": 4, "n_train": 8, "n_val": 4, "n_test": 4},
    training_defaults={
        "lr": 3e-3,
        "hidden": 64,
        "batch_size": 128,
        "gradient_clip": 1.0,
        "max_epochs": 12,
        "patience": 12,
        "embedding_size": 16,
    },
    references="Hochreiter & Schmidhuber 1997; Arjovsky, Shah & Bengio 2016",
)
