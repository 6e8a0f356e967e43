"""Time to load and tokenise IMDB train + test (50,000 reviews) the first time (empty cache) and
again from datasets' cache. Usage: python -m bench.benchmarks.tokenize data_dir=../shared/data/imdb"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from bench.cells import DEFAULT_CELL
from bench.config import resolve_config
from bench.registry import get_task

# Lazy imports: the heavy libraries and suite modules a measurement needs are imported inside the
# functions that use them, after the environment (cache, threads) is set up.


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RNNBENCH_CACHE"] = cache

        config = resolve_config(
            "imdb", "simple", DEFAULT_CELL, {"data_dir": args.get("data_dir", "../shared/data/imdb")}
        )
        for label in ("first time (empty cache)", "again (datasets' cache)"):
            start = time.perf_counter()
            data = get_task("imdb").load_data(config.task_settings, 0)
            seconds = time.perf_counter() - start
            rows = sum(len(split) for split in data.splits.values())
            print(f"IMDB load + vocabulary + tokenise, {rows:,} reviews: {label}: {seconds:.1f} s")
        print(
            f"vocabulary {data.input_size:,} words; {data.extra['data/truncated_share']:.1%} of training reviews "
            f"reach max_length={config.task_settings['max_length']}"
        )


if __name__ == "__main__":
    main()
