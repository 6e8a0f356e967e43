"""First token: a task where reading direction matters by construction (claim 4's experiment). T
tokens over 8 symbols; the class is the first token (one of 4; the same symbols also occur anywhere
after it, so no later step gives it away). A forward reader must carry it across all T steps; the
backward half of a bidirectional network reads it last."""

from __future__ import annotations

import math

import numpy as np

from bench.registry import MetricSpec, TaskData, TaskSpec
from bench.run_keys import Metric
from bench.synthetic import generated_splits

VOCAB_SIZE, CLASSES = 8, 4
GENERATOR_VERSION = 1


def generate(T: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    inputs = rng.integers(0, VOCAB_SIZE, size=(n, T), dtype=np.uint8)
    first = rng.integers(0, CLASSES, size=n).astype(np.uint8)
    inputs[:, 0] = first
    return {"inputs": inputs, "targets": first}


def load_data(settings: dict, data_seed: int) -> TaskData:
    return TaskData(
        splits=generated_splits("first-token", settings, data_seed, GENERATOR_VERSION, generate),
        input_size=VOCAB_SIZE,
        output_size=CLASSES,
        baseline=math.log(CLASSES),
        vocabulary=[str(symbol) for symbol in range(VOCAB_SIZE)],
        extra={Metric.baseline("acc"): 1 / CLASSES},
    )


TASK = TaskSpec(
    name="first-token",
    short_lag=10,  # at T=10 the first token lies 9 steps before the answer
    description="the class is the first of T tokens; direction matters: a forward reader carries it T steps",
    input_kind="tokens",
    output_kind="per-sequence",
    loss="cross_entropy",
    settings={"T": 100, "n_train": 8000, "n_val": 1000, "n_test": 2000},
    minimums={"T": 2, "n_train": 1, "n_val": 1, "n_test": 1},
    load_data=load_data,
    family="generated",
    test_preset={"T": 6, "n_train": 8, "n_val": 4, "n_test": 4},
    metrics=(MetricSpec("acc", "accuracy"),),
    training_defaults={
        "lr": 3e-3,
        "hidden": 64,
        "batch_size": 64,
        "gradient_clip": 1.0,
        "max_epochs": 20,
        "patience": 10,
        "embedding_size": 16,
    },
    references="designed for this suite (claim 4): the class is set by the first tokens of a long sequence",
)
