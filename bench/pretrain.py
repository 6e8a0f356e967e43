"""`make pretrain-embeddings CORPUS=imdb`: train a next-word language model, then export its
embedding matrix with the vocabulary (GloVe text format) as an MLflow artifact and a local file that
`embedding_vectors=` accepts."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl

from bench import tracking
from bench.config import RunConfig
from bench.embeddings import write_word_vectors
from bench.paths import ROOT
from bench.train import train

EMBEDDINGS_DIR = ROOT / "embeddings"


class ExportEmbeddings(pl.Callback):
    """After the test pass (which restored the best-validation weights), write the embeddings."""

    def __init__(self, corpus: str, out_dir: Path | None = None) -> None:
        self.corpus, self.out_dir = corpus, out_dir or EMBEDDINGS_DIR  # looked up now: tests redirect it
        self.path: Path | None = None

    def on_test_end(self, trainer, pl_module) -> None:
        run_id = trainer.logger.run_id
        vocabulary = trainer.datamodule.data.vocabulary
        matrix = pl_module.net.encoder.weight.detach().float().cpu().numpy()
        self.path = self.out_dir / f"{self.corpus}-{run_id[:8]}.txt"
        words = write_word_vectors(self.path, vocabulary, matrix)
        client = tracking.client()
        client.log_artifact(run_id, str(self.path), "embeddings")
        client.set_tag(run_id, tracking.Tag.EMBEDDINGS_FILE, str(self.path))
        tracking.log_metrics(run_id, {"embedding/words": words})


def corpus_label(settings: dict) -> str:
    """How classifiers name these vectors (embedding_vectors=lm:<label>): corpus and split or file,
    e.g. imdb-unsupervised for the hub split and for ../shared/data/imdb/unsupervised.parquet alike."""
    source = Path(settings["corpus_file"]).stem if settings["corpus_file"] else settings["corpus_split"]
    return f"{settings['corpus']}-{source}"


def pretrain_embeddings(config: RunConfig, progress: bool = True) -> tuple[Path, object]:
    corpus = corpus_label(config.task_settings)
    export = ExportEmbeddings(corpus)
    result = train(
        config,
        run_name=f"next-word/{corpus}/{config.cell}/pretrain",
        callbacks=[export],
        tags={tracking.Tag.STAGE: tracking.Stage.PRETRAIN, tracking.Tag.CORPUS: corpus},
        progress=progress,
    )
    return export.path, result
