"""Training-step time of the modern cells against nn.GRU at the same sizes, on the CPU, as ratios.

One step = forward over the whole sequence, a mean-square loss on every output, backward (into the
input too, which in the suite is the encoder's output) and an Adam step: what one batch of training
costs. One layer, one direction, fp32; batch 32, input 128, hidden 128; T = 100 and 1000. nn.LSTM and
the suite's tanh RNN (nn.RNN with one bias) are there for context. The layers take turns step by step,
so a change in the machine's load reaches all of them alike; the median of the timed steps is shown.
Usage: python -m bench.benchmarks.cell_speed [repeats]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import torch
from torch import nn

from bench.cells.lru import LRU
from bench.cells.mingru import MinGRU
from bench.cells.minlstm import MinLSTM
from bench.models import single_bias

BATCH, INPUT, HIDDEN, LENGTHS = 32, 128, 128, (100, 1000)
WARMUP, REPEATS = 2, 5


class TorchLayer(nn.Module):
    """A torch.nn recurrent layer behind the same call as ours: x -> (outputs, state)."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor):
        return self.layer(x)


def simple_rnn(input_size: int, hidden_size: int) -> nn.Module:
    rnn = nn.RNN(input_size, hidden_size, nonlinearity="tanh", batch_first=True)
    single_bias(rnn)
    return rnn


LAYERS = {  # the reference first
    "nn.GRU": lambda i, h: TorchLayer(nn.GRU(i, h, batch_first=True)),
    "nn.LSTM": lambda i, h: TorchLayer(nn.LSTM(i, h, batch_first=True)),
    "tanh RNN": lambda i, h: TorchLayer(simple_rnn(i, h)),
    "minGRU": MinGRU,
    "minLSTM": MinLSTM,
    "LRU": LRU,
}


def training_step(layer: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> float:
    start = time.perf_counter()
    outputs, _ = layer(x)
    loss = outputs.square().mean()
    optimizer.zero_grad(set_to_none=True)
    x.grad = None
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def step_times(steps: int, repeats: int) -> dict[str, float]:
    """Median seconds of one training step of each layer at length `steps`."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, steps, INPUT, requires_grad=True)
    layers = {name: make(INPUT, HIDDEN) for name, make in LAYERS.items()}
    optimizers = {
        name: torch.optim.Adam([p for p in layer.parameters() if p.requires_grad], lr=1e-3)
        for name, layer in layers.items()
    }
    times: dict[str, list[float]] = {name: [] for name in layers}
    for repeat in range(WARMUP + repeats):
        for name, layer in layers.items():
            seconds = training_step(layer, optimizers[name], x)
            if repeat >= WARMUP:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def load_average() -> str:
    """1, 5 and 15 minutes, as /proc/loadavg gives them: other work on the machine slows every layer."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(repeats: int = REPEATS) -> None:
    print(
        f"CPU, torch {torch.__version__}, {torch.get_num_threads()} threads, fp32; "
        f"batch {BATCH}, input {INPUT}, hidden {HIDDEN}, one layer, one direction"
    )
    print("step = forward + backward + Adam step; median of", repeats, "after", WARMUP, "warm-up steps")
    print(f"load average before: {load_average()}")
    results = {steps: step_times(steps, repeats) for steps in LENGTHS}
    print(f"load average after:  {load_average()}")
    header = f"{'layer':<10}" + "".join(f"{f'T={steps} ms':>14}{'x nn.GRU':>10}" for steps in LENGTHS)
    print(header)
    for name in LAYERS:
        row = f"{name:<10}"
        for steps in LENGTHS:
            seconds, reference = results[steps][name], results[steps]["nn.GRU"]
            row += f"{seconds * 1000:>14.1f}{seconds / reference:>10.2f}"
        print(row)


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
