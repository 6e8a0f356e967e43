"""The suite's training loop (our LightningModule, DataModule batching and callbacks under the
Lightning Trainer, MLflow logging off) vs a bare PyTorch loop, same model, data and batch size, on
whatever device is present, in fp32 and (on GPU) bf16-mixed. Needs no MLflow or datasets, so it
runs on a bare GPU machine. Usage: python -m bench.benchmarks.gpu_overhead"""

from __future__ import annotations

import time
import warnings

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler

from bench.cells import DEFAULT_CELL
from bench.data import InMemoryBatches
from bench.models import NetConfig, RecurrentNet
from bench.module import RecurrentTaskModule
from bench.registry import get_task
from bench.train import EpochTimer, StopOnDivergence
from tasks import copy_memory

# Lazy imports: the heavy libraries and suite modules a measurement needs are imported inside the
# functions that use them, after the environment (cache, threads) is set up.

warnings.filterwarnings("ignore")
T, N, BATCH, HIDDEN, EPOCHS = 100, 20000, 256, 128, 3


def make_net():
    torch.manual_seed(0)
    return RecurrentNet(
        NetConfig(
            input_kind="tokens",
            input_size=10,
            output_size=10,
            output_kind="per-step",
            cell=DEFAULT_CELL,
            hidden=HIDDEN,
            embedding_size=16,
        )
    )


def loader(data, seed=0):
    sampler = BatchSampler(RandomSampler(data, generator=torch.Generator().manual_seed(seed)), BATCH, False)
    return DataLoader(data, sampler=sampler, batch_size=None, pin_memory=torch.cuda.is_available())


def bare(data, device, bf16: bool) -> float:
    net = make_net().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(EPOCHS):
        for batch in loader(data):
            inputs, targets = (
                batch["inputs"].to(device, non_blocking=True),
                batch["targets"].to(device, non_blocking=True),
            )
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = net(inputs)
            loss = F.cross_entropy(logits.reshape(-1, 10).float(), targets.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
    sync()
    return time.perf_counter() - start


def suite(data, device, precision: str) -> float:

    module = RecurrentTaskModule(get_task("copy-memory"), make_net(), lr=1e-2, weight_decay=0.0, num_classes=10)
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=precision,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[StopOnDivergence(), EpochTimer()],
    )
    start = time.perf_counter()
    trainer.fit(module, train_dataloaders=loader(data))
    return time.perf_counter() - start


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    arrays = copy_memory.generate(T, N, np.random.default_rng(0))
    data = InMemoryBatches(arrays, ("inputs", "targets"))
    steps = EPOCHS * -(-N // BATCH)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(
        f"device {name}; torch {torch.__version__}; copy-memory T={T}, LSTM hidden {HIDDEN}, batch {BATCH}, "
        f"{steps} steps"
    )
    modes = [("fp32", False, "32-true")] + ([("bf16-mixed", True, "bf16-mixed")] if device.type == "cuda" else [])
    for label, bf16, precision in modes:
        bare(data, device, bf16)  # warm-up (cuDNN plans, allocator)
        b = min(bare(data, device, bf16) for _ in range(2))
        s = min(suite(data, device, precision) for _ in range(2))
        print(
            f"{label}: bare loop {b:.2f} s ({steps / b:.0f} steps/s), suite {s:.2f} s ({steps / s:.0f} steps/s), "
            f"ratio suite/bare {s / b:.3f}"
        )


if __name__ == "__main__":
    main()
