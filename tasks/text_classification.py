"""Any local text-classification dataset (binary or multi-class): point it at your files with
data_dir=<folder> (train/[validation/]test .parquet|.csv|.jsonl) or train_file=/test_file=, and
name the columns with text_column=/label_column= (labels 0..K-1)."""

from bench.text_task import text_task

TASK = text_task(
    "text-classification",
    None,
    text_column="text",
    max_length=256,
    description="your own local text-classification data (set data_dir=...)",
)
