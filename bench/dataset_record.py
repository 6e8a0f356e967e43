"""The run's data as an MLflow dataset input: where it came from, its fingerprint, its splits' sizes and
the columns the network reads, so MLflow's runs table shows and filters it (metadata only).

Imports MLflow's dataset classes at the top: bench/train.py imports this module when a run records its data.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.types.schema import Array, ColSpec, DataType, Schema
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from bench import tracking
from bench.registry import DataSource

DATASET_CONTEXT = "training"  # the input tag MLflow's runs table shows next to the dataset


def log_dataset(
    run_id: str, name: str, fingerprint: str, splits: dict, source: DataSource | None, generator: dict
) -> None:
    """The run's data as an MLflow dataset input, so the runs table's Dataset column and filter find it:
    `name`, our fingerprint as the digest, where the data came from (hub id, local files by split, or
    the task's own generator with its settings, `generator`), each split's size as the profile and the
    columns the network reads as the schema. Metadata only: the data itself is rebuilt from its source."""
    if source is None:
        origin = CodeDatasetSource({key: str(value) for key, value in generator.items()})
    elif source.files:  # as datasets.load_dataset reads them: a format and data_files by split
        formats = {Path(path).suffix.lstrip(".").replace("jsonl", "json") for path in source.files.values()}
        origin = HuggingFaceDatasetSource(formats.pop() if len(formats) == 1 else "files", data_files=source.files)
    else:
        origin = HuggingFaceDatasetSource(source.hub_id)
    record = MetaDataset(origin, name=name, digest=fingerprint, schema=dataset_schema(splits["train"].features))
    fields = record.to_dict()
    sizes = {f"{split}_rows": len(rows) for split, rows in splits.items()}
    dataset = Dataset(
        name=fields["name"],
        digest=fields["digest"],
        source_type=fields["source_type"],
        source=fields["source"],
        schema=fields.get("schema"),
        profile=json.dumps({"num_rows": sum(sizes.values()), **sizes}),
    )
    context = InputTag(MLFLOW_DATASET_CONTEXT, DATASET_CONTEXT)
    tracking.client().log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[context])])


# datasets' value types as MLflow's column types (the narrow integer types of generated data included)
COLUMN_TYPES = {
    **dict.fromkeys(("bool",), "boolean"),
    **dict.fromkeys(("int8", "int16", "int32", "uint8", "uint16"), "integer"),
    **dict.fromkeys(("int64", "uint32", "uint64"), "long"),
    **dict.fromkeys(("float16", "float32"), "float"),
    "float64": "double",
    **dict.fromkeys(("string", "large_string"), "string"),
}


def dataset_schema(features: dict):
    """The MLflow schema of a `datasets` split's columns: lists (token ids, fixed-length sequences) as
    arrays of their element type; any other feature as binary."""

    def column_type(feature):
        if hasattr(feature, "feature"):  # List / LargeList / Sequence
            return Array(column_type(feature.feature))
        return DataType[COLUMN_TYPES.get(getattr(feature, "dtype", ""), "binary")]

    return Schema([ColSpec(column_type(feature), name) for name, feature in features.items()])
