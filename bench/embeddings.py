"""Word vectors: read GloVe / word2vec text files and match them to a task's vocabulary."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import UserError


def load_word_vectors(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read `word v1 v2 ... vD` lines (GloVe), with an optional `count dim` header (word2vec)."""
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


def match_vocabulary(vocabulary: list[str], words: list[str], vectors: np.ndarray, seed: int = 0
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


def embedding_for_task(task, data, config):
    """(embedding tensor, coverage) for the task's vocabulary from config.embedding_vectors."""
    import torch

    if task.input_kind != "tokens" or data.vocabulary is None:
        raise UserError(f"task {task.name} has no token vocabulary: embedding_vectors cannot apply")
    words, vectors = load_word_vectors(config.embedding_vectors)
    if vectors.shape[1] != config.embedding_size:
        raise UserError(f"embedding_size={config.embedding_size} but the vectors in {config.embedding_vectors} "
                        f"have dimension {vectors.shape[1]}; set embedding_size={vectors.shape[1]}")
    matrix, coverage = match_vocabulary(data.vocabulary, words, vectors, config.seed)
    return torch.from_numpy(matrix), coverage
