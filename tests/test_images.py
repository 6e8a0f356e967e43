"""Sequential and permuted MNIST on generated digits: layout, permutation, local formats, bad input."""

import numpy as np
import pytest

from bench.config import resolve_config
from bench.errors import UserError
from bench.registry import get_task
from bench.synthetic import dataset_arrays
from tests.task_fixtures import make_digits


def load(task_name, folder, **overrides):
    config = resolve_config(task_name, "simple", "rnn", {"data_dir": str(folder), **overrides})
    return get_task(task_name).load_data(config.task_settings, 0)


def images_of(folder, split="test"):
    import io

    import pandas as pd
    from PIL import Image

    frame = pd.read_parquet(folder / f"{split}.parquet")
    return np.stack([np.asarray(Image.open(io.BytesIO(v["bytes"]))) for v in frame["image"]]), frame["label"].to_numpy()


def test_seq_mnist_reads_784_pixels_in_row_major_order(tmp_path):
    folder = make_digits(tmp_path / "d")
    data = load("seq-mnist", folder)
    arrays = dataset_arrays(data.splits["test"])
    images, labels = images_of(folder)
    assert arrays["inputs"].shape == (20, 784, 1) and arrays["inputs"].dtype == np.float32
    np.testing.assert_allclose(arrays["inputs"][:, :, 0], images.reshape(20, 784) / 255.0, rtol=1e-6)
    assert (arrays["targets"] == labels).all()
    assert data.input_size == 1 and data.output_size == 10 and data.extra["data/steps"] == 784
    assert data.extra["baseline/acc"] == pytest.approx(0.1, abs=0.05)
    assert data.extra["baseline/val_acc"] == pytest.approx(0.1, abs=0.1) and data.extra["data/train_examples"] > 0


def test_rows_per_step(tmp_path):
    data = load("seq-mnist", make_digits(tmp_path / "d"), pixels_per_step=28)
    inputs = dataset_arrays(data.splits["test"])["inputs"]
    images, _ = images_of(tmp_path / "d")
    assert inputs.shape == (20, 28, 28)
    np.testing.assert_allclose(inputs[3], images[3] / 255.0, rtol=1e-6)


def test_perm_mnist_applies_one_fixed_seeded_permutation_to_every_split(tmp_path):
    folder = make_digits(tmp_path / "d")
    plain = {s: dataset_arrays(d)["inputs"][:, :, 0] for s, d in load("seq-mnist", folder).splits.items()}
    permuted = {s: dataset_arrays(d)["inputs"][:, :, 0] for s, d in load("perm-mnist", folder).splits.items()}
    order = np.random.default_rng(0).permutation(784)
    assert not (order == np.arange(784)).all()
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(permuted[split], plain[split][:, order])
    again = dataset_arrays(load("perm-mnist", folder).splits["test"])["inputs"][:, :, 0]
    np.testing.assert_array_equal(again, permuted["test"])  # deterministic
    other = dataset_arrays(load("perm-mnist", folder, permutation_seed=1).splits["test"])["inputs"][:, :, 0]
    assert not np.array_equal(other, permuted["test"])
    np.testing.assert_array_equal(np.sort(other, axis=1), np.sort(plain["test"], axis=1))  # same pixels


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_local_formats_give_the_same_pixels(tmp_path, fmt):
    reference = dataset_arrays(load("seq-mnist", make_digits(tmp_path / "p")).splits["test"])
    other = dataset_arrays(load("seq-mnist", make_digits(tmp_path / fmt, fmt=fmt)).splits["test"])
    np.testing.assert_array_equal(reference["inputs"], other["inputs"])
    np.testing.assert_array_equal(reference["targets"], other["targets"])


def test_validation_is_carved_from_train_when_missing_and_test_is_untouched(tmp_path):
    data = load("seq-mnist", make_digits(tmp_path / "d", sizes=(100, 0, 20)), val_fraction=0.2)
    sizes = {s: len(d) for s, d in data.splits.items()}
    assert sizes == {"train": 80, "validation": 20, "test": 20}
    labels = dataset_arrays(data.splits["validation"])["targets"]
    assert np.bincount(labels, minlength=10).tolist() == [2] * 10  # stratified


def test_bad_images_fail_in_one_line(tmp_path):
    import pandas as pd

    folder = make_digits(tmp_path / "d", fmt="jsonl")
    with pytest.raises(UserError, match="no column 'pixels'"):
        load("seq-mnist", folder, image_column="pixels")
    frame = pd.read_json(folder / "train.jsonl", lines=True)
    frame.loc[0, "label"] = 12
    frame.to_json(folder / "train.jsonl", orient="records", lines=True)
    with pytest.raises(UserError, match="labels outside 0..9"):
        load("seq-mnist", folder)
    frame.loc[0, "label"] = 1
    frame.at[1, "image"] = [0] * 100
    frame.to_json(folder / "train.jsonl", orient="records", lines=True)
    with pytest.raises(UserError) as error:
        load("seq-mnist", folder)
    assert "100 pixels" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UserError, match="must divide"):
        load("seq-mnist", make_digits(tmp_path / "ok"), pixels_per_step=5)


def test_without_hub_access_the_error_names_the_override():
    config = resolve_config("seq-mnist", "simple", "rnn", {})
    with pytest.raises(UserError) as error:
        get_task("seq-mnist").load_data(config.task_settings, 0)
    assert "ylecun/mnist" in str(error.value) and "data_dir=" in str(error.value)


@pytest.mark.slow
def test_a_gru_learns_the_generated_digits_row_by_row(tmp_path):
    from bench.train import train

    config = resolve_config(
        "seq-mnist",
        "simple",
        "gru",
        {
            "data_dir": str(make_digits(tmp_path / "d", sizes=(300, 50, 50))),
            "pixels_per_step": 28,
            "hidden": 32,
            "lr": 0.01,
            "max_epochs": 6,
            "batch_size": 32,
        },
    )
    result = train(config, progress=False)
    assert result.test_metrics["test/acc"] > 0.8  # chance: 0.1
