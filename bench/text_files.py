"""A text task's data, checked before the stores, torch, Lightning and `datasets` start: where the files
are (`find_files`), each file's encoding and structure (UTF-8, JSON lines, CSV field counts), the text and
label columns, the labels (two classes at least; names or numbers, not both) and the folds; without local
files, whether the hub dataset can be had at all. Pure Python (pyarrow for parquet): a data problem is one
line naming file, line and cause in a fraction of a second, not `datasets`' "An error occurred while
generating the dataset" after seconds of imports. `bench/text.py` loads the data once these pass."""

from __future__ import annotations

import csv
import json
import os
import re
import socket
from pathlib import Path
from typing import Iterator

from bench.errors import UserError, first_line
from bench.paths import cache_dir

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
SPLITS = ("train", "validation", "test")
NUMBER = re.compile(r"\s*[-+]?\d+(\.\d*)?\s*")  # how a label that is a number reads in a CSV file
HUB = "huggingface.co"


# -- where the files are -------------------------------------------------------------------------------
def data_files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in FORMATS and not p.name.startswith("."))


def find_files(settings: dict) -> dict[str, Path]:
    """The local files by split. Layouts: train + validation + test; train + test (validation carved);
    train + validation or train alone, i.e. one file (test carved). A folder may hold one data file
    of any name. {} means: no local files (use the hub)."""
    files = {split: Path(settings[f"{split}_file"]) for split in SPLITS if settings.get(f"{split}_file")}
    if settings["data_dir"]:
        folder = Path(settings["data_dir"])
        if not folder.is_dir():
            raise UserError(f"data_dir={folder} is not a folder")
        for split in SPLITS:
            for suffix in FORMATS:
                if split not in files and (folder / f"{split}{suffix}").exists():
                    files[split] = folder / f"{split}{suffix}"
        if "train" not in files:
            candidates = [
                p
                for p in data_files_in(folder)
                if p not in files.values() and p.stem not in ("unsupervised", "unlabeled")
            ]
            if not candidates and not files:
                raise UserError(f"data_dir={folder} holds no .parquet, .csv or .jsonl file")
            if len(candidates) > 1:
                raise UserError(
                    f"data_dir={folder} holds several data files ({', '.join(p.name for p in candidates[:4])})"
                    " and none named train.*: name them train/validation/test, or pick one with "
                    "train_file=<path>"
                )
            if candidates and files:
                raise UserError(
                    f"data_dir={folder} holds {', '.join(p.name for p in files.values())} and "
                    f"{candidates[0].name}: name the training file train{candidates[0].suffix}"
                )
            if candidates:
                files["train"] = candidates[0]
    for split, path in files.items():
        if path.is_dir():
            raise UserError(f"{split}_file={path} is a folder, not a file: name a file in it, or set data_dir={path}")
        if not path.is_file():
            raise UserError(f"{split}_file={path} does not exist")
        if path.suffix not in FORMATS:
            raise UserError(f"{path}: unsupported format {path.suffix!r}; use .parquet, .csv or .jsonl")
    if files and "train" not in files:
        raise UserError(
            f"found {' and '.join(f'{s} ({p.name})' for s, p in files.items())} but no training data: "
            "add a train file (train_file=<path>), or give one file with everything as train_file=<path>"
        )
    return files


# -- the checks ----------------------------------------------------------------------------------------
_checked: set[str] = set()


def check_text_data(name: str, hub_id: str | None, settings: dict) -> None:
    """Every check above, once per process and settings (a sweep asks for each of its studies)."""
    key = json.dumps([name, settings], sort_keys=True, default=str)
    if key in _checked:
        return
    check_fold_settings(settings)
    files = find_files(settings)
    if files:
        columns = {"text_column": settings["text_column"], "label_column": settings["label_column"]}
        labels = {split: read_labels(split, path, columns) for split, path in files.items()}
        check_labels(labels, files, settings)
    elif hub_id is not None:
        check_hub(hub_id)
    _checked.add(key)


def check_fold_settings(settings: dict) -> None:
    folds, fold = settings.get("folds", 0), settings.get("fold", -1)
    if folds == 1:
        raise UserError("folds=1 is not cross-validation: set folds=0 (off) or folds=K with K >= 2 (e.g. 10)")
    if folds and not -1 <= fold < folds:
        raise UserError(
            f"fold={fold} is out of range for folds={folds}: 0..{folds - 1} runs that fold alone; "
            "leave fold unset to run every fold"
        )
    if fold >= 0 and not folds:
        raise UserError(f"fold={fold} picks one fold of a cross-validation: set folds=K too (e.g. folds=10)")


def read_labels(split: str, path: Path, columns: dict[str, str]) -> list:
    """The label column's values (None where missing), once the file is known to be readable and to
    have both columns."""
    if path.stat().st_size == 0:
        raise UserError(f"the {split} split is empty ({path})")
    if path.suffix == ".parquet":
        names, labels = parquet_labels(path, columns["label_column"])
    elif path.suffix == ".csv":
        names, labels = csv_labels(path, columns["label_column"])
    else:
        names, labels = json_labels(path, columns["label_column"])
    for role, column in columns.items():
        if column not in names:
            raise UserError(f"{split} split has no column {column!r} (columns: {', '.join(names)}); set {role}=<name>")
    if not labels:
        raise UserError(f"the {split} split is empty ({path})")
    return labels


def parquet_labels(path: Path, label: str) -> tuple[list[str], list]:
    import pyarrow.parquet as pq  # (lazy: the checks run before any heavy import)

    try:
        names = pq.read_schema(path).names
        return names, pq.read_table(path, columns=[label]).column(0).to_pylist() if label in names else [None]
    except Exception as error:  # noqa: BLE001 - pyarrow's errors name the damage; any of them means unreadable
        raise UserError(f"cannot read {path}: {first_line(error)}") from None


def utf8_lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded; a byte that is not UTF-8 stops with the line and the byte."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise UserError(
                    f"{path}: line {number} is not UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1}): "
                    "save the file as UTF-8 (it may be latin-1 or cp1252)"
                ) from None


def csv_labels(path: Path, label: str) -> tuple[list[str], list]:
    """Like the `datasets` CSV reader (pandas): blank lines skipped, a row with fewer fields than the
    header padded with missing values, a row with more refused."""
    csv.field_size_limit(2**31 - 1)  # a long review is one field
    reader = csv.reader(utf8_lines(path))
    try:
        header = next(reader, [])
        position = header.index(label) if label in header else None
        labels = []
        for row in reader:
            if not row:
                continue
            if len(row) > len(header):
                raise UserError(
                    f"{path}: line {reader.line_num} has {len(row)} fields, the header has {len(header)} "
                    f'({", ".join(header)}): quote a field that holds a comma ("...")'
                )
            value = row[position] if position is not None and position < len(row) else ""
            labels.append(value if value.strip() else None)
    except csv.Error as error:
        raise UserError(f"{path}: line {reader.line_num}: {error}") from None
    return header, labels


def json_labels(path: Path, label: str) -> tuple[list[str], list]:
    """JSON lines (one object a line), or one JSON array of objects, as the `datasets` JSON reader takes."""
    lines = utf8_lines(path)
    records: list = []
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("["):  # one document: parse it whole
        text = first + "".join(lines)
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}: line {error.lineno}: not valid JSON ({error.msg})") from None
        numbered = list(enumerate(records, 1))
        where = "item"
    else:
        numbered, where = [], "line"
        for number, line in enumerate([first, *lines], 1):
            if not line.strip():
                continue
            try:
                numbered.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise UserError(
                    f"{path}: line {number}: not valid JSON ({error.msg} at column {error.colno}); "
                    "each line must be one JSON object"
                ) from None
    names: dict[str, None] = {}
    labels = []
    for number, record in numbered:
        if not isinstance(record, dict):
            raise UserError(f"{path}: {where} {number}: expected a JSON object, got {type(record).__name__}")
        names.update(dict.fromkeys(record))
        labels.append(record.get(label))
    return list(names), labels


def check_labels(labels: dict[str, list], files: dict[str, Path], settings: dict) -> None:
    """No row without a label; numbers or names, not both (a CSV's pos, 1, neg, 0 became four classes);
    at least two classes in the rows the network learns from (one class broke torchmetrics); and folds
    that every class can fill."""
    column = settings["label_column"]
    for split, values in labels.items():
        missing = sum(value is None for value in values)
        if missing:
            raise UserError(f"{split} split has {missing} rows without a label: fill or remove them")
        if any(isinstance(value, (list, dict)) for value in values):
            raise UserError("labels must be integers or class names (found lists or mappings)")
    mapping = parse_label_map(settings["label_map"]) if settings["label_map"] else {}
    values = {value for split_values in labels.values() for value in split_values}
    if not mapping and all(isinstance(value, str) for value in values):  # (other mixes: `text.label_mapping`)
        numbers = sorted(v for v in values if is_number(v))
        names = sorted(v for v in values if not is_number(v))
        if numbers and names:
            shown = ", ".join(numbers[:3] + names[:3]) + (", ..." if len(values) > 6 else "")
            raise UserError(
                f"the labels in column {column!r} mix numbers and class names ({shown}): use one kind "
                "(integers 0..K-1 or class names), or set label_map=<label>:<id>,... naming every value"
            )
    folds = settings.get("folds", 0)
    learned = [split for split in SPLITS if split in labels] if folds and settings.get("cv_merge") else ["train"]
    counts: dict[str, int] = {}
    for split in learned:
        for value in labels[split]:
            key = class_key(value)
            key = str(mapping.get(key, key))
            counts[key] = counts.get(key, 0) + 1
    if len(counts) < 2:
        ((value, rows),) = counts.items()
        raise UserError(
            f"{files['train']}: every label in column {column!r} is {value} ({rows} rows): a classifier "
            "needs two classes at least; check label_column= and the file"
        )
    if folds and len(files) > 1 and not settings.get("cv_merge"):
        given = ", ".join(s for s in SPLITS if s in files)
        raise UserError(
            f"folds={folds} cross-validates over one file, but the data has {given} splits: "
            "set cv_merge=true to merge them into one pool, or give one file"
        )
    smallest = min(counts, key=counts.get)
    if folds > counts[smallest]:
        raise UserError(
            f"folds={folds}: class {smallest} has only {counts[smallest]} examples; "
            f"use at most folds={max(counts[smallest], 2)}"
        )


def parse_label_map(text: str) -> dict[str, int]:
    """ "neg:0,pos:1" -> {"neg": 0, "pos": 1}; ids must be 0..K-1."""
    mapping: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.rpartition(":")
        if not sep or not key or not value.strip().lstrip("-").isdigit():
            raise UserError(f"label_map={text!r}: expected label:id pairs separated by commas, e.g. neg:0,pos:1")
        mapping[key] = int(value)
    if sorted(set(mapping.values())) != list(range(len(set(mapping.values())))):
        raise UserError(f"label_map={text!r}: ids must be 0..K-1 (got {sorted(set(mapping.values()))})")
    return mapping


def is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (isinstance(value, str) and bool(NUMBER.fullmatch(value)))


def class_key(value) -> str:
    """One class, however it is written: 1, 1.0 and "1" are all "1"."""
    if is_number(value):
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    return str(value)


# -- the hub -------------------------------------------------------------------------------------------
def offline() -> bool:
    value = os.environ.get("HF_DATASETS_OFFLINE", os.environ.get("HF_HUB_OFFLINE", ""))
    return value.upper() in ("1", "ON", "YES", "TRUE")


def check_hub(hub_id: str) -> None:
    """A hub dataset that is neither in the cache nor downloadable fails now, in one line: `datasets`
    took 31.5 s of retries to say so. Cached but the hub unreachable: loaded offline from the cache."""
    cached = (cache_dir() / "hf" / hub_id.replace("/", "___")).is_dir()
    fix = "use local files: data_dir=<folder with train/test .parquet|.csv|.jsonl>"
    if offline():
        if not cached:
            raise UserError(f"cannot load {hub_id}: HF_HUB_OFFLINE is set and it is not in the cache; {fix}")
        return
    host = os.environ.get("HF_ENDPOINT", f"https://{HUB}").split("://", 1)[-1].split("/", 1)[0]
    try:
        socket.create_connection((host.split(":")[0], int(host.split(":")[1]) if ":" in host else 443), 5).close()
    except OSError as error:
        if not cached:
            reason = "name not resolved" if isinstance(error, socket.gaierror) else first_line(error, 80)
            raise UserError(
                f"cannot reach the Hugging Face hub ({host}: {reason}) to download {hub_id}; {fix}"
            ) from None
        os.environ["HF_HUB_OFFLINE"] = "1"  # read when `datasets` is imported, which has not happened yet
