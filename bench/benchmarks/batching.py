"""Training throughput (real tokens per second) of length buckets (packed, or padded to the batch's
longest) vs padding every batch to max_length: same model, data and batch size, in one process.

Lengths come from IMDB's real reviews (data_dir=... with the IMDB files, tokenised by the suite), or,
without data, from a log-normal fitted to IMDB's word counts (median 174, 95th percentile 598).
Usage: python -m bench.benchmarks.batching [data_dir=../shared/data/imdb] [examples=3000] [device=cpu|cuda]
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from bench.cells import DEFAULT_CELL
from bench.config import resolve_config
from bench.data import BucketBatchSampler, TokenSequences
from bench.models import NetConfig, RecurrentNet
from bench.registry import get_task

# Lazy imports: the heavy libraries and suite modules a measurement needs are imported inside the
# functions that use them, after the environment (cache, threads) is set up.

MAX_LENGTH, VOCAB, BATCH = 400, 20000, 64


def imdb_sequences(data_dir: str, examples: int) -> tuple[TokenSequences, str]:

    config = resolve_config("imdb", "simple", DEFAULT_CELL, {"data_dir": data_dir, "max_length": MAX_LENGTH})
    train = get_task("imdb").load_data(config.task_settings, 0).splits["train"]
    train = train.select(np.random.default_rng(0).permutation(len(train))[:examples])
    return TokenSequences.from_dataset(train), f"IMDB train reviews tokenised by the suite ({examples} sampled)"


def synthetic_sequences(examples: int) -> tuple[TokenSequences, str]:
    rng = np.random.default_rng(0)
    sigma = math.log(598 / 174) / 1.645
    lengths = np.clip(rng.lognormal(math.log(174), sigma, examples).astype(int), 1, MAX_LENGTH)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = rng.integers(2, VOCAB, offsets[-1])
    return TokenSequences(
        offsets, tokens, rng.integers(0, 2, examples)
    ), f"log-normal lengths fitted to IMDB (median 174, p95 598), {examples} sequences"


def epoch(net, data: TokenSequences, batches, device, optimizer) -> tuple[float, int]:
    tokens = 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for indices in batches:
        batch = {k: v.to(device, non_blocking=True) for k, v in data[indices].items()}
        logits = net(batch["inputs"], batch["lengths"])
        loss = F.cross_entropy(logits, batch["targets"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        tokens += int(data.lengths[indices].sum())
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, tokens


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    examples = int(args.get("examples", 3000))
    device = torch.device(args.get("device", "cuda" if torch.cuda.is_available() else "cpu"))
    data, source = imdb_sequences(args["data_dir"], examples) if "data_dir" in args else synthetic_sequences(examples)
    padded = TokenSequences(data.offsets, data.tokens, data.labels.numpy(), pad_to=MAX_LENGTH)
    random_batches = [
        list(b)
        for b in torch.utils.data.BatchSampler(
            torch.utils.data.RandomSampler(range(len(data)), generator=torch.Generator().manual_seed(0)), BATCH, False
        )
    ]
    buckets = lambda: list(BucketBatchSampler(data.lengths, BATCH, True, 0))  # noqa: E731
    print(
        f"device: {torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}; data: {source}; "
        f"LSTM hidden 128, embedding 100, batch {BATCH}, max_length {MAX_LENGTH}"
    )
    print(
        f"mean length {data.lengths.mean():.0f}, padding share when padded to max: "
        f"{1 - data.lengths.mean() / MAX_LENGTH:.0%}"
    )
    for bidirectional in (False, True):
        torch.manual_seed(0)
        nets = {
            pack: RecurrentNet(
                NetConfig(
                    input_kind="tokens",
                    input_size=VOCAB,
                    output_size=2,
                    output_kind="per-sequence",
                    cell=DEFAULT_CELL,
                    bidirectional=bidirectional,
                    hidden=128,
                    embedding_size=100,
                    pack=pack,
                )
            ).to(device)
            for pack in ((True, False) if not bidirectional else (True,))
        }
        runs = {
            "bucketed + packed": (nets[True], data, buckets),
            "padded to max_length": (nets[True], padded, lambda: random_batches),
        }
        if not bidirectional:
            runs["bucketed, not packed"] = (nets[False], data, buckets)
        rates = {}
        for _ in range(2):  # interleaved repeats; keep the best of each
            for name, (net, dataset, batches) in runs.items():
                optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
                seconds, tokens = epoch(net, dataset, batches(), device, optimizer)
                rates[name] = max(rates.get(name, 0), tokens / seconds)
        baseline = rates["padded to max_length"]
        print(
            f"{'bidirectional' if bidirectional else 'unidirectional'} LSTM: "
            + "; ".join(f"{name} {rate:,.0f} tokens/s ({rate / baseline:.2f}x)" for name, rate in rates.items())
        )


if __name__ == "__main__":
    main()
