"""Suite training time vs a bare PyTorch loop: same model, data, batch size, epochs, in one process.

Both do per epoch one pass over train (Adam, grad-norm clipping) and one over validation.
The suite's time is Trainer.fit's wall time (MLflow logging, checkpointing, metrics included).
Usage: python -m bench.benchmarks.training_overhead [key=value ...]  (defaults: copy-memory, LSTM)
"""

from __future__ import annotations

import sys
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from bench.cells import DEFAULT_CELL
from bench.config import parse_overrides, resolve_config
from bench.data import TaskDataModule
from bench.registry import get_task
from bench.train import build_network, train

EPOCHS, REPEATS = 3, 2


class FitTimer(pl.Callback):
    def on_fit_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_fit_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


def bare_loop(config) -> float:
    task = get_task(config.task)
    pl.seed_everything(config.seed, verbose=False)
    data = TaskDataModule(task, config.task_settings, config.data_seed, config.batch_size, config.seed)
    data.setup()
    net = build_network(task, config, data.data)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=config.lr)
    start = time.perf_counter()
    for _ in range(config.max_epochs):
        net.train()
        for batch in data.train_dataloader():
            outputs = net(batch["inputs"])
            loss = F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), batch["targets"].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.gradient_clip)
            optimizer.step()
        net.eval()
        with torch.no_grad():
            for batch in data.val_dataloader():
                outputs = net(batch["inputs"])
                F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), batch["targets"].reshape(-1)).item()
    return time.perf_counter() - start


def suite(config) -> float:
    timer = FitTimer()
    train(config, callbacks=[timer], progress=False, tags={"purpose": "benchmark"})
    return timer.seconds


def main() -> None:
    overrides = {"max_epochs": EPOCHS, "patience": EPOCHS, **parse_overrides(sys.argv[1:])}
    config = resolve_config("copy-memory", "simple", DEFAULT_CELL, overrides)
    bare_times, suite_times = [], []
    for _ in range(REPEATS):  # interleaved, so drift in machine load hits both alike
        bare_times.append(bare_loop(config))
        suite_times.append(suite(config))
    bare, ours = min(bare_times), min(suite_times)
    steps = config.max_epochs * -(-config.task_settings["n_train"] // config.batch_size)
    print(
        f"device: {'cuda ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        f"config: copy-memory T={config.task_settings['T']} lstm hidden={config.hidden} "
        f"batch={config.batch_size} epochs={config.max_epochs} ({steps} steps)"
    )
    print(f"bare PyTorch loop: {bare:.2f} s (runs: {', '.join(f'{t:.2f}' for t in bare_times)})")
    print(f"suite Trainer.fit: {ours:.2f} s (runs: {', '.join(f'{t:.2f}' for t in suite_times)})")
    print(f"ratio suite/bare: {ours / bare:.3f}x (goal <= 1.05x)")


if __name__ == "__main__":
    main()
