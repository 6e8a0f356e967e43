"""Copy memory (Arjovsky, Shah & Bengio 2016; Bai et al. 2018): recall 10 symbols after a gap of T.

Input (length T+20): 10 symbols from 1..8, T-1 blanks (0), the delimiter 9, 10 blanks.
Target: T+10 blanks, then the 10 symbols in order. Loss: cross-entropy over all T+20 steps.
"""

from __future__ import annotations

import math

import numpy as np

from bench.registry import MetricSpec, TaskData, TaskSpec
from bench.synthetic import generated_splits

N_SYMBOLS = 10  # how many symbols to remember
BLANK, DELIMITER = 0, 9
VOCAB_SIZE = 10
GENERATOR_VERSION = 1  # bump when the generated data changes, to invalidate caches


def generate(T: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Vectorised: n sequences at once, stored as uint8."""
    length = T + 2 * N_SYMBOLS
    symbols = rng.integers(1, 9, size=(n, N_SYMBOLS), dtype=np.uint8)
    inputs = np.zeros((n, length), dtype=np.uint8)
    inputs[:, :N_SYMBOLS] = symbols
    inputs[:, T + N_SYMBOLS - 1] = DELIMITER
    targets = np.zeros((n, length), dtype=np.uint8)
    targets[:, -N_SYMBOLS:] = symbols
    return {"inputs": inputs, "targets": targets}


def load_data(settings: dict, data_seed: int) -> TaskData:
    return TaskData(
        splits=generated_splits("copy-memory", settings, data_seed, GENERATOR_VERSION, generate),
        input_size=VOCAB_SIZE,
        output_size=VOCAB_SIZE,
        baseline=memoryless_baseline(settings),
        vocabulary=[str(i) for i in range(VOCAB_SIZE)],
    )


def memoryless_baseline(settings: dict) -> float:
    """Blanks are certain for T+10 steps; the 10 recall steps are uniform over 8 symbols."""
    return N_SYMBOLS * math.log(8) / (settings["T"] + 2 * N_SYMBOLS)


TASK = TaskSpec(
    name="copy-memory",
    description="recall 10 symbols (1..8) after a gap of T steps; CE over all T+20 steps",
    input_kind="tokens",
    output_kind="per-step",
    loss="cross_entropy",
    settings={"T": 10, "n_train": 32000, "n_val": 2000, "n_test": 2000},
    minimums={"T": 1, "n_train": 1, "n_val": 1, "n_test": 1},
    load_data=load_data,
    family="generated",
    test_preset={"T": 4, "n_train": 8, "n_val": 4, "n_test": 4},
    metrics=(MetricSpec("recall_acc", "accuracy", last_steps=N_SYMBOLS),),
    # Measured: an LSTM at T=10 leaves the baseline plateau within ~3,000 steps at lr 1e-2,
    # but stays on it at lr 1e-3; hence the higher default learning rate.
    training_defaults={
        "lr": 1e-2,
        "hidden": 64,
        "batch_size": 128,
        "gradient_clip": 1.0,
        "max_epochs": 20,
        "patience": 20,
        "embedding_size": 16,
    },
    references="Arjovsky, Shah & Bengio 2016; Bai, Kolter & Koltun 2018",
)
