"""Wall time of `python -m bench --help` and `python -m bench list` (best of 5 runs each)."""

from __future__ import annotations

import subprocess
import sys
import time


def best_of(args: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bench", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    for args in (["--help"], ["list"]):
        print(f"python -m bench {' '.join(args)}: {best_of(args):.3f} s (goal < 1 s)")


if __name__ == "__main__":
    main()
