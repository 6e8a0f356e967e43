"""Next-word language modelling ("the cat sat on the ___"): the objective that pretrains the
embeddings of the `embedding-pretrained` variant, and a task of its own (metric: perplexity).

The corpus is any text dataset or split (default: IMDB's 50,000 unlabeled reviews). Documents are
split 90/5/5 (seeded) before anything else; the vocabulary is built on the training documents only;
each split is one token stream cut into windows of seq_len+1 (inputs, and targets shifted by one)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench import safepoints
from bench.errors import UserError
from bench.paths import cache_dir
from bench.registry import DataSource, MetricSpec, TaskData, TaskSpec
from bench.run_keys import Metric
from bench.synthetic import arrays_to_dataset
from bench.text_files import FORMATS

CORPORA = {
    "imdb": "stanfordnlp/imdb",
    "sst2": "stanfordnlp/sst2",
    "rotten-tomatoes": "cornell-movie-review-data/rotten_tomatoes",
}
GENERATOR_VERSION = 1


def check_corpus_files(settings: dict) -> None:
    """The corpus and exclusion files named, before the stores and heavy imports (`load_corpus` reads them)."""

    for key in ("corpus_file", "exclude_file"):
        value = settings[key]
        if value and value != "none" and (not Path(value).is_file() or Path(value).suffix not in FORMATS):
            raise UserError(f"{key}={value}: expected an existing .parquet, .csv or .jsonl file")
    if not settings["corpus_file"] and settings["corpus"] not in CORPORA:
        raise UserError(
            f"unknown corpus {settings['corpus']!r}; choose one of: {', '.join(CORPORA)} "
            f"(or corpus_file=<.parquet|.csv|.jsonl>)"
        )


def load_corpus(settings: dict):
    import datasets  # (lazy: ~2 s; finding a task imports no datasets)

    hf_cache = str(cache_dir() / "hf")
    if settings["corpus_file"]:
        path = Path(settings["corpus_file"])
        if not path.is_file() or path.suffix not in FORMATS:
            raise UserError(f"corpus_file={path}: expected an existing .parquet, .csv or .jsonl file")
        return datasets.load_dataset(
            FORMATS[path.suffix], data_files={"train": str(path)}, split="train", cache_dir=hf_cache
        )
    if settings["corpus"] not in CORPORA:
        raise UserError(
            f"unknown corpus {settings['corpus']!r}; choose one of: {', '.join(CORPORA)} "
            f"(or corpus_file=<.parquet|.csv|.jsonl>)"
        )
    try:
        return datasets.load_dataset(CORPORA[settings["corpus"]], split=settings["corpus_split"], cache_dir=hf_cache)
    except Exception as error:
        raise UserError(
            f"cannot load {CORPORA[settings['corpus']]} ({str(error).splitlines()[0][:120]}); use a "
            f"local file: corpus_file=<path to a .parquet|.csv|.jsonl with a "
            f"{settings['text_column']} column>"
        ) from None


def exclusion_texts(settings: dict) -> set[str] | None:
    """Texts the corpus must not contain: the labeled test split of the same data (IMDB's unlabeled
    reviews repeat 270 of its test reviews verbatim), so embeddings pretrained on the corpus never saw
    a test text. exclude_file=<file> names it; default: the hub dataset's test split, or test.<ext>
    next to corpus_file; exclude_file=none turns it off. None when there is nothing to exclude."""
    import datasets  # (lazy: ~2 s; finding a task imports no datasets)

    choice = settings["exclude_file"]
    if choice == "none":
        return None
    if choice:
        path = Path(choice)
        if not path.is_file() or path.suffix not in FORMATS:
            raise UserError(f"exclude_file={path}: expected an existing .parquet, .csv or .jsonl file")
    elif settings["corpus_file"]:
        corpus = Path(settings["corpus_file"])
        path = next(
            (
                corpus.with_name(f"test{suffix}")
                for suffix in FORMATS
                if corpus.with_name(f"test{suffix}").is_file() and corpus.with_name(f"test{suffix}") != corpus
            ),
            None,
        )
        if path is None:
            return None
    else:
        try:
            test = datasets.load_dataset(CORPORA[settings["corpus"]], split="test", cache_dir=str(cache_dir() / "hf"))
        except Exception as error:
            raise UserError(
                f"cannot load the test split of {CORPORA[settings['corpus']]} to exclude it from the "
                f"corpus ({str(error).splitlines()[0][:100]}); set exclude_file=<file> or none"
            ) from None
        return {text.strip() for text in test[settings["text_column"]]}
    test = datasets.load_dataset(
        FORMATS[path.suffix], data_files={"test": str(path)}, split="test", cache_dir=str(cache_dir() / "hf")
    )
    if settings["text_column"] not in test.column_names:
        raise UserError(f"exclude_file={path} has no column {settings['text_column']!r}")
    return {text.strip() for text in test[settings["text_column"]]}


def keep_unseen(batch: dict, excluded: set[str]) -> list[bool]:
    return [text.strip() not in excluded for text in batch["text"]]


def windows(ids: np.ndarray, seq_len: int, max_tokens: int) -> dict[str, np.ndarray]:
    ids = ids[: max_tokens + 1] if max_tokens else ids
    count = (len(ids) - 1) // seq_len
    if count < 1:
        raise UserError(f"the corpus split is too short for one window of seq_len={seq_len}")
    inputs = ids[: count * seq_len].reshape(count, seq_len)
    targets = ids[1 : count * seq_len + 1].reshape(count, seq_len)
    return {"inputs": inputs, "targets": targets}


def load_data(settings: dict, data_seed: int) -> TaskData:
    from bench.text import build_tokenizer, tokenize  # (lazy: datasets, tokenizers)

    corpus = load_corpus(settings)
    column = settings["text_column"]
    if column not in corpus.column_names:
        raise UserError(
            f"the corpus has no column {column!r} (columns: {', '.join(corpus.column_names)}); set text_column=<name>"
        )
    corpus = corpus.select_columns([column])
    if column != "text":
        corpus = corpus.rename_column(column, "text")
    excluded, before = exclusion_texts(settings), len(corpus)
    if excluded:
        corpus = corpus.filter(
            keep_unseen, batched=True, fn_kwargs={"excluded": excluded}, desc="dropping labeled test texts"
        )
    safepoints.checkpoint()  # reading and filtering 50,000 reviews takes seconds
    if len(corpus) < 3:
        raise UserError("the corpus needs at least 3 documents (train, validation and test)")
    order = np.random.default_rng(data_seed).permutation(len(corpus))
    held = max(1, int(len(corpus) * 0.05))
    documents = {
        "validation": corpus.select(order[:held]),
        "test": corpus.select(order[held : 2 * held]),
        "train": corpus.select(order[2 * held :]),
    }
    tokenizer = build_tokenizer(documents["train"], settings)
    tokenized = tokenize(documents, tokenizer, max_length=10**9)
    limits = {
        "train": settings["max_tokens"],
        "validation": settings["max_tokens"] // 10,
        "test": settings["max_tokens"] // 10,
    }
    splits, train_ids = {}, None
    for split, dataset in tokenized.items():
        column_ids = dataset.data.column("input_ids").combine_chunks().values.to_numpy().astype(np.int32)
        splits[split] = arrays_to_dataset(windows(column_ids, settings["seq_len"], limits[split]))
        if split == "train":
            train_ids = column_ids[: limits["train"] + 1]
    counts = np.bincount(train_ids, minlength=tokenizer.get_vocab_size()).astype(np.float64)
    probabilities = counts[counts > 0] / counts.sum()
    unigram_entropy = float(-(probabilities * np.log(probabilities)).sum())  # best loss ignoring the context
    vocabulary = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    return TaskData(
        splits=splits,
        input_size=tokenizer.get_vocab_size(),
        output_size=tokenizer.get_vocab_size(),
        baseline=unigram_entropy,
        vocabulary=vocabulary,
        extra={
            Metric.baseline("perplexity"): math.exp(unigram_entropy),
            Metric.data("train_tokens"): int(len(train_ids)),
            Metric.data("vocabulary"): len(vocabulary),
            Metric.data("excluded_test_documents"): before - len(corpus),
        },
        source=corpus_source(settings),
    )


def corpus_source(settings: dict) -> DataSource:
    """Where `load_corpus` reads: the corpus file, else the hub corpus."""
    if settings["corpus_file"]:
        return DataSource(files={"train": str(Path(settings["corpus_file"]).resolve())})
    return DataSource(hub_id=CORPORA[settings["corpus"]])


TASK = TaskSpec(
    name="next-word",
    description="next-word language model over a text corpus; metric perplexity",
    input_kind="tokens",
    output_kind="per-step",
    loss="cross_entropy",
    settings={
        "corpus": "imdb",
        "corpus_split": "unsupervised",
        "corpus_file": "",
        "exclude_file": "",
        "text_column": "text",
        "seq_len": 35,
        "max_tokens": 1_000_000,
        "min_freq": 2,
        "max_vocab": 10000,
    },
    minimums={"seq_len": 2, "max_tokens": 0, "min_freq": 1, "max_vocab": 3},
    load_data=load_data,
    check_data=check_corpus_files,
    family="language-model",
    test_preset={"seq_len": 6, "min_freq": 1},  # with a tiny corpus_file
    metrics=(MetricSpec("perplexity", "perplexity"),),
    training_defaults={
        "lr": 2e-3,
        "hidden": 256,
        "embedding_size": 100,
        "batch_size": 64,
        "max_epochs": 3,
        "patience": 1,
        "gradient_clip": 1.0,
    },
    references="Bengio et al. 2003; Mikolov et al. 2010",
    report_metric="perplexity",
)
