"""Training-step time of every cell against nn.GRU at the same sizes, on the CPU, as ratios.

One step = forward over the whole sequence, a mean-square loss on every output, backward (into the
input too, which in the suite is the encoder's output) and an Adam step: what one batch of training
costs. Each cell as the suite builds it (one layer, one direction: `models.recurrent_stack`), fp32;
batch 32, input 128, hidden 128; T = 100 and 1000. The layers take turns step by step, so a change in
the machine's load reaches all of them alike; the median of the timed steps is shown, and written to
reports/local/modern-cells/step_times.json (or --out DIR) for the cells page.
Usage: python -m bench.benchmarks.cell_speed [--repeats N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from bench.cells import CELLS
from bench.machine import cpu
from bench.models import recurrent_stack
from bench.report import REPORTS
from bench.report_cells import STEP_TIMES

REFERENCE_CELL = "gru"  # the yardstick: nn.GRU at the same hidden size
BATCH, INPUT, HIDDEN, LENGTHS = 32, 128, 128, (100, 1000)
WARMUP, REPEATS = 2, 5


def training_step(layer: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> float:
    start = time.perf_counter()
    outputs, _ = layer(x)
    loss = outputs.square().mean()
    optimizer.zero_grad(set_to_none=True)
    x.grad = None
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def step_times(steps: int, repeats: int) -> dict[str, float]:
    """Median seconds of one training step of each cell at length `steps`."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, steps, INPUT, requires_grad=True)
    layers = {cell: recurrent_stack(cell, INPUT, HIDDEN, 1, False, 0.0) for cell in CELLS}
    optimizers = {
        cell: torch.optim.Adam([p for p in layer.parameters() if p.requires_grad], lr=1e-3)
        for cell, layer in layers.items()
    }
    times: dict[str, list[float]] = {cell: [] for cell in layers}
    for repeat in range(WARMUP + repeats):
        for cell, layer in layers.items():
            seconds = training_step(layer, optimizers[cell], x)
            if repeat >= WARMUP:
                times[cell].append(seconds)
    return {cell: statistics.median(values) for cell, values in times.items()}


def load_average() -> str:
    """1, 5 and 15 minutes, as /proc/loadavg gives them: other work on the machine slows every layer."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="timed steps per cell and length")
    parser.add_argument("--out", type=Path, default=REPORTS, help="reports folder for modern-cells/step_times.json")
    args = parser.parse_args()
    setup = (
        f"one layer, one direction, batch {BATCH}, input {INPUT}, hidden {HIDDEN}, fp32; a step is forward, "
        f"backward and an Adam step; median of {args.repeats} after {WARMUP} warm-up steps"
    )
    print(f"{cpu()}, torch {torch.__version__}")
    print(setup)
    before = load_average()
    print(f"load average before: {before}")
    results = {steps: step_times(steps, args.repeats) for steps in LENGTHS}
    after = load_average()
    print(f"load average after:  {after}")
    print(f"{'cell':<9}" + "".join(f"{f'T={steps} ms':>13}{f'x {REFERENCE_CELL}':>8}" for steps in LENGTHS))
    ratios = {
        cell: {str(steps): results[steps][cell] / results[steps][REFERENCE_CELL] for steps in LENGTHS} for cell in CELLS
    }
    for cell in CELLS:
        print(
            f"{cell:<9}"
            + "".join(f"{results[steps][cell] * 1000:>13.1f}{ratios[cell][str(steps)]:>8.2f}" for steps in LENGTHS)
        )
    path = args.out / STEP_TIMES
    path.parent.mkdir(parents=True, exist_ok=True)
    measured = {
        "ratios": ratios,
        "milliseconds": {cell: {str(steps): results[steps][cell] * 1000 for steps in LENGTHS} for cell in CELLS},
        "setup": setup,
        "machine": f"{cpu()}, load average {before} before and {after} after",
    }
    path.write_text(json.dumps(measured, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
