"""Temporal order (Hochreiter & Schmidhuber 1997, as in Pascanu et al. 2013): sequences of length T
over 6 symbols; an A-or-B at a position in [0.1T, 0.2T) and another in [0.5T, 0.6T), distractors
(C..F) everywhere else; predict at the last step which of AA, AB, BA, BB occurred (4 classes)."""

from __future__ import annotations

import math

import numpy as np

from bench.registry import MetricSpec, TaskData, TaskSpec
from bench.run_keys import Metric
from bench.synthetic import generated_splits

A, B = 0, 1  # the relevant symbols; 2..5 are distractors
VOCAB_SIZE, CLASSES = 6, 4
GENERATOR_VERSION = 1


def windows(T: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """[0.1T, 0.2T) and [0.5T, 0.6T), each at least one step wide."""
    first = (int(0.1 * T), max(int(0.2 * T), int(0.1 * T) + 1))
    second = (int(0.5 * T), max(int(0.6 * T), int(0.5 * T) + 1))
    return first, second


def generate(T: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    (f0, f1), (s0, s1) = windows(T)
    inputs = rng.integers(2, VOCAB_SIZE, size=(n, T), dtype=np.uint8)
    first, second = rng.integers(f0, f1, size=n), rng.integers(s0, s1, size=n)
    x, y = rng.integers(0, 2, size=n), rng.integers(0, 2, size=n)  # 0 = A, 1 = B
    rows = np.arange(n)
    inputs[rows, first] = x
    inputs[rows, second] = y
    return {"inputs": inputs, "targets": (2 * x + y).astype(np.uint8)}  # AA=0, AB=1, BA=2, BB=3


def load_data(settings: dict, data_seed: int) -> TaskData:
    return TaskData(
        splits=generated_splits("temporal-order", settings, data_seed, GENERATOR_VERSION, generate),
        input_size=VOCAB_SIZE,
        output_size=CLASSES,
        baseline=math.log(CLASSES),
        vocabulary=["A", "B", "C", "D", "E", "F"],
        extra={Metric.baseline("acc"): 1 / CLASSES},
    )


TASK = TaskSpec(
    name="temporal-order",
    short_lag=10,  # at T=10 the two symbols come 5-9 steps before the answer
    description="which of AA/AB/BA/BB appeared at two far-apart windows among distractors; 4 classes",
    input_kind="tokens",
    output_kind="per-sequence",
    loss="cross_entropy",
    settings={"T": 50, "n_train": 20000, "n_val": 2000, "n_test": 2000},
    minimums={"T": 10, "n_train": 1, "n_val": 1, "n_test": 1},
    load_data=load_data,
    family="generated",
    test_preset={"T": 10, "n_train": 8, "n_val": 4, "n_test": 4},
    metrics=(MetricSpec("acc", "accuracy"),),
    training_defaults={
        "lr": 3e-3,
        "hidden": 64,
        "batch_size": 128,
        "gradient_clip": 1.0,
        "max_epochs": 15,
        "patience": 15,
        "embedding_size": 16,
    },
    references="Hochreiter & Schmidhuber 1997; Pascanu, Mikolov & Bengio 2013",
)
