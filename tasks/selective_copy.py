"""Selective copy: like copy memory, but the 10 symbols (from 1..8) sit at random positions among the
first T+10 steps, blanks (0) elsewhere; after the delimiter (9) the 10 symbols must be reproduced in
order of appearance. Length T+21; loss: cross-entropy over every step; recall accuracy on the last 10."""

from __future__ import annotations

import math

import numpy as np

from bench.registry import MetricSpec, TaskData, TaskSpec
from bench.synthetic import generated_splits
from tasks import copy_memory
from tasks.copy_memory import DELIMITER, N_SYMBOLS, VOCAB_SIZE  # the same alphabet as copy memory

GENERATOR_VERSION = 1


def generate(T: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Vectorised: each row's 10 positions are the 10 smallest of T+10 random keys, in order."""
    span = T + N_SYMBOLS
    positions = np.sort(np.argsort(rng.random((n, span)), axis=1)[:, :N_SYMBOLS], axis=1)
    symbols = rng.integers(1, 9, size=(n, N_SYMBOLS), dtype=np.uint8)
    inputs = np.zeros((n, span + 1 + N_SYMBOLS), dtype=np.uint8)
    np.put_along_axis(inputs, positions, symbols, axis=1)
    inputs[:, span] = DELIMITER
    targets = np.zeros_like(inputs)
    targets[:, -N_SYMBOLS:] = symbols
    return {"inputs": inputs, "targets": targets}


def memoryless_baseline(settings: dict) -> float:
    """Blanks are certain outside the recall; the 10 recall steps are uniform over 8 symbols."""
    return N_SYMBOLS * math.log(8) / (settings["T"] + 2 * N_SYMBOLS + 1)


def load_data(settings: dict, data_seed: int) -> TaskData:
    return TaskData(
        splits=generated_splits("selective-copy", settings, data_seed, GENERATOR_VERSION, generate),
        input_size=VOCAB_SIZE,
        output_size=VOCAB_SIZE,
        baseline=memoryless_baseline(settings),
        vocabulary=[str(i) for i in range(VOCAB_SIZE)],
    )


TASK = TaskSpec(
    name="selective-copy",
    description="recall 10 symbols scattered among the first T+10 steps, in order, after a delimiter",
    input_kind="tokens",
    output_kind="per-step",
    loss="cross_entropy",
    settings={"T": 10, "n_train": 32000, "n_val": 2000, "n_test": 2000},
    minimums={"T": 1, "n_train": 1, "n_val": 1, "n_test": 1},
    load_data=load_data,
    family="generated",
    test_preset={"T": 4, "n_train": 8, "n_val": 4, "n_test": 4},
    metrics=(MetricSpec("recall_acc", "accuracy", last_steps=N_SYMBOLS),),
    training_defaults=copy_memory.TASK.training_defaults,  # tuned on copy memory, its twin task
    references="Gu & Dao 2023 (selective copying); Arjovsky et al. 2016 (copy memory)",
)
