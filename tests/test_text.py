"""The text path: local files, vocabulary on train only, carving, bucketing and packing, bad input."""

import numpy as np
import pytest
import torch

from bench import text
from bench.cli import main
from bench.config import resolve_config
from bench.convergence import left_baseline_step
from bench.data import BucketBatchSampler, TaskDataModule, TokenSequences
from bench.errors import UserError
from bench.models import NetConfig, RecurrentNet
from bench.registry import get_task
from tests.text_helpers import LOCAL, make_dataset, make_rows, write_split


def load(folder, **settings):
    config = resolve_config("text-classification", "simple", "lstm", {"data_dir": str(folder), **LOCAL, **settings})
    return get_task("text-classification").load_data(config.task_settings, 0), config


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_local_files_in_every_format_load_through_the_same_path(tmp_path, fmt):
    data, _ = load(make_dataset(tmp_path / fmt, fmt))
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 400, "validation": 100, "test": 100}
    assert data.output_size == 2 and data.input_size == len(data.vocabulary)
    assert set(data.splits["train"].column_names) == {"input_ids", "length", "label"}


def test_vocabulary_is_built_on_train_only(tmp_path):
    folder = make_dataset(tmp_path / "d")
    write_split(folder, "test", [{"review": "zyzzyva good", "stars": 1}], "parquet")
    data, _ = load(folder)
    assert "zyzzyva" not in data.vocabulary and "good" in data.vocabulary
    assert data.splits["test"][0]["input_ids"][0] == data.vocabulary.index("[UNK]")


def test_the_datasets_workers_keep_the_module_and_names_their_caches_are_keyed_by():
    """datasets hashes a module-level map/filter worker by module and name, not code: one moved or renamed
    would miss every split cached before (and change the runs' dataset fingerprints)."""
    workers = ("encode_batch", "has_text", "encode_labels")
    assert {name: getattr(text, name).__module__ for name in workers} == dict.fromkeys(workers, "bench.text")


def test_multiclass_labels_and_max_length(tmp_path):
    folder = tmp_path / "m"
    for split, seed in (("train", 1), ("test", 2)):
        write_split(folder, split, make_rows(300, seed, classes=4), "jsonl")
    data, _ = load(folder, max_length=5)
    assert data.output_size == 4
    assert max(data.splits["train"]["length"]) == 5


def test_missing_validation_is_carved_stratified_from_train_and_test_is_untouched(tmp_path):
    data, _ = load(make_dataset(tmp_path / "d", validation=False), val_fraction=0.2)
    assert len(data.splits["validation"]) == 80 and len(data.splits["train"]) == 320
    assert len(data.splits["test"]) == 100
    train_share = np.mean(data.splits["train"]["label"])
    assert abs(np.mean(data.splits["validation"]["label"]) - train_share) < 0.05


def test_labeled_subset_is_stratified_and_seeded(tmp_path):
    data, _ = load(make_dataset(tmp_path / "d"), train_subset=100)
    again, _ = load(make_dataset(tmp_path / "d"), train_subset=100)
    assert len(data.splits["train"]) == 100
    assert data.splits["train"]["input_ids"] == again.splits["train"]["input_ids"]
    assert len(data.splits["validation"]) == 100  # validation keeps its size


def test_bucket_sampler_covers_every_example_once_with_similar_lengths():
    lengths = np.random.default_rng(0).integers(1, 500, size=1000)
    sampler = BucketBatchSampler(lengths, batch_size=32, shuffle=True, seed=1)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.2 * np.ptp(lengths)  # random batches would spread over the whole range
    assert list(BucketBatchSampler(lengths, 32, True, seed=1)) == batches  # reproducible
    assert list(sampler) != batches  # a new order next epoch


PACKED_SHAPES = [(1, False, "last"), (2, True, "last"), (1, True, "mean"), (2, False, "max")]


@pytest.mark.parametrize(
    "cell,layers,bidirectional,pooling",
    [
        # Each shape with one cell in the fast suite (every cell at least once); the rest in the slow one.
        pytest.param(cell, *shape, marks=() if (i % 3) == ["rnn", "lstm", "gru"].index(cell) else pytest.mark.slow)
        for i, shape in enumerate(PACKED_SHAPES)
        for cell in ["rnn", "lstm", "gru"]
    ],
)
def test_packed_batches_give_the_logits_of_unpadded_single_sequences(tmp_path, cell, layers, bidirectional, pooling):
    data, config = load(make_dataset(tmp_path / "d"))
    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(
            input_kind="tokens",
            input_size=data.input_size,
            output_size=2,
            output_kind="per-sequence",
            cell=cell,
            layers=layers,
            bidirectional=bidirectional,
            hidden=8,
            embedding_size=6,
            pooling=pooling,
        )
    ).eval()
    sequences = TokenSequences.from_dataset(data.splits["train"])
    batch = sequences[list(range(16))]
    assert batch["inputs"].shape[1] == int(batch["lengths"].max()) and (batch["inputs"] == 0).any()
    with torch.no_grad():
        batched = net(batch["inputs"], batch["lengths"])
        single = torch.cat([net(sequences[[i]]["inputs"]) for i in range(16)])
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pad_to", [None, 64])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_unpacked_padded_batches_read_the_last_valid_step_of_a_unidirectional_net(tmp_path, pad_to, pooling):
    data, _ = load(make_dataset(tmp_path / "d"))
    torch.manual_seed(0)
    net = RecurrentNet(
        NetConfig(
            input_kind="tokens",
            input_size=data.input_size,
            output_size=2,
            output_kind="per-sequence",
            cell="gru",
            hidden=8,
            embedding_size=6,
            pooling=pooling,
            pack=False,
        )
    ).eval()
    batch = TokenSequences.from_dataset(data.splits["train"], pad_to=pad_to)[list(range(8))]
    assert (batch["inputs"].shape[1] == 64) if pad_to else (batch["inputs"].shape[1] == int(batch["lengths"].max()))
    with torch.no_grad():
        expected = torch.cat([net(TokenSequences.from_dataset(data.splits["train"])[[i]]["inputs"]) for i in range(8)])
        torch.testing.assert_close(net(batch["inputs"], batch["lengths"]), expected, rtol=1e-4, atol=1e-5)


def test_batching_policy_packs_only_bidirectional_nets_unless_asked():
    from bench.train import packs_sequences

    cpu = resolve_config("sst2", "simple", "lstm", {"accelerator": "cpu"})
    assert not packs_sequences(cpu)  # unidirectional: bucketed, not packed
    assert packs_sequences(resolve_config("sst2", "bidirectional", "lstm", {"accelerator": "cpu"}))
    assert packs_sequences(resolve_config("sst2", "simple", "lstm", {"batching": "packed"}))
    with pytest.raises(ValueError, match="unidirectional"):
        RecurrentNet(
            NetConfig(
                input_kind="tokens",
                input_size=5,
                output_size=2,
                output_kind="per-sequence",
                bidirectional=True,
                pack=False,
            )
        )


def test_datamodule_batches_text_by_length_buckets(tmp_path):
    task = get_task("text-classification")
    config = resolve_config(
        "text-classification",
        "simple",
        "gru",
        {"data_dir": str(make_dataset(tmp_path / "d")), **LOCAL, "batch_size": 16},
    )
    module = TaskDataModule(task, config.task_settings, 0, 16, 0)
    module.setup()
    batch = next(iter(module.train_dataloader()))
    assert set(batch) == {"inputs", "targets", "lengths"} and batch["inputs"].shape[0] == 16
    assert batch["inputs"].shape[1] == int(batch["lengths"].max())


BAD = {
    "missing text column": ({"text_column": "body"}, "train split has no column 'body'"),
    "missing label column": ({"label_column": "y"}, "train split has no column 'y'"),
    "label out of range": ({"num_classes": 1}, "labels outside 0..0"),
    "empty split": ("empty", "the test split is empty"),
    "unknown batching": ({"batching": "sorted"}, "choose one of: auto, packed, bucketed, padded"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_text_input_is_one_line_and_exit_2_with_nothing_written(tmp_path, case, monkeypatch, capsys):
    settings, message = BAD[case]
    folder = make_dataset(tmp_path / "d")
    if settings == "empty":
        write_split(folder, "test", [], "jsonl")
        (folder / "test.parquet").unlink()
        settings = {}
    args = [f"{k}={v}" for k, v in {"data_dir": str(folder), **LOCAL, **settings}.items()]
    store = tmp_path / "fresh.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    # In-process (the CLI's own entry point): a subprocess would pay Lightning's import each time.
    returncode = main(["train", "--task", "text-classification", *args])
    stderr = capsys.readouterr().err
    assert returncode == 2, stderr[-2000:]
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], stderr[-2000:]
    assert not store.exists()


def test_hub_without_network_names_the_override():
    config = resolve_config("imdb", "simple", "lstm")
    with pytest.raises(UserError, match="stanfordnlp/imdb.*use local files: data_dir="):
        get_task("imdb").load_data(config.task_settings, 0)


@pytest.mark.slow
def test_language_model_pretraining_round_trip_into_a_classifier(tmp_path, monkeypatch):
    """Train a tiny next-word LM, export its embeddings, load them into a classifier: the rows of
    words both vocabularies share are equal, and the coverage is logged."""
    from bench import pretrain, tracking
    from bench.train import build_network, train

    corpus = tmp_path / "corpus.jsonl"
    write_split(tmp_path, "corpus", [{"text": r["review"]} for r in make_rows(300, 7)], "jsonl")
    monkeypatch.setattr(pretrain, "EMBEDDINGS_DIR", tmp_path / "embeddings")
    lm_config = resolve_config(
        "next-word",
        "simple",
        "gru",
        {
            "corpus_file": str(corpus),
            "seq_len": 8,
            "min_freq": 1,
            "max_epochs": 1,
            "hidden": 16,
            "embedding_size": 12,
            "batch_size": 16,
        },
    )
    vectors_path, lm = pretrain.pretrain_embeddings(lm_config, progress=False)
    assert vectors_path.exists() and "test/perplexity" in lm.test_metrics
    lm_run = tracking.client().get_run(lm.run_id)
    assert "embeddings" in {a.path for a in tracking.client().list_artifacts(lm.run_id)}
    assert lm_run.data.metrics["baseline/perplexity"] > 1
    from bench.embeddings import load_word_vectors
    from bench.results import pin_vectors

    folder = make_dataset(tmp_path / "d")
    knobs = {"data_dir": str(folder), **LOCAL, "embedding_size": 12, "max_epochs": 1}

    def classifier_config(vectors):
        return resolve_config(
            "text-classification", "embedding-pretrained", "lstm", {**knobs, "embedding_vectors": vectors}
        )

    # Sweeps name the source (the corpus-file stem); it is pinned to one pretraining run at the edge,
    # and loading or building never queries MLflow for it.
    pinned = pin_vectors(classifier_config("lm:imdb-corpus"))
    assert pinned.embedding_vectors == f"lm:imdb-corpus@{lm.run_id}"
    named_words, named = load_word_vectors(pinned.vectors_file)
    path_words, by_path = load_word_vectors(vectors_path)
    assert named_words == path_words and (named == by_path).all()
    with pytest.raises(ValueError, match="not pinned"):
        load_word_vectors("lm:imdb-corpus")
    with pytest.raises(UserError, match="no finished pretraining run on corpus 'wiki-x'"):
        pin_vectors(classifier_config("lm:wiki-x"))
    config = resolve_config(
        "text-classification",
        "embedding-pretrained",
        "lstm",
        {
            "data_dir": str(folder),
            **LOCAL,
            "embedding_vectors": str(vectors_path),
            "embedding_size": 12,
            "max_epochs": 1,
        },
    )
    data = get_task("text-classification").load_data(config.task_settings, 0)
    classifier = build_network(get_task("text-classification"), config, data)
    lm_words = dict(line.split(" ", 1) for line in vectors_path.read_text().splitlines())
    shared = [w for w in data.vocabulary if w in lm_words]
    assert len(shared) >= 10
    for word in shared:
        expected = torch.tensor([float(v) for v in lm_words[word].split()])
        torch.testing.assert_close(classifier.encoder.weight[data.vocabulary.index(word)], expected)
    result = train(config, progress=False)
    coverage = tracking.client().get_run(result.run_id).data.metrics["embedding/coverage"]
    assert coverage == pytest.approx(len(shared) / len(data.vocabulary))
    named_run = tracking.client().get_run(train(classifier_config("lm:imdb-corpus"), progress=False).run_id)
    assert named_run.data.params["embedding_vectors"] == f"lm:imdb-corpus@{lm.run_id}"
    assert named_run.data.tags[tracking.Tag.EMBEDDING_SOURCE_RUN] == lm.run_id
    assert named_run.data.metrics["embedding/coverage"] == pytest.approx(coverage)


def test_malformed_vectors_file_is_a_user_error(tmp_path):
    from bench.embeddings import load_word_vectors

    bad = tmp_path / "bad.txt"
    bad.write_text("good 0.1 0.2\nbad 0.3 oops\n")
    with pytest.raises(UserError, match="bad.txt:2: malformed vectors line"):
        load_word_vectors(bad)
    bad.write_text("good 0.1 0.2\nbad 0.3\n")
    with pytest.raises(UserError, match="vector has 1 values, earlier lines have 2"):
        load_word_vectors(bad)


def test_the_accuracy_baseline_is_the_train_majority_class_scored_on_test(tmp_path):
    folder = tmp_path / "skewed"
    rows = make_rows(400, 1)
    train = [r for r in rows if r["stars"] == 1][:150] + [r for r in rows if r["stars"] == 0][:50]  # 75% class 1
    test = [r for r in rows if r["stars"] == 1][150:170] + [r for r in rows if r["stars"] == 0][50:110]  # 25%
    write_split(folder, "train", train, "parquet")
    validation = [r for r in rows if r["stars"] == 1][170:180] + [r for r in rows if r["stars"] == 0][110:140]
    write_split(folder, "validation", validation, "parquet")  # 25% class 1
    write_split(folder, "test", test, "parquet")
    data, _ = load(folder)
    assert data.extra["baseline/acc"] == pytest.approx(20 / 80)
    # The same predictor on validation: what a run's validation accuracy must beat to have left the baseline
    assert data.extra["baseline/val_acc"] == pytest.approx(10 / 40)


def test_a_runs_validation_history_is_judged_against_the_validation_baseline():
    from bench.run_keys import Metric

    logged = {"baseline/acc": 0.499, "baseline/val_acc": 0.509, "baseline/loss": 0.693}
    assert Metric.baseline_for_validation(logged, "acc") == 0.509
    assert Metric.baseline_for_validation({"baseline/acc": 0.499}, "acc") == 0.499  # runs from before it was logged
    assert Metric.baseline_for_validation(logged, "loss") == 0.693  # the train prior's entropy: one for both
    history = [(50, 0.505), (100, 0.512), (150, 0.530)]
    # 0.512 is over test's 0.499 by more than a point, not over validation's 0.509: left at step 150
    assert left_baseline_step(history, Metric.baseline_for_validation(logged, "acc"), higher_is_better=True) == 150


def test_the_lm_corpus_drops_texts_of_the_labeled_test_split(tmp_path):
    folder = tmp_path / "imdb"
    corpus = [{"text": f"document {i} " + " ".join(["the", "movie", "was", "good"] * 5)} for i in range(60)]
    test = [
        {"text": corpus[3]["text"], "label": 1},
        {"text": corpus[7]["text"] + " ", "label": 0},
        {"text": "never in the corpus", "label": 0},
    ]
    write_split(folder, "unsupervised", corpus, "parquet")
    write_split(folder, "test", test, "parquet")
    settings = {"corpus_file": str(folder / "unsupervised.parquet"), "seq_len": 4, "max_tokens": 0, "min_freq": 1}
    config = resolve_config("next-word", "simple", "lstm", settings)
    data = get_task("next-word").load_data(config.task_settings, 0)
    assert data.extra["data/excluded_test_documents"] == 2
    kept = resolve_config("next-word", "simple", "lstm", {**settings, "exclude_file": "none"})
    assert get_task("next-word").load_data(kept.task_settings, 0).extra["data/excluded_test_documents"] == 0


@pytest.mark.slow
def test_text_runs_score_a_fixed_train_sample_in_eval_mode_at_each_validation(tmp_path):
    from bench import tracking
    from bench.train import train

    config = resolve_config(
        "text-classification",
        "simple",
        "lstm",
        {"data_dir": str(make_dataset(tmp_path / "d")), **LOCAL, "max_epochs": 2},
    )
    result = train(config, progress=False)
    client = tracking.client()
    val = client.get_metric_history(result.run_id, "val/acc")
    train_eval = client.get_metric_history(result.run_id, "train_eval/acc")  # eval mode, fixed train sample
    assert [m.step for m in train_eval] == [m.step for m in val] and len(val) == 2


def test_the_overfitting_gap_uses_eval_mode_train_accuracy_at_the_best_validation():
    from bench import tracking
    from bench.results import train_validation_gap
    from tests.records import record

    # A run whose in-epoch train-mode accuracy (train/acc) says 0.9 at the best validation, eval mode 0.6.
    client = tracking.client()
    experiment = tracking.ensure_experiment("gap-test")
    run_id = client.create_run(experiment).info.run_id
    for step, (v, t, e) in enumerate([(0.50, 0.80, 0.55), (0.58, 0.90, 0.60), (0.52, 0.95, 0.70)]):
        client.log_metric(run_id, "val/acc", v, step=step * 10)
        client.log_metric(run_id, "train/acc", t, step=step * 10)
        client.log_metric(run_id, "train_eval/acc", e, step=step * 10)
    task = get_task("text-classification")
    assert train_validation_gap(record(run_id=run_id), task) == pytest.approx(0.02)
