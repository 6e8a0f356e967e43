"""Tiny settings for every registered task, so registry-wide tests run on small local data."""
from pathlib import Path

from tests.text_helpers import LOCAL, make_dataset, make_rows, write_split


def tiny_overrides(task, folder: Path) -> dict:
    if "T" in task.settings:  # generated long-range tasks, at their shortest allowed length
        return {"T": max(4, task.minimums.get("T", 1)), "n_train": 8, "n_val": 4, "n_test": 4}
    if "corpus_file" in task.settings:  # language model over a corpus
        path = write_split(folder, "corpus", [{"text": r["review"]} for r in make_rows(60, 5)], "jsonl")
        return {"corpus_file": str(path), "seq_len": 6, "min_freq": 1}
    return {"data_dir": str(make_dataset(folder / "data", sizes=(40, 12, 12))), **LOCAL}  # text classification


def sample_batch(task, data, size: int = 3):
    """(inputs, lengths) shaped like the task's real batches."""
    import torch

    from bench.data import TokenSequences
    from bench.synthetic import dataset_arrays

    train = data.splits["train"]
    if "input_ids" in train.column_names:
        batch = TokenSequences.from_dataset(train)[list(range(size))]
        return batch["inputs"], batch["lengths"]
    inputs = torch.from_numpy(dataset_arrays(train)["inputs"][:size])
    return (inputs.long() if task.input_kind == "tokens" else inputs), None
