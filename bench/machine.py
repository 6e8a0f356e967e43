"""What a run or a measurement ran on: the GPU's name, or the CPU model, its cores and torch's threads.

Imports torch at the top: its importers (bench/train.py, the benchmarks) have it loaded already.
"""

from __future__ import annotations

import os

import torch


def hardware() -> str:
    """What the run ran on: the GPU's name, or the CPU model and core count."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    return cpu()


def cpu() -> str:
    """The CPU model, its core count and torch's thread count (what a CPU measurement ran on)."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {model}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
