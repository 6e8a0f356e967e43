"""One LightningDataModule for every task: the task's `datasets` splits as batches of tensors.

Fixed-shape data (generated tasks) is indexed a whole batch at a time; variable-length text is
bucketed by length and padded only to the longest sequence of its batch (the model packs it)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Iterator

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler, SequentialSampler

from bench.errors import UserError
from bench.paths import cache_dir
from bench.registry import TaskData, TaskSpec
from bench.synthetic import dataset_arrays


class InMemoryBatches(torch.utils.data.Dataset):
    """Columns held as tensors and indexed a whole batch at a time (one fancy-index per batch,
    instead of one Python call per example plus collation)."""

    def __init__(self, arrays: dict[str, np.ndarray], token_columns: tuple[str, ...]):
        # np.array copies: Arrow buffers are read-only and torch wants writable memory
        self.columns = {name: torch.from_numpy(np.array(a)) for name, a in arrays.items()}
        self.token_columns = token_columns
        self.size = len(next(iter(self.columns.values())))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, indices) -> dict[str, torch.Tensor]:
        batch = {name: column[indices] for name, column in self.columns.items()}
        for name in self.token_columns:  # stored as uint8 to save memory; the model wants int64
            batch[name] = batch[name].long()
        return batch


class TokenSequences(torch.utils.data.Dataset):
    """Variable-length token sequences (flat ids + offsets, straight from Arrow) and their labels.

    A batch is padded to its own longest sequence (or, with `pad_to`, to a fixed length: the naive
    baseline) and carries the `lengths`; the model packs them or reads each sequence's last step."""

    def __init__(self, offsets: np.ndarray, tokens: np.ndarray, labels: np.ndarray, pad_to: int | None = None):
        self.offsets, self.tokens = offsets, tokens.astype(np.int64)
        self.lengths = np.diff(self.offsets)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.pad_to = pad_to

    @classmethod
    def from_dataset(cls, dataset, pad_to: int | None = None) -> "TokenSequences":
        """From a tokenised `datasets.Dataset` (columns input_ids, label), zero-copy from Arrow."""
        if dataset._indices is not None:
            dataset = dataset.flatten_indices()
        column = dataset.data.column("input_ids").combine_chunks()
        return cls(column.offsets.to_numpy(), column.values.to_numpy(), np.asarray(dataset["label"]), pad_to)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, indices) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices)
        lengths = self.lengths[indices]
        width = self.pad_to or int(lengths.max())
        padded = np.zeros((len(indices), width), dtype=np.int64)  # 0 is [PAD]
        for row, (start, length) in enumerate(zip(self.offsets[indices], lengths)):
            padded[row, :length] = self.tokens[start : start + length]
        return {
            "inputs": torch.from_numpy(padded),
            "targets": self.labels[indices],
            "lengths": torch.from_numpy(lengths),
        }


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length: shuffle, cut into chunks of `bucket_batches` batches, sort each chunk
    by length, batch it, shuffle the batches. New order every epoch, reproducible from the seed."""

    def __init__(self, lengths: np.ndarray, batch_size: int, shuffle: bool, seed: int, bucket_batches: int = 50):
        self.lengths, self.batch_size, self.shuffle, self.seed = lengths, batch_size, shuffle, seed
        self.bucket = batch_size * bucket_batches
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.bucket):
            chunk = order[start : start + self.bucket]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches.extend(chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return iter(batches)


class TaskDataModule(pl.LightningDataModule):
    def __init__(self, task: TaskSpec, settings: dict, data_seed: int, batch_size: int, seed: int):
        super().__init__()
        self.task, self.settings, self.data_seed = task, settings, data_seed
        self.batch_size, self.seed = batch_size, seed
        self.data: TaskData | None = None
        self.datasets: dict[str, torch.utils.data.Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        with removed_on_error(cache_dir()):  # bad data leaves nothing behind
            self.data = self.task.load_data(self.settings, self.data_seed)
        splits = dict(self.data.splits)
        if self.task.train_metrics:  # a fixed train sample, as large as validation, scored in eval mode
            train = splits["train"]
            size = min(len(train), len(splits["validation"]))
            splits["train_sample"] = train.shuffle(seed=self.data_seed).select(range(size))
        for split, dataset in splits.items():
            if self.task.batching == "by-length":  # variable-length token sequences
                padded = self.settings["batching"] == "padded"
                self.datasets[split] = TokenSequences.from_dataset(
                    dataset, self.settings["max_length"] if padded else None
                )
            else:
                token_columns = ("inputs",) if self.task.input_kind == "tokens" else ()
                if self.task.loss == "cross_entropy":
                    token_columns = (*token_columns, "targets")
                self.datasets[split] = InMemoryBatches(dataset_arrays(dataset), token_columns)

    @property
    def fingerprint(self) -> str:
        """Identifies the exact data (datasets' own fingerprints of the three splits)."""
        self.setup()
        return "-".join(self.data.splits[split]._fingerprint[:8] for split in ("train", "validation", "test"))

    def _sampler(self, split: str, shuffle: bool) -> Sampler:
        data = self.datasets[split]
        if isinstance(data, TokenSequences) and data.pad_to is None:
            return BucketBatchSampler(data.lengths, self.batch_size, shuffle, self.seed)
        if shuffle:  # seeded, so batch order is reproducible from config.seed
            sampler = RandomSampler(data, generator=torch.Generator().manual_seed(self.seed))
        else:
            sampler = SequentialSampler(data)
        return BatchSampler(sampler, self.batch_size, drop_last=False)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            sampler=self._sampler(split, shuffle),
            batch_size=None,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        if "train_sample" in self.datasets:
            return [self._loader("validation", shuffle=False), self._loader("train_sample", shuffle=False)]
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def transfer_batch_to_device(self, batch: dict, device: torch.device, dataloader_idx: int) -> dict:
        # Our batches are flat dicts of tensors: skip Lightning's generic collection walk (~0.6 ms/step).
        # Here, not on the LightningModule: the data's shape is the data module's business.
        return {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}


def cache_entries(root: Path, depth: int = 3) -> set[Path]:
    """Files and folders under `root`, `depth` levels deep (the caches' layouts: hf/<builder>/<config>)."""
    found, level = set(), [root]
    for _ in range(depth):
        nxt = []
        for folder in level:
            try:
                children = list(folder.iterdir())
            except OSError:
                continue
            found.update(children)
            nxt += [child for child in children if child.is_dir() and not child.is_symlink()]
        level = nxt
    return found


@contextlib.contextmanager
def removed_on_error(root: Path) -> Iterator[None]:
    """If loading fails on bad input (UserError), remove what it added to the cache, so that a data
    error creates nothing (the README's promise)."""
    existed = root.exists()
    before = cache_entries(root) if existed else set()
    top = root  # the highest folder this call may create
    while not top.parent.exists():
        top = top.parent
    try:
        yield
    except UserError:
        if not existed:
            shutil.rmtree(top, ignore_errors=True)
        else:
            for path in sorted(cache_entries(root) - before, key=lambda p: len(p.parts)):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        path.unlink()
        raise
