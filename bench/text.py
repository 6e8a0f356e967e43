"""The generic text-classification path shared by every sentiment task (and any local dataset):
load (hub or local parquet/csv/jsonl) -> validate -> carve validation / labeled subset ->
word-level tokenizer trained on train only -> `datasets.map(batched=True)` (cached) -> TaskData."""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from pathlib import Path

from bench.errors import UserError, first_line
from bench.paths import cache_dir
from bench.registry import MetricSpec, TaskData, TaskSpec

SPECIALS = ["[PAD]", "[UNK]"]  # [PAD] is id 0
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
SPLITS = ("train", "validation", "test")


def text_settings(text_column: str, max_length: int) -> dict:
    return {
        "data_dir": "",  # a folder with train/[validation/]test .parquet|.csv|.jsonl: overrides the hub
        "train_file": "", "validation_file": "", "test_file": "",  # or one file per split
        "text_column": text_column, "label_column": "label",
        "num_classes": 0,  # 0: max label in train + 1
        "max_length": max_length,  # tokens kept per text (longer texts are truncated at the end)
        "min_freq": 2, "max_vocab": 20000,  # vocabulary, built on the training split only
        "val_fraction": 0.1,  # stratified carve from train when the dataset has no validation split
        "train_subset": 0,  # >0: a stratified subset of that many labeled training examples
        # packed: length buckets + pack_padded_sequence (exact for every network, but slow: ~25x slower
        #   than unpacked on CPU); bucketed: length buckets padded to the batch's longest, not packed
        #   (exact for unidirectional networks, the fastest on CPU and GPU); padded: random batches padded
        #   to max_length (the naive baseline); auto: packed for bidirectional networks, else bucketed.
        "batching": "auto",
    }


def text_task(name: str, hub_id: str | None, text_column: str, max_length: int, description: str,
              references: str = "", hub_test_split: str = "test") -> TaskSpec:
    """A sentiment/text-classification task: the network reads token ids, predicts one class."""
    def load_data(settings: dict, data_seed: int) -> TaskData:
        return load_text_classification(name, hub_id, hub_test_split, settings, data_seed)

    return TaskSpec(
        name=name, description=description, input_kind="tokens", output_kind="per-sequence",
        loss="cross_entropy", settings=text_settings(text_column, max_length),
        minimums={"max_length": 1, "min_freq": 1, "max_vocab": 3, "num_classes": 0, "train_subset": 0,
                  "val_fraction": 0.0},
        load_data=load_data, family="text", test_preset={"min_freq": 1}, batching="by-length",
        metrics=(MetricSpec("acc", "accuracy"),), monitor="val/acc", monitor_mode="max",
        training_defaults={"lr": 2e-3, "hidden": 128, "embedding_size": 100, "batch_size": 64, "max_epochs": 5,
                           "patience": 2, "gradient_clip": 5.0},
        references=references, report_metric="acc", train_metrics=True,
        choices={"batching": ("auto", "packed", "bucketed", "padded")},
    )


# -- loading -----------------------------------------------------------------------------------------
def local_files(settings: dict) -> dict[str, Path]:
    files = {split: Path(settings[f"{split}_file"]) for split in SPLITS if settings[f"{split}_file"]}
    if settings["data_dir"]:
        folder = Path(settings["data_dir"])
        if not folder.is_dir():
            raise UserError(f"data_dir={folder} is not a folder")
        for split in SPLITS:
            for suffix in FORMATS:
                if split not in files and (folder / f"{split}{suffix}").exists():
                    files[split] = folder / f"{split}{suffix}"
    for split, path in files.items():
        if not path.is_file():
            raise UserError(f"{split}_file={path} does not exist")
        if path.suffix not in FORMATS:
            raise UserError(f"{path}: unsupported format {path.suffix!r}; use .parquet, .csv or .jsonl")
    if files and ("train" not in files or "test" not in files):
        raise UserError(f"local files need at least a train and a test split (found: {', '.join(files)})")
    return files


def load_raw(name: str, hub_id: str | None, hub_test_split: str, settings: dict) -> dict:
    import datasets

    files = local_files(settings)
    hf_cache = str(cache_dir() / "hf")
    if files:
        raw = {}
        for split, path in files.items():
            if path.stat().st_size == 0:
                raise UserError(f"the {split} split is empty ({path})")
            try:
                raw[split] = datasets.load_dataset(FORMATS[path.suffix], data_files={split: str(path)}, split=split,
                                                   cache_dir=hf_cache)
            except Exception as error:
                raise UserError(f"cannot read {path}: {first_line(error)}") from None
        return raw
    if hub_id is None:
        raise UserError(f"task {name} reads local files only: set data_dir=<folder> or train_file=... test_file=...")
    try:
        hub = datasets.load_dataset(hub_id, cache_dir=hf_cache)
    except Exception as error:
        raise UserError(f"cannot load {hub_id} from the Hugging Face hub ({first_line(error, 120)}); "
                        f"use local files: data_dir=<folder with train/test .parquet|.csv|.jsonl>") from None
    # The hub's SST-2 hides its test labels: its validation split is then the test split.
    raw = {"train": hub["train"], "test": hub[hub_test_split]}
    if "validation" in hub and hub_test_split != "validation":
        raw["validation"] = hub["validation"]
    return raw


def check_splits(raw: dict, columns: dict[str, str], label: str, classes: int = 0) -> int:
    """Every split has the columns ({setting: column name}) and rows, and labels in 0..K-1, where K is
    `classes` or, when 0, the largest training label + 1. Returns K. (Text and image tasks alike.)"""
    for split, dataset in raw.items():
        for role, column in columns.items():
            if column not in dataset.column_names:
                raise UserError(f"{split} split has no column {column!r} (columns: {', '.join(dataset.column_names)});"
                                f" set {role}=<name>")
        if len(dataset) == 0:
            raise UserError(f"the {split} split is empty")
    labels = {split: dataset.unique(label) for split, dataset in raw.items()}
    classes = classes or int(max(labels["train"])) + 1
    for split, values in labels.items():
        bad = sorted(v for v in values if not isinstance(v, int) or not 0 <= v < classes)
        if bad:
            raise UserError(f"{split} split has labels outside 0..{classes - 1}: {bad[:5]}")
    return classes


def validate_and_select(raw: dict, settings: dict) -> tuple[dict, int]:
    """Keep text and label, check them, and return (splits, number of classes)."""
    text, label = settings["text_column"], settings["label_column"]
    classes = check_splits(raw, {"text_column": text, "label_column": label}, label, settings["num_classes"])
    selected = {split: dataset.select_columns([text, label]).rename_columns({text: "text", label: "label"})
                for split, dataset in raw.items()}
    return selected, classes


def stratified_take(dataset, size: int, seed: int):
    """A seeded stratified subset of `size` rows (proportional per class)."""
    import numpy as np

    labels = np.asarray(dataset["label"])
    rng = np.random.default_rng(seed)
    chosen = []
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        take = max(1, round(size * len(rows) / len(labels)))
        chosen.extend(rng.choice(rows, size=min(take, len(rows)), replace=False).tolist())
    return dataset.select(sorted(chosen[:size] if len(chosen) > size else chosen))


def carve(splits: dict, settings: dict, data_seed: int) -> dict:
    """Validation from train when missing (stratified, seeded); then the labeled subset, if asked.
    Test is never touched."""
    import numpy as np

    train = splits["train"]
    if "validation" not in splits:
        if not 0 < settings["val_fraction"] < 1:
            raise UserError("the dataset has no validation split: set val_fraction in (0, 1) to carve one")
        labels = np.asarray(train["label"])
        rng = np.random.default_rng(data_seed)
        held = []
        for value in np.unique(labels):
            rows = np.flatnonzero(labels == value)
            held.extend(rng.choice(rows, size=max(1, int(len(rows) * settings["val_fraction"])), replace=False))
        held_set = set(int(i) for i in held)
        splits = {**splits, "validation": train.select(sorted(held_set)),
                  "train": train.select([i for i in range(len(train)) if i not in held_set])}
    if settings["train_subset"]:
        if settings["train_subset"] > len(splits["train"]):
            raise UserError(f"train_subset={settings['train_subset']} exceeds the {len(splits['train'])} training rows")
        splits = {**splits, "train": stratified_take(splits["train"], settings["train_subset"], data_seed)}
    return splits


# -- tokenisation ------------------------------------------------------------------------------------
def build_tokenizer(train, settings: dict):
    """Word-level, lower-cased, vocabulary from the training split only; cached by content."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    key = hashlib.sha256(json.dumps([train._fingerprint, settings["min_freq"], settings["max_vocab"], 1]).encode())
    path = cache_dir() / "tokenizers" / f"{key.hexdigest()[:16]}.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace("<br />", " "), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    from bench.console import verbose

    # Its own bar counts against an unknown total ("6471 / 0"): shown only with -v.
    trainer = trainers.WordLevelTrainer(vocab_size=settings["max_vocab"], min_frequency=settings["min_freq"],
                                        special_tokens=SPECIALS, show_progress=verbose())
    tokenizer.train_from_iterator((batch["text"] for batch in train.iter(batch_size=1000)), trainer=trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return tokenizer


def encode_batch(batch: dict, tokenizer_json: str, max_length: int) -> dict:
    """datasets.map worker (module level, so its fingerprint is stable and the result cached)."""
    tokenizer = _tokenizer(tokenizer_json)
    ids = [encoding.ids[:max_length] or [SPECIALS.index("[UNK]")] for encoding in tokenizer.encode_batch(batch["text"])]
    return {"input_ids": ids, "length": [len(x) for x in ids]}


_TOKENIZERS: dict = {}


def _tokenizer(tokenizer_json: str):
    from tokenizers import Tokenizer

    if tokenizer_json not in _TOKENIZERS:
        _TOKENIZERS[tokenizer_json] = Tokenizer.from_str(tokenizer_json)
    return _TOKENIZERS[tokenizer_json]


def tokenize(splits: dict, tokenizer, max_length: int) -> dict:
    as_json = tokenizer.to_str()
    return {split: dataset.map(encode_batch, batched=True, batch_size=1000, remove_columns=["text"],
                               fn_kwargs={"tokenizer_json": as_json, "max_length": max_length},
                               desc=f"tokenising {split}")
            for split, dataset in splits.items()}


def load_text_classification(name: str, hub_id: str | None, hub_test_split: str, settings: dict,
                             data_seed: int) -> TaskData:
    raw = load_raw(name, hub_id, hub_test_split, settings)
    selected, classes = validate_and_select(raw, settings)
    splits = carve(selected, settings, data_seed)
    tokenizer = build_tokenizer(splits["train"], settings)
    tokenized = tokenize(splits, tokenizer, settings["max_length"])
    counts = Counter(splits["train"]["label"])
    total = sum(counts.values())
    # The memoryless accuracy baseline: always predict the train-majority class, scored on test (its
    # train share, e.g. 0.522 on SST-2, overstates what that predictor gets on test, 0.499).
    majority = counts.most_common(1)[0][0]
    test_labels = splits["test"]["label"]
    prior_entropy = -sum(c / total * math.log(c / total) for c in counts.values())
    vocabulary = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    lengths = tokenized["train"]["length"]
    return TaskData(splits=tokenized, input_size=tokenizer.get_vocab_size(), output_size=classes,
                    baseline=prior_entropy, vocabulary=vocabulary,
                    extra={"baseline/acc": sum(label == majority for label in test_labels) / max(len(test_labels), 1),
                           "data/train_examples": len(splits["train"]), "data/vocabulary": len(vocabulary),
                           "data/truncated_share": sum(n >= settings["max_length"] for n in lengths) / len(lengths)})
