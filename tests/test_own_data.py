"""Your own text data: split layouts, K-fold cross-validation, dataset names, labels and blank texts as
users have them, and a vocabulary that uses pretrained vectors fully. Small generated data only."""

import re

import numpy as np
import pandas as pd
import pytest

from bench import tracking
from bench.cli import main
from bench.config import resolve_config
from bench.errors import UserError
from bench.registry import get_task
from bench.text import fold_split, new_tokenizer
from tests.text_helpers import LOCAL, make_dataset, make_rows, write_split


def load(**settings):
    config = resolve_config("text-classification", "simple", "lstm", {**LOCAL, **settings})
    return get_task("text-classification").load_data(config.data_settings(), 0)


def one_file(folder, rows=None, name="all.parquet"):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows if rows is not None else make_rows(500, 1)).to_parquet(folder / name)
    return folder


def cli_error(capsys, tmp_path, *overrides, data=None):
    """Run `train` on the generic task; return (exit code, the one stderr line)."""
    args = [f"data_dir={data}"] if data else []
    code = main(
        [
            "train",
            "--task",
            "text-classification",
            "--no-progress",
            *args,
            *[f"{k}={v}" for k, v in LOCAL.items()],
            "max_epochs=1",
            "hidden=8",
            *overrides,
        ]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, lines
    return code, errors[0]


# -- 1. split layouts --------------------------------------------------------------------------------
def test_one_file_in_a_folder_carves_test_then_validation_stratified_and_seeded(tmp_path):
    folder = one_file(tmp_path / "reviews")
    data = load(data_dir=str(folder))
    sizes = {split: len(d) for split, d in data.splits.items()}
    assert sum(sizes.values()) == 500 and 45 <= sizes["test"] <= 50 and 40 <= sizes["validation"] <= 46
    assert abs(np.mean(data.splits["test"]["label"]) - np.mean(data.splits["train"]["label"])) < 0.05
    assert data.notes["data/layout"].startswith("one file: test carved from it (test_fraction=0.1")
    assert "test_fraction=0.1" in data.notes["data/layout"] and "data_seed=0" in data.notes["data/layout"]
    again = load(train_file=str(folder / "all.parquet"))  # the same file named explicitly
    assert again.splits["test"]["input_ids"] == data.splits["test"]["input_ids"]
    other = load(data_dir=str(folder), test_fraction=0.2)
    assert 95 <= len(other.splits["test"]) <= 100


def test_train_and_validation_files_get_a_carved_test_split(tmp_path):
    folder = make_dataset(tmp_path / "d")
    (folder / "test.parquet").unlink()
    data = load(data_dir=str(folder))
    assert len(data.splits["validation"]) == 100 and len(data.splits["test"]) == 40
    assert "test carved from train" in data.notes["data/layout"]


LAYOUT_ERRORS = {
    "two unnamed files": (
        "several data files (a.parquet, b.parquet) and none named train.*: name them "
        "train/validation/test, or pick one with train_file=<path>"
    ),
    "test only": (
        "found test (test.parquet) but no training data: add a train file (train_file=<path>), or give "
        "one file with everything as train_file=<path>"
    ),
    "empty folder": "holds no .parquet, .csv or .jsonl file",
    "no test fraction": (
        "the data has no test split (train only): set test_fraction in (0, 1) to carve one, or "
        "folds=K to cross-validate"
    ),
    "folds over three files": (
        "folds=3 cross-validates over one file, but the data has train, validation, test "
        "splits: set cv_merge=true to merge them into one pool, or give one file"
    ),
    "one fold": "folds=1 is not cross-validation: set folds=0 (off) or folds=K with K >= 2 (e.g. 10)",
}


@pytest.mark.parametrize("case", sorted(LAYOUT_ERRORS))
def test_layouts_it_cannot_use_are_one_line_and_exit_2(tmp_path, capsys, case):
    folder = tmp_path / "data"
    folder.mkdir()
    overrides = []
    if case == "two unnamed files":
        one_file(folder, name="a.parquet"), one_file(folder, name="b.parquet")
    elif case == "test only":
        write_split(folder, "test", make_rows(50, 1), "parquet")
    elif case == "no test fraction":
        one_file(folder)
        overrides = ["test_fraction=0"]
    elif case == "folds over three files":
        make_dataset(folder)
        overrides = ["folds=3"]
    elif case == "one fold":
        one_file(folder)
        overrides = ["folds=1"]
    code, line = cli_error(capsys, tmp_path, *overrides, data=folder)
    assert code == 2 and line.endswith(LAYOUT_ERRORS[case]), line


def test_folds_partition_the_pool_stratified_and_seeded(tmp_path):
    data = load(data_dir=str(one_file(tmp_path / "d")), folds=5, fold=0)
    import datasets

    rows = datasets.Dataset.from_pandas(pd.DataFrame(make_rows(500, 1)).rename(columns={"stars": "label"}))
    tests = [fold_split(rows, 5, fold, seed=0)[1] for fold in range(5)]
    assert sum(len(t) for t in tests) == 500
    assert len(set().union(*(set(t["review"]) for t in tests))) == len(set(rows["review"]))
    assert all(abs(np.mean(t["label"]) - np.mean(rows["label"])) < 0.03 for t in tests)
    assert fold_split(rows, 5, 2, seed=0)[1]["review"] == tests[2]["review"]  # seeded
    assert len(data.splits["test"]) == 100 and "5-fold cross-validation over one file" in data.notes["data/layout"]


@pytest.mark.slow
def test_cross_validation_runs_one_child_run_per_fold_and_a_mean_and_sd(tmp_path, capsys):
    folder = one_file(tmp_path / "cvdata", make_rows(150, 4))
    code = main(
        [
            "train",
            "--task",
            "text-classification",
            "--variant",
            "simple",
            "--cell",
            "gru",
            "--no-progress",
            f"data_dir={folder}",
            *[f"{k}={v}" for k, v in LOCAL.items()],
            "folds=3",
            "max_epochs=1",
            "hidden=8",
            "embedding_size=8",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    client = tracking.client()
    experiment = client.get_experiment_by_name("text-classification/cvdata")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("stage") == "cv")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(r.data.tags["fold"]) for r in children) == [0, 1, 2]
    assert sum(r.data.metrics["data/test_examples"] for r in children) == 150
    accuracies = [r.data.metrics["test/acc"] for r in children]
    assert parent.data.metrics["cv/test/acc_mean"] == pytest.approx(np.mean(accuracies))
    assert parent.data.metrics["cv/test/acc_sd"] == pytest.approx(np.std(accuracies, ddof=1))
    assert parent.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in children)
    assert "3-fold cross-validation" in out and "mean ± sd over folds" in out
    # Each fold's line gives that fold's own time (they add up to about the whole), not the time
    # since the command started (three times the whole).
    fold_seconds = [seconds(t) for t in re.findall(r"^fold \d/3: .* epochs?, ([0-9:]+(?: s)?) · ", out, flags=re.M)]
    total = seconds(re.search(r"mean ± sd over folds\), ([0-9:]+(?: s)?)", out).group(1))
    assert len(fold_seconds) == 3 and sum(fold_seconds) <= total + 3, out


def test_cross_validation_shows_its_fold_and_prints_each_fold_as_it_ends(tmp_path, capsys, monkeypatch):
    """On a terminal: one progress line for the whole cross-validation, naming the fold it trains; each
    fold's result line printed when that fold ends (before the next fold starts), no finished bar left
    behind between folds, and the closing line giving the test metric before the baselines."""
    from bench import console
    from tests.test_console import FakeTerminal

    terminal = FakeTerminal(160)  # stdout and stderr in one stream, in the order a person sees them
    monkeypatch.setattr(console, "terminal_width", lambda stream: stream.columns if stream is terminal else 0)
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setattr("sys.stderr", terminal)
    folder = one_file(tmp_path / "cvlive", make_rows(90, 5))
    knobs = [f"data_dir={folder}", *[f"{k}={v}" for k, v in LOCAL.items()], "folds=2", "max_epochs=2"]
    code = main(["train", "--task", "text-classification", "--cell", "gru", *knobs, "hidden=8", "embedding_size=8"])
    written = terminal.getvalue()
    assert code == 0, written
    # The live line names the fold in training, and each fold's line comes as that fold ends.
    assert "fold 1/2 starting" in written and "fold 2/2 starting" in written, written
    assert (
        written.index("fold 1/2: test/acc") < written.index("fold 2/2 starting") < written.index("fold 2/2: test/acc")
    )
    # What stays on the screen (each line as last drawn after its erasures): the fold lines and one bar.
    screen = [line.split("\r\x1b[K")[-1] for line in written.split("\n")]
    screen = [line for line in screen if line]
    bars = [line for line in screen if "[#" in line or "[." in line]
    assert len(bars) == 1 and "2/2 folds 100%" in bars[0], screen
    assert not [line for line in screen if re.search(r"\d+/\d+ epochs \d+%", line)], screen  # no per-fold bars
    final = screen[-1]
    assert final.startswith("2-fold cross-validation, run "), screen
    assert final.index("test/acc ") < final.index("test/loss ") < final.index("baseline/acc "), final


def seconds(text: str) -> int:
    """console.duration's `42 s` / `3:05` back in seconds."""
    if text.endswith(" s"):
        return int(text[:-2])
    minutes, secs = text.split(":")[-2:]
    return int(minutes) * 60 + int(secs)


# -- 2. dataset names --------------------------------------------------------------------------------
def test_the_data_folder_names_the_experiment_and_runs_unless_dataset_is_set(tmp_path):
    from bench.train import default_run_name, experiment_of

    config = resolve_config("text-classification", "simple", "lstm", {"data_dir": str(tmp_path / "movie-reviews")})
    assert experiment_of(config) == "text-classification/movie-reviews"
    assert default_run_name(config) == "text-classification/movie-reviews/simple/lstm/seed0"
    named = resolve_config("text-classification", "simple", "lstm", {"data_dir": str(tmp_path), "dataset": "mr"})
    assert experiment_of(named) == "text-classification/mr"
    assert experiment_of(resolve_config("sst2", "simple", "lstm", {"data_dir": str(tmp_path)})) == "sst2"
    with pytest.raises(UserError, match="dataset name 'a b' is not usable"):
        experiment_of(resolve_config("text-classification", "simple", "lstm", {"dataset": "a b"}))


# -- 4. labels and texts as users have them -----------------------------------------------------------
def words_and(labels, rows=300, seed=1):
    return [{"review": r["review"], "stars": labels[r["stars"]]} for r in make_rows(rows, seed)]


def test_string_labels_map_to_ids_in_sorted_order_and_the_mapping_is_kept(tmp_path):
    folder = tmp_path / "s"
    for split, seed in (("train", 1), ("test", 2)):
        write_split(folder, split, words_and({0: "neg", 1: "pos"}, seed=seed), "parquet")
    data = load(data_dir=str(folder))
    assert data.notes["data/label_map"] == "neg:0,pos:1" and data.output_size == 2
    expected = [1 if r["stars"] else 0 for r in make_rows(300, 2)]
    assert data.splits["test"]["label"] == expected


def test_label_map_renumbers_labels(tmp_path):
    folder = tmp_path / "m"
    for split, seed in (("train", 1), ("test", 2)):
        write_split(folder, split, words_and({0: 1, 1: 2}, seed=seed), "parquet")
    data = load(data_dir=str(folder), label_map="1:0,2:1")
    assert data.output_size == 2 and set(data.splits["train"]["label"]) == {0, 1}


LABEL_ERRORS = {
    "labels 1..K": (
        {0: 1, 1: 2},
        [],
        "train split has labels {1, 2}, not 0..K-1 (class 0 never occurs): set "
        "label_map=1:0,2:1 or remap the labels to 0..1",
    ),
    "unknown test label": (
        {0: "neg", 1: "pos"},
        ["test:maybe"],
        "test split has labels that train lacks: ['maybe']; set label_map=<label>:<id>,... naming every class",
    ),
    "bad label map": (
        {0: "neg", 1: "pos"},
        ["label_map=neg=0"],
        "label_map='neg=0': expected label:id pairs separated by commas, e.g. neg:0,pos:1",
    ),
}


@pytest.mark.parametrize("case", sorted(LABEL_ERRORS))
def test_labels_it_cannot_use_are_one_line_and_exit_2(tmp_path, capsys, case):
    labels, extra, message = LABEL_ERRORS[case]
    folder = tmp_path / "l"
    rows = words_and(labels)
    write_split(folder, "train", rows, "parquet")
    test_rows = words_and(labels, 50, 2)
    if "test:maybe" in extra:
        test_rows[0]["stars"] = "maybe"
    write_split(folder, "test", test_rows, "parquet")
    code, line = cli_error(capsys, tmp_path, *[e for e in extra if "=" in e], data=folder)
    assert code == 2 and line == f"error: {message}", line


def test_labels_of_two_kinds_across_files_are_one_line_and_exit_2(tmp_path, capsys):
    folder = tmp_path / "mixed"
    write_split(folder, "train", words_and({0: 0, 1: 1}), "parquet")  # integer ids
    write_split(folder, "test", words_and({0: "neg", 1: "pos"}, 50, 2), "parquet")  # class names
    code, line = cli_error(capsys, tmp_path, data=folder)
    assert code == 2
    assert line == (
        "error: the labels mix types (int, str): use one kind (integers 0..K-1 or class names), "
        "or set label_map=<label>:<id>,..."
    )


def test_blank_and_missing_texts_are_dropped_and_counted_per_split(tmp_path, capsys):
    folder = tmp_path / "b"
    rows = make_rows(400, 1)
    rows[3]["review"], rows[10]["review"], rows[20]["review"] = None, "   ", ""
    write_split(folder, "train", rows, "parquet")
    test_rows = make_rows(100, 2)
    test_rows[0]["review"] = None
    write_split(folder, "test", test_rows, "parquet")
    data = load(data_dir=str(folder))
    assert data.extra["data/train_blank_texts_dropped"] == 3 and data.extra["data/test_blank_texts_dropped"] == 1
    assert len(data.splits["test"]) == 99 and len(data.splits["train"]) + len(data.splits["validation"]) == 397
    assert "dropped blank or missing texts: train 3, test 1" in capsys.readouterr().err


def test_a_split_left_empty_by_blank_texts_or_an_empty_file_is_one_line_and_exit_2(tmp_path, capsys):
    folder = make_dataset(tmp_path / "e")
    write_split(folder, "test", [{"review": " ", "stars": 0}, {"review": None, "stars": 1}], "parquet")
    code, line = cli_error(capsys, tmp_path, data=folder)
    assert code == 2 and line == "error: the test split is empty after dropping 2 blank or missing texts"
    pd.DataFrame({"review": pd.Series([], dtype=str), "stars": pd.Series([], dtype=int)}).to_parquet(
        folder / "test.parquet"
    )
    code, line = cli_error(capsys, tmp_path, data=folder)
    assert code == 2 and line == f"error: the test split is empty ({folder / 'test.parquet'})"


# -- 5. pretrained vectors used fully ------------------------------------------------------------------
def test_glove_tokenizer_keeps_contractions_as_glove_has_them():
    tokens = [t for t, _ in new_tokenizer("glove").pre_tokenizer.pre_tokenize_str("it's ca n't don't 'sad'")]
    assert tokens == ["it", "'s", "ca", "n't", "do", "n't", "'", "sad", "'"]
    words = [t for t, _ in new_tokenizer("words").pre_tokenizer.pre_tokenize_str("don't")]
    assert words == ["don", "'", "t"]


def write_vectors(path, words):
    path.write_text(
        "".join(f"{w} " + " ".join(f"{(i + j) / 100:.2f}" for j in range(4)) + "\n" for i, w in enumerate(words))
    )
    return path


def test_vocabulary_takes_in_the_vectors_words_without_reading_test_text(tmp_path):
    """A word seen once in train, or only in test, gets its pretrained vector; a test word the vectors
    lack stays unknown; changing the test text does not change the vocabulary."""
    from bench.embeddings import embedding_for_task

    folder = make_dataset(tmp_path / "v")
    train = make_rows(400, 1)
    train[0]["review"] += " onceword"
    write_split(folder, "train", train, "parquet")
    write_split(folder, "test", [{"review": "splendid zyzzyva don't", "stars": 1}] * 10, "parquet")
    vectors = write_vectors(tmp_path / "v.txt", ["the", "good", "onceword", "splendid", "n't", "do"])
    settings = {"data_dir": str(folder), "min_freq": 2, "embedding_vectors": str(vectors), "embedding_size": 4}
    config = resolve_config("text-classification", "embedding-pretrained", "lstm", {**LOCAL, **settings})
    data = get_task("text-classification").load_data(config.data_settings(), 0)
    assert {"onceword", "splendid", "n't", "do"} <= set(data.vocabulary) and "zyzzyva" not in data.vocabulary
    test_ids = data.splits["test"][0]["input_ids"]
    assert [data.vocabulary[i] for i in test_ids] == ["splendid", "[UNK]", "do", "n't"]
    matrix, coverage = embedding_for_task(get_task("text-classification"), data, config)
    assert matrix[data.vocabulary.index("splendid")].tolist() == pytest.approx([0.03, 0.04, 0.05, 0.06])
    assert coverage["embedding/test_token_coverage"] == pytest.approx(3 / 4)
    assert 0 < coverage["embedding/train_token_coverage"] < 1
    write_split(folder, "test", [{"review": "other words entirely", "stars": 0}] * 10, "parquet")
    assert get_task("text-classification").load_data(config.data_settings(), 0).vocabulary == data.vocabulary
    plain = load(data_dir=str(folder), min_freq=2)  # without vectors: training words seen twice only
    assert "onceword" not in plain.vocabulary and "splendid" not in plain.vocabulary


# -- 6. defaults and the run summary ------------------------------------------------------------------
@pytest.mark.slow
def test_text_defaults_let_early_stopping_decide_and_the_summary_shows_the_majority_class(tmp_path, capsys):
    config = resolve_config("text-classification", "simple", "lstm", {})
    assert config.max_epochs >= 20 and config.patience >= 2
    folder = make_dataset(tmp_path / "small", sizes=(200, 50, 50))
    code = main(
        [
            "train",
            "--task",
            "text-classification",
            "--cell",
            "gru",
            "--no-progress",
            f"data_dir={folder}",
            *[f"{k}={v}" for k, v in LOCAL.items()],
            "hidden=8",
            "embedding_size=8",
            "patience=1",
            "lr=0.01",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(line for line in out.splitlines() if "for always predicting the majority class" in line)
    assert line.startswith("test/acc 0.") and " vs 0." in line
    epochs = int(re.search(r"(\d+) epochs", line).group(1))
    assert epochs < config.max_epochs  # stopped by validation, not by the cap


# -- 3. sweeps and reports for your own data -----------------------------------------------------------
def log_run(experiment, name, variant, tags, metrics, parent=None, params=None):
    with tracking.tracked_run(experiment, name, {"variant": variant, "cell": "lstm", **tags}, parent) as run_id:
        tracking.log_params(run_id, {"variant": variant, "cell": "lstm", "lr": "0.002", **(params or {})})
        tracking.log_metrics(run_id, metrics)
    return run_id


def test_report_of_single_runs_and_a_cross_validation_without_any_sweep(tmp_path):
    """What MLflow holds without a sweep: runs grouped by variant and cell (saying so), and each
    cross-validation as mean ± sd over its folds; the dataset, split layout and label map are shown."""
    from bench.report import write_index, write_report

    experiment = "text-classification/tiny-reviews"
    notes = {"data/layout": "one file: test carved", "data/label_map": "neg:0,pos:1"}
    for seed, acc in ((0, 0.70), (1, 0.80)):
        log_run(
            experiment,
            f"s{seed}",
            "simple",
            notes,
            {"test/acc": acc, "baseline/acc": 0.5, "test/loss": 0.6},
            params={"seed": str(seed)},
        )
    log_run(experiment, "b0", "bidirectional", notes, {"test/acc": 0.9, "baseline/acc": 0.5})
    parent = log_run(experiment, "cv", "simple", {"stage": "cv", "folds": 3, "seed": 0}, {})
    for fold, acc in enumerate((0.6, 0.7, 0.8)):
        log_run(
            experiment,
            f"f{fold}",
            "simple",
            {**notes, "stage": "fold", "fold": fold},
            {"test/acc": acc, "baseline/acc": 0.5},
            parent,
        )
    text = write_report("text-classification", dataset="tiny-reviews", out_dir=tmp_path).read_text()
    assert (tmp_path / "text-classification-tiny-reviews.md").exists()
    assert "no sweep in this experiment" in text and "make report TASK=text-classification DATASET=tiny-reviews" in text
    assert "| simple | lstm | 2 seeds | 0.7500 ± 0.0707 | 0.5000 |" in text
    assert "| bidirectional | lstm | 1 seed | 0.9000 ± – |" in text
    assert "| simple | lstm | 3 folds | 0.7000 ± 0.1000 |" in text
    assert "folds: 0.600, 0.700, 0.800" in text
    assert "**Labels** (name:id): neg:0,pos:1" in text and "one file: test carved" in text
    assert "text-classification-tiny-reviews" in write_index(tmp_path).read_text()


def test_report_and_sweep_targets_take_a_dataset_and_a_file():
    import shutil
    import subprocess

    from tests.sweep_helpers import ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    make = ["make", "-n", "-o", ".venv/.installed"]
    report = subprocess.run(
        [*make, "report", "TASK=text-classification", "DATASET=mr"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    sweep = subprocess.run(
        [*make, "sweep", "TASK=text-classification", "FILE=my.yaml"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    assert "--task 'text-classification' --dataset 'mr'" in report and "--file 'my.yaml'" in sweep
    helped = subprocess.run(["make", "help"], capture_output=True, text=True, cwd=ROOT).stdout
    assert "DATASET=<name>" in helped and "FILE=" in helped


def test_the_generic_task_reports_one_dataset_at_a_time(capsys):
    assert main(["report", "--task", "text-classification"]) == 2
    assert "task text-classification reports one dataset at a time: set DATASET=<name>" in capsys.readouterr().err


def test_a_sweep_on_your_own_data_lands_in_the_datasets_experiment(tmp_path):
    from bench.sweep_config import load_sweep

    folder = one_file(tmp_path / "my-sentences")
    spec = load_sweep("text-classification", "smoke", overrides={"data_dir": str(folder), **LOCAL})
    assert spec.experiment == "text-classification/my-sentences"
    for profile in ("cpu", "gpu", "smoke", "quick"):
        assert load_sweep("text-classification", profile).studies
    with pytest.raises(UserError, match="fixed.folds .*cross-validation runs through make train"):
        load_sweep("text-classification", "smoke", overrides={"folds": "5"})


def test_a_sweep_whose_grid_spans_datasets_is_refused_not_mixed_into_one_experiment(tmp_path):
    from bench.sweep_config import load_sweep
    from tests.sweep_helpers import write_sweep

    first, second = one_file(tmp_path / "first"), one_file(tmp_path / "second")
    path = write_sweep(
        tmp_path / "s.yaml",
        task="text-classification",
        cells=["lstm"],
        variants=["simple"],
        trials=1,
        search_space={},
        fixed=dict(LOCAL),
        grid={"data_dir": [str(first), str(second)]},
    )
    with pytest.raises(UserError) as error:
        load_sweep("text-classification", "test", path)
    message = str(error.value)
    assert "the studies span datasets first (simple/lstm/data_dir=" in message and "second (" in message
    assert "a sweep covers one dataset" in message and "\n" not in message


def test_a_sweep_report_of_one_dataset_is_named_after_it(tmp_path):
    """Sweep runs in text-classification/<name> give reports/…/text-classification-<name>.md, with its
    figures beside it and the dataset, split layout and label map in its setup."""
    from bench.report import write_report

    experiment, study = "text-classification/swept-reviews", "text-classification:test+abc:simple:lstm"
    common = {"profile": "test", "optuna_study": study, "grid": ""}
    parent = log_run(experiment, "p", "simple", {**common, "stage": "study"}, {})
    notes = {"data/layout": "one file: test carved from it", "data/label_map": "neg:0,pos:1"}
    for trial, best in enumerate((0.7, 0.8)):
        log_run(
            experiment,
            f"t{trial}",
            "simple",
            {**common, **notes, "stage": "trial", "optuna_trial": trial},
            {"val/acc_best": best},
            parent,
            params={"lr": str(0.001 * (trial + 1))},
        )
    for seed, acc in ((1, 0.75), (2, 0.77)):
        log_run(
            experiment,
            f"f{seed}",
            "simple",
            {**common, **notes, "stage": "final", "optuna_study": study + ":final"},
            {"test/acc": acc, "baseline/acc": 0.5, "test/loss": 0.5},
            parent,
            params={"seed": str(seed)},
        )
    path = write_report("text-classification", dataset="swept-reviews", out_dir=tmp_path)
    text = path.read_text()
    assert (
        path.name == "text-classification-swept-reviews.md"
        and (tmp_path / "text-classification-swept-reviews").is_dir()
    )
    assert "make report TASK=text-classification DATASET=swept-reviews" in text
    assert "**Dataset**: `swept-reviews`" in text and "**Labels** (name:id): neg:0,pos:1" in text
    assert "0.7600 ± 0.0141" in text
    for image in (tmp_path / "text-classification-swept-reviews").glob("*.png"):
        assert f"(text-classification-swept-reviews/{image.name})" in text


@pytest.mark.parametrize("signal", [True, False], ids=["runs with the convergence signal", "runs without it"])
def test_the_index_labels_a_report_earlier_protocol_only_when_its_runs_lack_the_convergence_signal(tmp_path, signal):
    """A report of single runs has no verdicts either way: what its runs record decides the label."""
    import json

    from bench.report import write_index, write_report

    dataset = "with-signal" if signal else "without-signal"
    metrics = {"test/acc": 0.7, "baseline/acc": 0.5, **({"convergence/still_improving": 0.0} if signal else {})}
    log_run(f"text-classification/{dataset}", "s0", "simple", {}, metrics)
    write_report("text-classification", dataset=dataset, out_dir=tmp_path)
    summary = json.loads((tmp_path / f"text-classification-{dataset}" / "summary.json").read_text())
    assert summary["convergence_signal"] is signal and "verdicts" not in summary
    row = next(line for line in write_index(tmp_path).read_text().splitlines() if dataset in line)
    assert ("earlier protocol" in row) is not signal, row


def test_index_rows_written_before_the_record_existed_are_labelled_only_for_sweeps_without_verdicts():
    from bench.report import earlier_protocol

    assert earlier_protocol({"profile": "cpu"})  # a sweep report from before verdicts and the signal
    assert not earlier_protocol({"profile": "cpu", "verdicts": []})
    assert not earlier_protocol({"profile": "single runs"})  # never has verdicts: that says nothing
