"""One LightningDataModule for every task: the task's `datasets` splits as batches of tensors."""
from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

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


class TaskDataModule(pl.LightningDataModule):
    def __init__(self, task: TaskSpec, settings: dict, data_seed: int, batch_size: int, seed: int):
        super().__init__()
        self.task, self.settings, self.data_seed = task, settings, data_seed
        self.batch_size, self.seed = batch_size, seed
        self.data: TaskData | None = None
        self.tensors: dict[str, InMemoryBatches] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        self.data = self.task.load_data(self.settings, self.data_seed)
        token_columns = ("inputs", "targets") if self.task.input_kind == "tokens" else ()
        if self.task.loss == "cross_entropy" and "targets" not in token_columns:
            token_columns = (*token_columns, "targets")
        for split, dataset in self.data.splits.items():
            self.tensors[split] = InMemoryBatches(dataset_arrays(dataset), token_columns)

    @property
    def fingerprint(self) -> str:
        """Identifies the exact data (datasets' own fingerprints of the three splits)."""
        self.setup()
        return "-".join(self.data.splits[split]._fingerprint[:8] for split in ("train", "validation", "test"))

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        data = self.tensors[split]
        if shuffle:  # seeded, so batch order is reproducible from config.seed
            sampler = RandomSampler(data, generator=torch.Generator().manual_seed(self.seed))
        else:
            sampler = SequentialSampler(data)
        return DataLoader(data, sampler=BatchSampler(sampler, self.batch_size, drop_last=False),
                          batch_size=None, pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
