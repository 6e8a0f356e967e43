"""Small generated text-classification data for the text tests (no network, no shared data)."""

import json
import random
from pathlib import Path

import pandas as pd

POSITIVE = ["good", "great", "fine", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
FILLER = ["the", "movie", "was", "a", "plot", "and", "actors", "film", "story", "really"]


def make_rows(count: int, seed: int, classes: int = 2) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.randrange(classes)
        cue = (POSITIVE if label % 2 else NEGATIVE)[rng.randrange(5)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 20))]
        words.insert(rng.randrange(len(words) + 1), cue)
        rows.append({"review": " ".join(words), "stars": label})
    return rows


def write_split(folder: Path, split: str, rows: list[dict], fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.{fmt}"
    frame = pd.DataFrame(rows)
    if fmt == "parquet":
        frame.to_parquet(path)
    elif fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def make_dataset(folder: Path, fmt: str = "parquet", sizes=(400, 100, 100), validation: bool = True) -> Path:
    for split, size, seed in zip(("train", "validation", "test"), sizes, (1, 2, 3)):
        if split != "validation" or validation:
            write_split(folder, split, make_rows(size, seed), fmt)
    return folder


LOCAL = {"text_column": "review", "label_column": "stars", "min_freq": 1}
