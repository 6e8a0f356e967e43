"""What a text-classification task is: its settings, their minimums, its training defaults and its
TaskSpec. Every text task module imports this at load time (`list`, `get_task`), so it stays light: the
data pipeline (`datasets`, `tokenizers`) is bench/text.py, imported once the task's data is loaded."""

from __future__ import annotations

from pathlib import Path

from bench.registry import MetricSpec, TaskData, TaskSpec
from bench.run_keys import Metric
from bench.text_files import check_text_data


def text_settings(text_column: str, max_length: int) -> dict:
    return {
        # Where the data is (see `find_files`): a folder with train/[validation/]test files, or with one
        # data file; or named files. Without any, the task's hub dataset.
        "data_dir": "",
        "train_file": "",
        "validation_file": "",
        "test_file": "",  # train_file alone: one file, test carved
        "dataset": "",  # a name for the experiment, run names and report (default: the data folder's name)
        "text_column": text_column,
        "label_column": "label",
        "label_map": "",  # e.g. neg:0,pos:1 or 1:0,2:1 (default: labels 0..K-1 as they are, strings in sorted order)
        "num_classes": 0,  # 0: from the training labels
        "max_length": max_length,  # tokens kept per text (longer texts are truncated at the end)
        # words: \w+ and punctuation runs; glove: also keeps the contractions GloVe knows (n't, 's, 're, ...)
        # as tokens; auto: glove when embedding_vectors is set, else words
        "tokenizer": "auto",
        "min_freq": 2,
        "max_vocab": 20000,  # vocabulary from the training split only...
        "vectors_vocab": 100000,  # ...plus, with embedding_vectors, the first N words of the vectors file
        "val_fraction": 0.1,  # stratified carve from train when the data has no validation split
        "test_fraction": 0.1,  # one file (or train + validation): stratified carve of the test split
        "folds": 0,  # K >= 2: stratified K-fold cross-validation, one run per fold (`train` runs them all)
        "fold": -1,  # the fold used as test (set by the cross-validation; -1 = every fold)
        "cv_merge": False,  # folds over train, validation and test files merged (else over one file only)
        "train_subset": 0,  # >0: a stratified subset of that many labeled training examples
        # packed: length buckets + pack_padded_sequence (exact for every network, but slow: ~25x slower
        #   than unpacked on CPU); bucketed: length buckets padded to the batch's longest, not packed
        #   (exact for unidirectional networks, the fastest on CPU and GPU); padded: random batches padded
        #   to max_length (the naive baseline); auto: packed for bidirectional networks, else bucketed.
        "batching": "auto",
    }


MINIMUMS = {"max_length": 1, "min_freq": 1, "max_vocab": 3, "num_classes": 0, "train_subset": 0}
MINIMUMS |= {"val_fraction": 0.0, "test_fraction": 0.0, "folds": 0, "fold": -1, "vectors_vocab": 0}
# Early stopping decides the length: small sets need many epochs (issue 14 reported SST-2 sentences
# gaining 3.4 points from 5 to 15 epochs), large ones stop after `patience` flat validation checks. It
# watches the validation loss (stop_on=loss), which turns when overfitting starts; the accuracy wanders on
# and a late lucky epoch of it picked an overfit model (issue 25). The best accuracy before the stop is kept.
TRAINING_DEFAULTS = {"lr": 2e-3, "hidden": 128, "embedding_size": 100, "batch_size": 64, "max_epochs": 30}
TRAINING_DEFAULTS |= {"patience": 3, "gradient_clip": 5.0, "stop_on": "loss"}


def text_task(
    name: str,
    hub_id: str | None,
    text_column: str,
    max_length: int,
    description: str,
    references: str = "",
    hub_test_split: str = "test",
) -> TaskSpec:
    """A sentiment/text-classification task: the network reads token ids, predicts one class.
    Without a hub dataset (the generic task), runs are named after the dataset (the data folder)."""

    def load_data(settings: dict, data_seed: int) -> TaskData:
        from bench.text import load_text_classification  # (lazy: datasets, tokenizers; finding a task stays fast)

        return load_text_classification(name, hub_id, hub_test_split, settings, data_seed)

    def check_data(settings: dict) -> None:
        check_text_data(name, hub_id, settings)

    return TaskSpec(
        name=name,
        description=description,
        input_kind="tokens",
        output_kind="per-sequence",
        loss="cross_entropy",
        settings=text_settings(text_column, max_length),
        minimums=dict(MINIMUMS),
        load_data=load_data,
        check_data=check_data,
        family="text",
        test_preset={"min_freq": 1},
        batching="by-length",
        metrics=(MetricSpec("acc", "accuracy"),),
        monitor=Metric.val("acc"),
        monitor_mode="max",
        training_defaults=dict(TRAINING_DEFAULTS),
        references=references,
        report_metric="acc",
        train_metrics=True,
        choices={"batching": ("auto", "packed", "bucketed", "padded"), "tokenizer": ("auto", "words", "glove")},
        dataset_name=dataset_name if hub_id is None else None,
    )


def dataset_name(settings: dict) -> str:
    """The data folder's name (or the file's name when the file lies in the working directory)."""
    if settings.get("dataset"):
        return settings["dataset"]
    if settings.get("data_dir"):
        return Path(settings["data_dir"]).resolve().name
    if settings.get("train_file"):
        path = Path(settings["train_file"]).resolve()
        return path.parent.name if path.parent != Path.cwd() else path.stem
    return ""
