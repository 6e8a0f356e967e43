"""Seconds to generate copy-memory data: 100,000 sequences at T=1000 (numpy), then as a cached
`datasets.Dataset` (first build writes the cache, second build reads it)."""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from tasks import copy_memory

# Lazy imports: the heavy libraries and suite modules a measurement needs are imported inside the
# functions that use them, after the environment (cache, threads) is set up.


def main(n: int = 100_000, T: int = 1000) -> None:

    start = time.perf_counter()
    arrays = copy_memory.generate(T, n, np.random.default_rng(0))
    generated = time.perf_counter() - start
    size_mb = sum(a.nbytes for a in arrays.values()) / 2**20
    print(f"copy-memory numpy generation, {n:,} x {T + 20} steps: {generated:.2f} s ({size_mb:.0f} MiB as uint8)")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RNNBENCH_CACHE"] = cache
        settings = {"T": T, "n_train": n, "n_val": 1, "n_test": 1}
        for label in ("first build (generate + write cache)", "second build (from cache)"):
            start = time.perf_counter()
            copy_memory.load_data(settings, data_seed=0)
            print(f"datasets.Dataset {label}: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
