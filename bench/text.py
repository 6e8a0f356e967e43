"""The text tasks' data pipeline, shared by every sentiment task (and any local dataset): load (hub or
local parquet/csv/jsonl) -> validate -> carve validation / labeled subset -> word-level tokenizer trained
on train only -> `datasets.map(batched=True)` (cached) -> TaskData. What a text task is (settings,
TaskSpec) is bench/text_task.py, which imports this module only once a task's data is loaded."""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

from bench import safepoints
from bench.console import verbose
from bench.embeddings import load_vector_words, token_ids
from bench.errors import UserError, first_line
from bench.paths import cache_dir
from bench.registry import DataSource, TaskData
from bench.run_keys import Metric, Tag
from bench.text_files import (
    FORMATS,
    NO_TEST,
    NO_VALIDATION,
    SPLITS,
    check_integer_labels,
    find_files,
    held_rows,
    label_key,
    label_mapping,
    nothing_left,
    subset_too_large,
)

SPECIALS = ["[PAD]", "[UNK]"]  # [PAD] is id 0


# -- loading -----------------------------------------------------------------------------------------
def read_file(split: str, path: Path, hf_cache: str):
    if path.stat().st_size == 0:
        raise UserError(f"the {split} split is empty ({path})")
    if path.suffix == ".parquet":
        try:
            rows = pq.read_metadata(path).num_rows
        except Exception as error:
            raise UserError(f"cannot read {path}: {first_line(error)}") from None
        if rows == 0:
            raise UserError(f"the {split} split is empty ({path})")
    try:
        return datasets.load_dataset(
            FORMATS[path.suffix], data_files={split: str(path)}, split=split, cache_dir=hf_cache
        )
    except Exception as error:
        if "corresponds to no data" in str(error):
            raise UserError(f"the {split} split is empty ({path})") from None
        raise UserError(f"cannot read {path}: {first_line(error)}") from None


def load_raw(name: str, hub_id: str | None, hub_test_split: str, settings: dict) -> dict:
    files = find_files(settings)
    hf_cache = str(cache_dir() / "hf")
    if files:
        return {split: read_file(split, path, hf_cache) for split, path in files.items()}
    if hub_id is None:
        raise UserError(
            f"task {name} reads local files only: set data_dir=<folder> (train/[validation/]test files, "
            "or one data file) or train_file=<path> [test_file=<path>]"
        )
    try:
        hub = datasets.load_dataset(hub_id, cache_dir=hf_cache)
    except Exception as error:
        raise UserError(
            f"cannot load {hub_id} from the Hugging Face hub ({first_line(error, 120)}); "
            f"use local files: data_dir=<folder with train/test .parquet|.csv|.jsonl>"
        ) from None
    # The hub's SST-2 hides its test labels: its validation split is then the test split.
    raw = {"train": hub["train"], "test": hub[hub_test_split]}
    if "validation" in hub and hub_test_split != "validation":
        raw["validation"] = hub["validation"]
    return raw


def data_source(hub_id: str | None, settings: dict) -> DataSource:
    """Where `load_raw` reads: the local files by split, else the hub dataset."""
    files = find_files(settings)
    if files:
        return DataSource(files={split: str(path.resolve()) for split, path in files.items()})
    return DataSource(hub_id=hub_id or "")


def check_splits(raw: dict, columns: dict[str, str], label: str, classes: int = 0) -> int:
    """Every split has the columns ({setting: column name}) and rows, and integer labels 0..K-1, where K
    is `classes` or, when 0, the largest training label + 1, every class occurring in train.
    Returns K. (Text and image tasks alike.)"""
    for split, dataset in raw.items():
        check_columns(split, dataset, columns)
        if len(dataset) == 0:
            raise UserError(f"the {split} split is empty")
    labels = {split: dataset.unique(label) for split, dataset in raw.items()}
    for split, values in labels.items():
        strange = [v for v in values if not isinstance(v, int) or isinstance(v, bool)]
        if strange:
            raise UserError(f"{split} split has labels that are not integers: {sorted(map(repr, strange))[:5]}")
    return check_integer_labels(labels, classes)


def check_columns(split: str, dataset, columns: dict[str, str]) -> None:
    for role, column in columns.items():
        if column not in dataset.column_names:
            raise UserError(
                f"{split} split has no column {column!r} (columns: {', '.join(dataset.column_names)});"
                f" set {role}=<name>"
            )


def encode_labels(batch: dict, mapping: dict[str, int]) -> dict:
    """datasets.map worker: class names (or other label values) -> ids."""
    return {"label": [mapping[label_key(value)] for value in batch["label"]]}


def unique_labels(dataset) -> list:
    try:
        return dataset.unique("label")
    except Exception:  # e.g. datasets' Json feature (a jsonl column of mixed types) has no Arrow kernel
        values = list(dataset["label"])
        if not all(isinstance(v, (int, float, str)) for v in values):
            raise UserError("labels must be integers or class names (found lists or mappings)") from None
        return list(dict.fromkeys(values))


def label_ids(features):
    features = features.copy()
    features["label"] = datasets.Value("int64")
    return features


def has_text(batch: dict) -> list[bool]:
    """datasets.filter worker: rows with a non-blank text."""
    return [isinstance(text, str) and bool(text.strip()) for text in batch["text"]]


def drop_blank_texts(splits: dict) -> tuple[dict, dict[str, int]]:
    """Rows whose text is missing or blank are dropped (counted per split); a split left empty is an error."""
    kept, dropped = {}, {}
    for split, dataset in splits.items():
        kept[split] = dataset.filter(has_text, batched=True, batch_size=1000, desc=f"dropping blank texts ({split})")
        dropped[split] = len(dataset) - len(kept[split])
        if len(kept[split]) == 0:
            raise UserError(f"the {split} split is empty after dropping {dropped[split]} blank or missing texts")
    return kept, dropped


def validate_and_select(raw: dict, settings: dict) -> tuple[dict, int, dict]:
    """Keep text and label, drop blank texts, map labels to ids. Returns (splits, number of classes,
    notes: the label mapping and the blank rows dropped per split)."""
    text, label = settings["text_column"], settings["label_column"]
    for split, dataset in raw.items():
        check_columns(split, dataset, {"text_column": text, "label_column": label})
    selected = {
        split: dataset.select_columns([text, label]).rename_columns({text: "text", label: "label"})
        for split, dataset in raw.items()
    }
    for split, dataset in selected.items():
        missing = sum(value is None for value in dataset["label"])
        if missing:
            raise UserError(f"{split} split has {missing} rows without a label: fill or remove them")
    selected, dropped = drop_blank_texts(selected)
    mapping, classes = label_mapping({split: unique_labels(dataset) for split, dataset in selected.items()}, settings)
    if mapping is not None:
        selected = {
            split: dataset.map(
                encode_labels,
                batched=True,
                fn_kwargs={"mapping": mapping},
                features=label_ids(dataset.features),
                desc=f"label ids ({split})",
            )
            for split, dataset in selected.items()
        }
    return selected, classes, {"label_map": mapping, "dropped": dropped}


def stratified_rows(labels, per_class, seed: int) -> list[int]:
    """Row indices drawn without replacement from every class (in sorted class order, one seeded
    generator): `per_class(rows of the class)` rows of each."""
    rng = np.random.default_rng(seed)
    chosen = []
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        chosen.extend(rng.choice(rows, size=per_class(len(rows)), replace=False).tolist())
    return chosen


def stratified_take(dataset, size: int, seed: int):
    """A seeded stratified subset of `size` rows (proportional per class)."""
    labels = np.asarray(dataset["label"])
    chosen = stratified_rows(labels, lambda rows: min(max(1, round(size * rows / len(labels))), rows), seed)
    return dataset.select(sorted(chosen[:size] if len(chosen) > size else chosen))


def split_off(dataset, fraction: float, seed: int, what: str) -> tuple:
    """(rest, held): a stratified seeded share `fraction` of every class held out."""
    if not 0 < fraction < 1:
        raise UserError(what)
    held_set = set(stratified_rows(np.asarray(dataset["label"]), lambda rows: held_rows(rows, fraction), seed))
    rest = [i for i in range(len(dataset)) if i not in held_set]
    if not rest:
        raise UserError(nothing_left(what, len(dataset)))
    return dataset.select(rest), dataset.select(sorted(held_set))


def fold_split(pool, folds: int, fold: int, seed: int) -> tuple:
    """(rest, test) for fold `fold` of a stratified, seeded K-fold partition of `pool` (scikit-learn's)."""
    from sklearn.model_selection import StratifiedKFold  # (lazy: scikit-learn imports scipy: 2-3.5 s, for folds only)

    labels = np.asarray(pool["label"])
    values, counts = np.unique(labels, return_counts=True)
    if counts.min() < folds:
        raise UserError(
            f"folds={folds}: class {values[counts.argmin()]} has only {counts.min()} examples; "
            f"use at most folds={max(int(counts.min()), 2)}"
        )
    partition = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels)
    rest, test = list(partition)[fold]
    return pool.select(sorted(rest.tolist())), pool.select(sorted(test.tolist()))


def carve(splits: dict, settings: dict, data_seed: int) -> tuple[dict, str]:
    """Test (one file; or one fold of K) and validation from train when missing (stratified, seeded);
    then the labeled subset, if asked. A given test split is never touched. Returns (splits, a
    sentence saying how they were made, logged with the run)."""
    folds, seed = settings.get("folds", 0), data_seed
    given = ", ".join(s for s in SPLITS if s in splits)
    if folds == 1:
        raise UserError("folds=1 is not cross-validation: set folds=0 (off) or folds=K with K >= 2 (e.g. 10)")
    if folds:
        if not 0 <= settings["fold"] < folds:
            raise UserError(
                f"fold={settings['fold']} is out of range for folds={folds}: 0..{folds - 1} "
                "(train runs every fold itself; set fold only to run one)"
            )
        if len(splits) > 1 and not settings["cv_merge"]:
            raise UserError(
                f"folds={folds} cross-validates over one file, but the data has {given} splits: "
                "set cv_merge=true to merge them into one pool, or give one file"
            )
        pool = datasets.concatenate_datasets([splits[s] for s in SPLITS if s in splits])
        rest, test = fold_split(pool, folds, settings["fold"], seed)
        # The fold index is the run's own tag: the layout is the same sentence for every fold.
        layout = (
            f"{folds}-fold cross-validation over {'the merged ' + given + ' splits' if len(splits) > 1 else 'one file'}"
            f" ({len(pool)} rows; stratified, data_seed={seed}): each fold is the test split once"
        )
        splits = {"train": rest, "test": test}
    elif "test" not in splits:
        rest, test = split_off(
            splits["train"],
            settings.get("test_fraction", 0.0),
            seed + 1,
            NO_TEST.format(given=given),
        )
        layout = (
            f"{'train and validation files' if len(splits) > 1 else 'one file'}: test carved from "
            f"{'train' if len(splits) > 1 else 'it'} (test_fraction={settings['test_fraction']}, stratified, "
            f"data_seed={seed})"
        )
        splits = {**splits, "train": rest, "test": test}
    else:
        layout = f"{given} splits as given"
    if "validation" not in splits:
        train, validation = split_off(
            splits["train"],
            settings["val_fraction"],
            seed,
            NO_VALIDATION,
        )
        splits = {**splits, "train": train, "validation": validation}
        layout += f"; validation carved from the training rows (val_fraction={settings['val_fraction']}, stratified)"
    if settings["train_subset"]:
        if settings["train_subset"] > len(splits["train"]):
            raise UserError(subset_too_large(settings["train_subset"], len(splits["train"])))
        splits = {**splits, "train": stratified_take(splits["train"], settings["train_subset"], data_seed)}
        layout += f"; a stratified subset of {settings['train_subset']} training rows"
    return splits, layout


# -- tokenisation ------------------------------------------------------------------------------------
# GloVe's corpus was tokenised the Penn Treebank way: "don't" -> do n't, "it's" -> it 's. The plain word
# pattern would cut them into `n ' t` and `' s`, tokens without a vector.
GLOVE_PATTERN = r"\w+(?=n't\b)|n't\b|'(?:s|re|ve|m|ll|d)\b|\w+|[^\w\s]"


def tokenizer_mode(settings: dict) -> str:
    mode = settings.get("tokenizer", "words")
    if mode == "auto":
        return "glove" if settings.get("embedding_vectors") else "words"
    return mode


def new_tokenizer(mode: str, vocab: dict[str, int] | None = None):
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace("<br />", " "), normalizers.Lowercase()])
    if mode == "glove":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(GLOVE_PATTERN), behavior="isolated")]
        )
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer


def train_vocabulary(train, mode: str, min_freq: int, size: int) -> list[str]:
    """The training split's words, most frequent first (specials first)."""
    tokenizer = new_tokenizer(mode)
    # Its own bar counts against an unknown total ("6471 / 0"): shown only with -v.
    trainer = trainers.WordLevelTrainer(
        vocab_size=size, min_frequency=min_freq, special_tokens=SPECIALS, show_progress=verbose()
    )
    tokenizer.train_from_iterator(texts(train), trainer=trainer)
    return [word for word, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]


def texts(dataset):
    for batch in dataset.iter(batch_size=1000):
        safepoints.checkpoint()  # reading IMDB's 22,500 training reviews takes seconds
        yield batch["text"]


def build_tokenizer(train, settings: dict):
    """Word-level, lower-cased. The vocabulary: the training split's words (min_freq, max_vocab); with
    embedding_vectors also the rarer training words the vectors know and the vectors file's first
    `vectors_vocab` words, so validation and test words get their pretrained vector without the
    vocabulary ever seeing validation or test text. Cached by content."""
    mode, vectors = tokenizer_mode(settings), settings.get("embedding_vectors", "")
    limit = settings.get("vectors_vocab", 0) if vectors else 0
    key = hashlib.sha256(
        json.dumps([train._fingerprint, settings["min_freq"], settings["max_vocab"], mode, vectors, limit, 2]).encode()
    )
    path = cache_dir() / "tokenizers" / f"{key.hexdigest()[:16]}.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    words = train_vocabulary(train, mode, settings["min_freq"], settings["max_vocab"])
    if vectors:
        known = load_vector_words(vectors)
        rare = train_vocabulary(train, mode, 1, 10**9)
        chosen = set(words)
        known_set = set(known)
        extra = [w for w in rare if w not in chosen and w in known_set]
        chosen.update(extra)
        extra += [w for w in known[:limit] if w not in chosen]
        words = words + list(dict.fromkeys(extra))
    tokenizer = new_tokenizer(mode, {word: index for index, word in enumerate(words)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return tokenizer


def encode_batch(batch: dict, tokenizer_json: str, max_length: int) -> dict:
    """datasets.map worker (module level, so its fingerprint is stable and the result cached: datasets hashes
    such a worker by its module and name, `bench.text.encode_batch`, like `has_text` and `encode_labels`; one
    moved or renamed misses every cache made before). At a signal it stops with KeyboardInterrupt, on which
    datasets deletes its half-written cache file (`tokenize` turns it back into the interrupt)."""
    if safepoints.received():
        raise KeyboardInterrupt
    tokenizer = _tokenizer(tokenizer_json)
    ids = [encoding.ids[:max_length] or [SPECIALS.index("[UNK]")] for encoding in tokenizer.encode_batch(batch["text"])]
    return {"input_ids": ids, "length": [len(x) for x in ids]}


_TOKENIZERS: dict = {}


def _tokenizer(tokenizer_json: str):
    if tokenizer_json not in _TOKENIZERS:
        _TOKENIZERS[tokenizer_json] = Tokenizer.from_str(tokenizer_json)
    return _TOKENIZERS[tokenizer_json]


def tokenize(splits: dict, tokenizer, max_length: int) -> dict:
    as_json = tokenizer.to_str()
    try:
        return {
            split: dataset.map(
                encode_batch,
                batched=True,
                batch_size=1000,
                remove_columns=["text"],
                fn_kwargs={"tokenizer_json": as_json, "max_length": max_length},
                desc=f"tokenising {split}",
            )
            for split, dataset in splits.items()
        }
    except KeyboardInterrupt:
        safepoints.checkpoint()
        raise


def majority_baselines(train_labels, validation_labels, test_labels) -> dict[str, float]:
    """The memoryless accuracy baseline: always predict the train-majority class, scored on test
    (`baseline/acc`; its train share, 0.522 on SST-2, overstates what that predictor gets on test, 0.499)
    and on validation (`baseline/val_acc`: what "has a run left the baseline?" compares validation with)."""
    majority = Counter(list(train_labels)).most_common(1)[0][0]

    def share(labels) -> float:
        labels = list(labels)
        return sum(label == majority for label in labels) / max(len(labels), 1)

    return {Metric.baseline("acc"): share(test_labels), Metric.validation_baseline("acc"): share(validation_labels)}


def load_text_classification(
    name: str, hub_id: str | None, hub_test_split: str, settings: dict, data_seed: int
) -> TaskData:
    raw = load_raw(name, hub_id, hub_test_split, settings)
    selected, classes, notes = validate_and_select(raw, settings)
    safepoints.checkpoint()  # between the steps of data preparation (each up to 2 s on IMDB)
    splits, layout = carve(selected, settings, data_seed)
    safepoints.checkpoint()
    tokenizer = build_tokenizer(splits["train"], settings)
    tokenized = tokenize(splits, tokenizer, settings["max_length"])
    counts = Counter(splits["train"]["label"])
    total = sum(counts.values())
    prior_entropy = -sum(c / total * math.log(c / total) for c in counts.values())
    vocabulary = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    lengths = tokenized["train"]["length"]
    safepoints.checkpoint()
    extra = {
        **majority_baselines(splits["train"]["label"], splits["validation"]["label"], splits["test"]["label"]),
        Metric.data("vocabulary"): len(vocabulary),
        Metric.data("truncated_share"): sum(n >= settings["max_length"] for n in lengths) / len(lengths),
    }
    unknown = SPECIALS.index("[UNK]")
    for split, dataset in tokenized.items():
        extra[Metric.data(f"{split}_examples")] = len(dataset)
        extra[Metric.data(f"{split}_unknown_token_share")] = float(np.mean(token_ids(dataset) == unknown))
    for split, count in notes["dropped"].items():
        extra[Metric.data(f"{split}_blank_texts_dropped")] = count
    dropped = {split: count for split, count in notes["dropped"].items() if count}
    if dropped:
        print(
            f"note: dropped blank or missing texts: {', '.join(f'{s} {n}' for s, n in dropped.items())}",
            file=sys.stderr,
        )
    mapping = notes["label_map"]
    notes = {Tag.DATA_LAYOUT: layout, Tag.TOKENIZER: tokenizer_mode(settings)}
    if mapping is not None:
        notes[Tag.LABEL_MAP] = ",".join(
            f"{label}:{index}" for label, index in sorted(mapping.items(), key=lambda i: i[1])
        )
    return TaskData(
        splits=tokenized,
        input_size=tokenizer.get_vocab_size(),
        output_size=classes,
        baseline=prior_entropy,
        vocabulary=vocabulary,
        extra=extra,
        notes=notes,
        source=data_source(hub_id, settings),
    )
