"""Multi-query associative recall (MQAR; Arora et al. 2023, "Zoology"): `pairs` key-value pairs, a gap
of blanks, then `queries` of the keys again; at each query the target is the value that followed that
key. Length T; token 0 is the blank, keys are 1..K and values K+1..2K with K = (vocab - 1) // 2 (an even
vocab leaves its last id unused). Per row the keys are distinct, the values are distinct, and the
queries are distinct keys in random order. Loss and accuracy count the query steps only (every other
target is IGNORE_INDEX).

Differences from Zoology's generator: the queries come together at the end, after blanks, rather than
spread among random tokens, so that the distance to recall grows with T (the horizon's knob) and the
last step is always a query (the gradient probe reads the last step).
"""

from __future__ import annotations

import math

import numpy as np

from bench.errors import UserError
from bench.registry import IGNORE_INDEX, MetricSpec, TaskData, TaskSpec
from bench.run_keys import Metric
from bench.synthetic import generated_splits

BLANK = 0
KNOBS = ("pairs", "vocab", "queries")  # besides T, what shapes the data
GENERATOR_VERSION = 1
SUBSET_DRAWS = 2**22  # random keys drawn at once when choosing keys and values (memory: 32 MiB)


def key_count(vocab: int) -> int:
    """K: how many keys (and values) a vocabulary of `vocab` ids holds besides the blank."""
    return (vocab - 1) // 2


def query_count(settings: dict) -> int:
    """queries=0 asks every key once (Zoology's setting)."""
    return settings["queries"] or settings["pairs"]


def random_subsets(rng: np.random.Generator, n: int, population: int, size: int) -> np.ndarray:
    """n rows of `size` distinct integers from 0..population-1, each in random order; rows are made in
    chunks so that a large vocabulary does not need n x population random keys at once."""
    rows = max(1, SUBSET_DRAWS // population)
    return np.concatenate(
        [np.argsort(rng.random((min(rows, n - start), population)), axis=1)[:, :size] for start in range(0, n, rows)]
    )


def generate(T: int, n: int, rng: np.random.Generator, pairs: int, vocab: int, queries: int) -> dict[str, np.ndarray]:
    """Vectorised: n sequences; inputs (n, T) unsigned ids, targets (n, T) signed (IGNORE_INDEX off queries)."""
    keys_total, asked = key_count(vocab), queries or pairs
    keys = 1 + random_subsets(rng, n, keys_total, pairs)
    values = 1 + keys_total + random_subsets(rng, n, keys_total, pairs)
    inputs = np.full((n, T), BLANK, dtype=np.min_scalar_type(vocab - 1))
    inputs[:, 0 : 2 * pairs : 2] = keys
    inputs[:, 1 : 2 * pairs : 2] = values
    chosen = random_subsets(rng, n, pairs, asked)  # which pairs are asked, in asking order
    inputs[:, T - asked :] = np.take_along_axis(keys, chosen, axis=1)
    targets = np.full((n, T), IGNORE_INDEX, dtype=np.int16 if vocab <= 2**15 else np.int32)
    targets[:, T - asked :] = np.take_along_axis(values, chosen, axis=1)
    return {"inputs": inputs, "targets": targets}


def memoryless_baseline(settings: dict) -> float:
    """Knowing that a step is a query but not the pairs: uniform over the K values, on query steps only."""
    return math.log(key_count(settings["vocab"]))


def chance_accuracy(settings: dict) -> float:
    """The same predictor's accuracy: 1/K. (Recalling which values came, but not whose, scores 1/pairs.)"""
    return 1 / key_count(settings["vocab"])


def check_settings(settings: dict) -> None:
    pairs, vocab, T = settings["pairs"], settings["vocab"], settings["T"]
    if pairs > key_count(vocab):
        raise UserError(
            f"pairs={pairs} needs {pairs} distinct keys, but vocab={vocab} holds {key_count(vocab)}: "
            f"set vocab>={2 * pairs + 1} or pairs<={key_count(vocab)}"
        )
    if settings["queries"] > pairs:
        raise UserError(f"queries={settings['queries']} asks more keys than pairs={pairs}: set queries<={pairs}")
    if T < 2 * pairs + query_count(settings):
        raise UserError(
            f"T={T} is too short for {pairs} pairs and {query_count(settings)} queries: "
            f"set T>={2 * pairs + query_count(settings)}"
        )


def load_data(settings: dict, data_seed: int) -> TaskData:
    return TaskData(
        splits=generated_splits("mqar", settings, data_seed, GENERATOR_VERSION, generate, KNOBS),
        input_size=settings["vocab"],
        output_size=settings["vocab"],
        baseline=memoryless_baseline(settings),
        vocabulary=[str(i) for i in range(settings["vocab"])],
        extra={Metric.baseline("recall_acc"): chance_accuracy(settings)},
    )


TASK = TaskSpec(
    name="mqar",
    description="multi-query associative recall: key-value pairs, blanks, then queried keys; recall their values",
    input_kind="tokens",
    output_kind="per-step",
    loss="cross_entropy",
    settings={"T": 16, "pairs": 2, "vocab": 16, "queries": 0, "n_train": 8000, "n_val": 1000, "n_test": 2000},
    minimums={"T": 3, "pairs": 1, "vocab": 3, "queries": 0, "n_train": 1, "n_val": 1, "n_test": 1},
    load_data=load_data,
    family="generated",
    test_preset={"T": 8, "pairs": 2, "vocab": 8, "n_train": 8, "n_val": 4, "n_test": 4},
    metrics=(MetricSpec("recall_acc", "accuracy"),),
    report_metric="recall_acc",
    # Measured (LSTM, hidden 64, lr 1e-2, batch 64): at these defaults (2 pairs, 7 keys, chance 0.14) it
    # sits at chance for ~1,700 steps, then reaches 0.83 recall by 3,750 steps (30 epochs, ~1 min of one
    # core); at T=32, 4 pairs, vocab 32 it reaches 0.26 in as many steps: 1/pairs, the level of knowing
    # which values came but not whose. Hence a small default and the high learning rate of copy memory.
    training_defaults={
        "lr": 1e-2,
        "hidden": 64,
        "batch_size": 64,
        "gradient_clip": 1.0,
        "max_epochs": 30,
        "patience": 30,
        "embedding_size": 32,
    },
    references="Arora et al. 2023 (Zoology); Ba et al. 2016 (associative recall)",
    check_settings=check_settings,
)
