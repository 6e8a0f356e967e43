"""Threads on a shared machine (issue 25): the training-step time of the default `make train` network
(copy-memory, simple LSTM) at 1 and 2 torch threads, with OpenMP's spinning (ACTIVE) or sleeping (PASSIVE,
the suite's default) waits, on an idle machine and beside a process that keeps one core busy.

Each setting runs in a fresh process (OpenMP reads its wait policy once) and reports the median of
REPEATS timings of STEPS steps.
Ratios are to the idle 2-thread PASSIVE time, the suite's default."""

from __future__ import annotations

import os
import subprocess
import sys
import time

STEPS, REPEATS = 10, 3
SETTINGS = [(threads, policy) for threads in (1, 2) for policy in ("PASSIVE", "ACTIVE")]

CHILD = """
import statistics, sys, time, torch
from bench.config import resolve_config
from bench.data import TaskDataModule
from bench.module import RecurrentTaskModule
from bench.registry import get_task
from bench.train import build_network
torch.set_num_threads(int(sys.argv[1]))
config, task = resolve_config("copy-memory", "simple"), get_task("copy-memory")
data = TaskDataModule(task, config.data_settings(), 0, config.batch_size, 0)
data.setup()
net = build_network(task, config, data.data)
module = RecurrentTaskModule(task, net, config.lr, 0.0, num_classes=data.data.output_size)
optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
batch = next(iter(data.train_dataloader()))
def steps(n):
    for _ in range(n):
        optimizer.zero_grad()
        module.loss(module(batch), batch["targets"]).backward()
        optimizer.step()
steps(3)
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    steps(int(sys.argv[2]))
    times.append((time.perf_counter() - start) / int(sys.argv[2]))
print(statistics.median(times))
"""


def step_time(threads: int, policy: str) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    command = [sys.executable, "-c", CHILD, str(threads), str(STEPS), str(REPEATS)]
    return float(subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.split()[-1])


def measure(label: str) -> dict:
    print(f"{label}: load average {os.getloadavg()[0]:.1f} before", flush=True)
    return {setting: step_time(*setting) for setting in SETTINGS}


def main() -> None:
    idle = measure("idle")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # one core taken, as by another training
    try:
        time.sleep(2)
        busy = measure("one core busy")
    finally:
        hog.kill()
    reference = idle[(2, "PASSIVE")]
    print(
        f"{'threads':>7}  {'wait':<8}  {'idle ms/step':>12}  {'busy ms/step':>12}  {'busy/idle':>9}  {'busy/default idle':>17}"
    )
    for setting in SETTINGS:
        threads, policy = setting
        print(
            f"{threads:>7}  {policy:<8}  {1000 * idle[setting]:>12.1f}  {1000 * busy[setting]:>12.1f}"
            f"  {busy[setting] / idle[setting]:>8.2f}x  {busy[setting] / reference:>16.2f}x"
        )


if __name__ == "__main__":
    main()
