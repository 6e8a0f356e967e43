"""Tiny settings for every registered task, so registry-wide tests run on small local data."""

from pathlib import Path

from tests.text_helpers import LOCAL, make_dataset, make_rows, write_split


def tiny_overrides(task, folder: Path) -> dict:
    """The task's own test preset, plus tiny local data made here for the families that read files."""
    if task.family == "image":
        return {**task.test_preset, "data_dir": str(make_digits(folder / "digits"))}
    if task.family == "language-model":
        path = write_split(folder, "corpus", [{"text": r["review"]} for r in make_rows(60, 5)], "jsonl")
        return {**task.test_preset, "corpus_file": str(path)}
    if task.family == "text":
        return {**task.test_preset, "data_dir": str(make_dataset(folder / "data", sizes=(40, 12, 12))), **LOCAL}
    return dict(task.test_preset)  # generated: no files


def sample_batch(task, data, size: int = 3):
    """(inputs, lengths) shaped like the task's real batches."""
    import torch

    from bench.data import TokenSequences
    from bench.synthetic import dataset_arrays

    train = data.splits["train"]
    if task.batching == "by-length":
        batch = TokenSequences.from_dataset(train)[list(range(size))]
        return batch["inputs"], batch["lengths"]
    inputs = torch.from_numpy(dataset_arrays(train)["inputs"][:size].copy())  # a writable copy for torch
    return (inputs.long() if task.input_kind == "tokens" else inputs), None


def make_digits(folder: Path, sizes=(60, 20, 20), fmt: str = "parquet", seed: int = 0) -> Path:
    """Tiny MNIST-like data: 28x28 images whose label is the row (label x 2) that is lit, stored as
    datasets stores images (PNG bytes) in parquet, as pixel lists in jsonl, as strings in csv."""
    import io
    import json

    import numpy as np
    import pandas as pd
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in zip(("train", "validation", "test"), sizes):
        if not size:
            continue
        rows = []
        for index in range(size):
            label = index % 10
            pixels = (rng.random((28, 28)) * 40).astype(np.uint8)
            pixels[2 * label + 4] = 255
            if fmt == "parquet":
                buffer = io.BytesIO()
                Image.fromarray(pixels).save(buffer, format="PNG")
                image = {"bytes": buffer.getvalue(), "path": None}
            elif fmt == "jsonl":
                image = pixels.reshape(-1).tolist()
            else:
                image = " ".join(map(str, pixels.reshape(-1)))
            rows.append({"image": image, "label": label})
        path = folder / f"{split}.{fmt}"
        if fmt == "parquet":
            pd.DataFrame(rows).to_parquet(path)
        elif fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            pd.DataFrame(rows).to_csv(path, index=False)
    return folder
