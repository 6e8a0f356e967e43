"""Shared machinery of generated tasks: split seeds, numpy -> `datasets.Dataset`, on-disk cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from bench import safepoints
from bench.paths import cache_dir

# Lazy imports: datasets and pyarrow are imported inside the functions that use them, so finding a
# task (`list`, `get_task`) stays fast.

SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}


def split_rng(data_seed: int, split: str, *extra: int) -> np.random.Generator:
    """Independent streams per split: the splits never share a seed, whatever data_seed is."""
    return np.random.default_rng(np.random.SeedSequence([data_seed, SPLIT_IDS[split], *extra]))


def arrays_to_dataset(columns: dict[str, np.ndarray]):
    """Wrap numpy arrays as a `datasets.Dataset` without a Python loop (fixed-size Arrow lists)."""
    import datasets  # (lazy: datasets)
    import pyarrow as pa  # (lazy: pyarrow)

    def to_arrow(array: np.ndarray) -> pa.Array:
        flat = pa.array(np.ascontiguousarray(array).reshape(-1))
        for size in reversed(array.shape[1:]):
            flat = pa.FixedSizeListArray.from_arrays(flat, size)
        return flat

    table = pa.table({name: to_arrow(array) for name, array in columns.items()})
    return datasets.Dataset(datasets.table.InMemoryTable(table))


def cached_split(task: str, params: dict, generate: Callable[[], dict[str, np.ndarray]]):
    """Load a generated split from the cache, or generate and store it (atomically, so
    concurrent sweep workers never read a half-written copy)."""
    import datasets  # (lazy: datasets)

    safepoints.checkpoint()  # between splits: generating one can take seconds
    key = hashlib.sha256(json.dumps({"task": task, **params}, sort_keys=True).encode()).hexdigest()[:16]
    target = cache_dir() / task / key
    if not (target / "dataset_info.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        try:
            arrays_to_dataset(generate()).save_to_disk(str(staging / "data"))
            try:
                os.replace(staging / "data", target)
            except OSError:  # another process finished first: its copy is identical
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return datasets.load_from_disk(str(target))


def generated_splits(
    task: str,
    settings: dict,
    data_seed: int,
    version: int,
    generate: Callable[..., dict[str, np.ndarray]],
    knobs: tuple[str, ...] = (),
) -> dict:
    """train/validation/test of a generated task with settings T, n_train, n_val, n_test, made by
    generate(T, n, rng, **knobs): `knobs` names the task's other settings that shape its data (e.g.
    MQAR's pairs and vocab); they join the cache key and are passed on by name."""
    T = settings["T"]
    shape = {key: settings[key] for key in knobs}
    sizes = {"train": settings["n_train"], "validation": settings["n_val"], "test": settings["n_test"]}
    return {
        split: cached_split(
            task,
            {"T": T, "n": n, "split": split, "data_seed": data_seed, "version": version, **shape},
            lambda split=split, n=n: generate(T, n, split_rng(data_seed, split, T), **shape),
        )
        for split, n in sizes.items()
    }


def dataset_arrays(dataset) -> dict[str, np.ndarray]:
    """Columns of fixed-shape numeric data as numpy arrays, read straight from Arrow.

    `with_format("numpy")` upcasts and walks nested lists slowly (seconds for 20k x 50 x 2);
    flattening the fixed-size list arrays is zero-copy and keeps the stored dtype.
    """
    import pyarrow as pa  # (lazy: pyarrow)

    if dataset._indices is not None:  # a select/shuffle view: materialise its rows first
        dataset = dataset.flatten_indices()
    arrays = {}
    for name in dataset.column_names:
        column = dataset.data.column(name).combine_chunks()
        shape = [len(column)]
        while pa.types.is_fixed_size_list(column.type):
            shape.append(column.type.list_size)
            column = column.flatten()
        arrays[name] = column.to_numpy(zero_copy_only=False).reshape(shape)
    return arrays
