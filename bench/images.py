"""Images read as sequences (sequential and permuted MNIST): load (hub `ylecun/mnist`, or local
parquet/csv/jsonl files like the text tasks) -> validate -> seeded stratified validation carve ->
pixels as a (steps, pixels_per_step) float sequence in [0, 1], optionally in one fixed seeded
permuted order -> cached `datasets.Dataset` of fixed-shape arrays."""

from __future__ import annotations

import io

import numpy as np

from bench import safepoints
from bench.errors import UserError
from bench.registry import MetricSpec, TaskData, TaskSpec
from bench.run_keys import Metric
from bench.synthetic import cached_split, dataset_arrays

# Lazy imports: the shared loading and carving (bench.text, which imports datasets) where the data is loaded and
# Pillow where an image is decoded, so finding a task stays fast.

SIDE = 28
PIXELS = SIDE * SIDE
CLASSES = 10
HUB_ID = "ylecun/mnist"


def image_settings(permuted: bool) -> dict:
    settings = {
        "data_dir": "",  # a folder with train/[validation/]test .parquet|.csv|.jsonl: overrides the hub
        "train_file": "",
        "validation_file": "",
        "test_file": "",
        # an image (PNG bytes as datasets stores them, or a PIL image), 784 numbers, or a string of
        # 784 space-separated numbers (csv); values 0..255
        "image_column": "image",
        "label_column": "label",
        "val_fraction": 0.1,  # MNIST has no validation split: a stratified seeded carve from train
        "train_subset": 0,  # >0: a stratified subset of that many training images
        "pixels_per_step": 1,  # 1: 784 steps, pixel by pixel (the benchmark); 28: row by row
    }
    if permuted:
        settings["permutation_seed"] = 0  # the one fixed pixel permutation, applied to every split
    return settings


def image_task(name: str, permuted: bool, description: str, references: str) -> TaskSpec:
    def load_data(settings: dict, data_seed: int) -> TaskData:
        return load_image_sequences(name, settings, data_seed, permuted)

    return TaskSpec(
        name=name,
        description=description,
        input_kind="floats",
        output_kind="per-sequence",
        loss="cross_entropy",
        settings=image_settings(permuted),
        minimums={
            "train_subset": 0,
            "val_fraction": 0.0,
            "pixels_per_step": 1,
            **({"permutation_seed": 0} if permuted else {}),
        },
        load_data=load_data,
        check_settings=check_settings,
        family="image",
        test_preset={"pixels_per_step": 28},  # row by row: fast
        metrics=(MetricSpec("acc", "accuracy"),),
        monitor=Metric.val("acc"),
        monitor_mode="max",
        training_defaults={
            "lr": 1e-3,
            "hidden": 128,
            "embedding_size": 16,
            "batch_size": 128,
            "max_epochs": 10,
            "patience": 3,
            "gradient_clip": 1.0,
        },
        references=references,
        report_metric="acc",
    )


def pixel_order(settings: dict, permuted: bool) -> np.ndarray:
    if not permuted:
        return np.arange(PIXELS)
    return np.random.default_rng(settings["permutation_seed"]).permutation(PIXELS)


def to_pixels(value, split: str, row: int) -> np.ndarray:
    """One image, whatever its stored form, as 784 uint8 values in row-major order."""
    safepoints.checkpoint()  # decoding 60,000 images takes many seconds
    if isinstance(value, dict) and value.get("bytes") is not None:  # datasets' Image storage
        value = _decode(value["bytes"])
    elif hasattr(value, "convert"):  # PIL image (datasets decodes the hub's Image feature)
        value = np.asarray(value.convert("L"))
    elif isinstance(value, str):
        value = value.split()
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    if array.size != PIXELS:
        raise UserError(f"{split} split, row {row}: an image of {array.size} pixels; expected {SIDE}x{SIDE} = {PIXELS}")
    if array.min() < 0 or array.max() > 255:
        raise UserError(f"{split} split, row {row}: pixel values outside 0..255")
    return array.astype(np.uint8)


def _decode(data: bytes) -> np.ndarray:
    from PIL import Image  # (lazy: Pillow, only to decode image files)

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def image_columns(raw: dict, settings: dict) -> dict:
    """The image and label columns alone, named `image` and `label` (checked by `check_splits`)."""
    image, label = settings["image_column"], settings["label_column"]
    return {
        split: dataset.select_columns([image, label]).rename_columns({image: "image", label: "label"})
        for split, dataset in raw.items()
    }


def sequences(dataset, split: str, order: np.ndarray, pixels_per_step: int) -> dict[str, np.ndarray]:
    """(N, steps, pixels_per_step) float32 in [0, 1], pixels taken in `order`; labels as uint8."""
    pixels = np.stack([to_pixels(value, split, row) for row, value in enumerate(dataset["image"])])
    steps = PIXELS // pixels_per_step
    inputs = (pixels[:, order].astype(np.float32) / 255.0).reshape(len(pixels), steps, pixels_per_step)
    return {"inputs": inputs, "targets": np.asarray(dataset["label"], dtype=np.uint8)}


def check_settings(settings: dict) -> None:
    if PIXELS % settings["pixels_per_step"]:
        raise UserError(f"pixels_per_step={settings['pixels_per_step']} must divide {PIXELS} (e.g. 1, 7, 28)")


def load_image_sequences(name: str, settings: dict, data_seed: int, permuted: bool) -> TaskData:
    from bench.text import carve, check_splits, data_source, load_raw, majority_baselines  # (lazy: datasets)

    raw = load_raw(name, HUB_ID, "test", settings)
    label = settings["label_column"]
    check_splits(raw, {"image_column": settings["image_column"], "label_column": label}, label, CLASSES)
    splits, _ = carve(image_columns(raw, settings), settings, data_seed)
    order = pixel_order(settings, permuted)
    arrays = {}
    for split, dataset in splits.items():
        key = {
            "source": dataset._fingerprint,
            "split": split,
            "permuted": permuted,
            "permutation_seed": settings.get("permutation_seed"),
            "pixels_per_step": settings["pixels_per_step"],
            "version": 1,
        }
        arrays[split] = cached_split(
            name, key, lambda d=dataset, s=split: sequences(d, s, order, settings["pixels_per_step"])
        )
    labels = dataset_arrays(arrays["train"].select_columns(["targets"]))["targets"]
    counts = np.bincount(labels, minlength=CLASSES)
    shares = counts[counts > 0] / counts.sum()
    test_labels = dataset_arrays(arrays["test"].select_columns(["targets"]))["targets"]
    validation_labels = dataset_arrays(arrays["validation"].select_columns(["targets"]))["targets"]
    return TaskData(
        splits=arrays,
        input_size=settings["pixels_per_step"],
        output_size=CLASSES,
        baseline=float(-(shares * np.log(shares)).sum()),
        extra={
            **majority_baselines(labels.tolist(), validation_labels.tolist(), test_labels.tolist()),
            Metric.TRAIN_EXAMPLES: int(counts.sum()),
            Metric.data("steps"): PIXELS // settings["pixels_per_step"],
        },
        source=data_source(HUB_ID, settings),
    )
