"""Fine-tuned pretrained vectors with a large vocabulary (issue 25): the training-step time of the text
network (LSTM, hidden 128, 50-d vectors, batch 64, sentences of 20 tokens) when the optimiser updates the
whole table of 100,000 + training words (as before), only the rows the training split reaches (the
suite's PartlyFrozenEmbedding), and a table of the training words alone (vectors_vocab=0). The three
alternate in one process; the ratios are to the training-words-only table."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from bench.models import PartlyFrozenEmbedding

TRAINING_WORDS, VECTORS_WORDS, DIM, HIDDEN, BATCH, LENGTH = 15_000, 100_000, 50, 128, 64, 20
STEPS, REPEATS = 30, 5


class Net(nn.Module):
    def __init__(self, table: nn.Module) -> None:
        super().__init__()
        self.table, self.lstm, self.head = table, nn.LSTM(DIM, HIDDEN, batch_first=True), nn.Linear(HIDDEN, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.table(ids))[0][:, -1])


def step_time(net: Net) -> float:
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, TRAINING_WORDS, (BATCH, LENGTH), generator=generator) for _ in range(STEPS)]
    targets = torch.randint(0, 2, (BATCH,), generator=generator)

    def run() -> None:
        for ids in batches:
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(ids), targets).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()

    run()  # warm-up
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / STEPS


def main() -> None:
    torch.manual_seed(0)
    vectors = torch.randn(TRAINING_WORDS + VECTORS_WORDS, DIM)
    nets = {
        "whole table trained (before)": lambda: Net(nn.Embedding.from_pretrained(vectors.clone(), freeze=False)),
        "rows training reaches (now)": lambda: Net(PartlyFrozenEmbedding(vectors.clone(), TRAINING_WORDS)),
        "training words only": lambda: Net(
            nn.Embedding.from_pretrained(vectors[:TRAINING_WORDS].clone(), freeze=False)
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(REPEATS):
        for name, make in nets.items():
            times[name].append(step_time(make()))
    reference = statistics.median(times["training words only"])
    print(f"threads {torch.get_num_threads()}, {TRAINING_WORDS:,} training words + {VECTORS_WORDS:,} from the vectors")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<30} {1000 * median:7.1f} ms/step  {median / reference:5.2f}x")


if __name__ == "__main__":
    main()
