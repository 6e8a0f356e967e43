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
from collections import Counter
from pathlib import Path
from typing import Iterator

from bench.errors import UserError, first_line
from bench.paths import cache_dir

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
SPLITS = ("train", "validation", "test")
NUMBER = re.compile(r"\s*[-+]?\d+(\.\d*)?\s*")  # how a label that is a number reads in a CSV file
INTEGER = re.compile(r"\s*[-+]?\d+\s*")
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
    """The label column's values of the rows that have a text (as `text.drop_blank_texts` keeps them),
    once the file is known to be readable, to have both columns and a label on every row. CSV labels
    are typed as the `datasets` CSV reader types them (all integers: ints; all numbers: floats)."""
    if path.stat().st_size == 0:
        raise UserError(f"the {split} split is empty ({path})")
    if path.suffix == ".parquet":
        names, rows = parquet_rows(path, columns)
    elif path.suffix == ".csv":
        names, rows = csv_rows(path, columns)
    else:
        names, rows = json_rows(path, columns)
    for role, column in columns.items():
        if column not in names:
            raise UserError(f"{split} split has no column {column!r} (columns: {', '.join(names)}); set {role}=<name>")
    if not rows:
        raise UserError(f"the {split} split is empty ({path})")
    missing = sum(label is None for label, _ in rows)
    if missing:
        raise UserError(f"{split} split has {missing} rows without a label: fill or remove them")
    kept = [label for label, text in rows if isinstance(text, str) and text.strip()]
    if not kept:
        raise UserError(blank_split(split, len(rows)))
    return typed_like_datasets(kept) if path.suffix == ".csv" else kept


def typed_like_datasets(values: list) -> list:
    """CSV labels as pandas reads the column: integers when every value is one, numbers when every
    value is one, else the strings."""
    if all(INTEGER.fullmatch(value) for value in values):
        return [int(value) for value in values]
    if all(NUMBER.fullmatch(value) for value in values):
        return [float(value) for value in values]
    return values


def blank_split(split: str, dropped: int) -> str:
    return f"the {split} split is empty after dropping {dropped} blank or missing texts"


def parquet_rows(path: Path, columns: dict[str, str]) -> tuple[list[str], list[tuple]]:
    import pyarrow.parquet as pq  # (lazy: the checks run before any heavy import)

    try:
        names = pq.read_schema(path).names
        if not all(column in names for column in columns.values()):
            return names, [(None, None)]
        table = pq.read_table(path, columns=[columns["label_column"], columns["text_column"]])
        return names, list(zip(table.column(0).to_pylist(), table.column(1).to_pylist()))
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


def csv_rows(path: Path, columns: dict[str, str]) -> tuple[list[str], list[tuple]]:
    """(label, text) of every row, like the `datasets` CSV reader (pandas): blank lines skipped, a row
    with fewer fields than the header padded with missing values, a row with more refused."""
    csv.field_size_limit(2**31 - 1)  # a long review is one field
    reader = csv.reader(utf8_lines(path))
    try:
        header = next(reader, [])
        label, text = (
            header.index(c) if c in header else None for c in (columns["label_column"], columns["text_column"])
        )
        rows = []
        for row in reader:
            if not row:
                continue
            if len(row) > len(header):
                raise UserError(
                    f"{path}: line {reader.line_num} has {len(row)} fields, the header has {len(header)} "
                    f'({", ".join(header)}): quote a field that holds a comma ("...")'
                )
            value = row[label] if label is not None and label < len(row) else ""
            rows.append((value if value.strip() else None, row[text] if text is not None and text < len(row) else None))
    except csv.Error as error:
        raise UserError(f"{path}: line {reader.line_num}: {error}") from None
    return header, rows


def json_rows(path: Path, columns: dict[str, str]) -> tuple[list[str], list[tuple]]:
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
    rows = []
    for number, record in numbered:
        if not isinstance(record, dict):
            raise UserError(f"{path}: {where} {number}: expected a JSON object, got {type(record).__name__}")
        names.update(dict.fromkeys(record))
        rows.append((record.get(columns["label_column"]), record.get(columns["text_column"])))
    return list(names), rows


def check_labels(labels: dict[str, list], files: dict[str, Path], settings: dict) -> None:
    """Labels as `text.py` will map them (numbers or names, not both: a CSV's pos, 1, neg, 0 became four
    classes; ids 0..K-1; label_map naming every label), and two classes at least in every split the
    run will have once test and validation are carved and a fold is taken (one class broke
    torchmetrics), with folds that every class can fill."""
    column = settings["label_column"]
    for values in labels.values():
        if any(isinstance(value, (list, dict)) for value in values):
            raise UserError("labels must be integers or class names (found lists or mappings)")
    given_map = parse_label_map(settings["label_map"]) if settings["label_map"] else {}
    values = {value for split_values in labels.values() for value in split_values}
    if not given_map and all(isinstance(value, str) for value in values):  # (other mixes: `label_mapping`)
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
    names = {}  # class id -> the label as the file writes it, for messages
    pooled: Counter = Counter()
    for split in learned:
        for value in labels[split]:
            key = str(given_map.get(class_key(value), class_key(value)))
            pooled[key] += 1
            names.setdefault(key, value)
    if len(pooled) < 2:
        ((value, rows),) = pooled.items()
        raise UserError(
            f"{files['train']}: every label in column {column!r} is {names[value]} ({rows} rows): a classifier "
            "needs two classes at least; check label_column= and the file"
        )
    if folds and len(files) > 1 and not settings.get("cv_merge"):
        given = ", ".join(s for s in SPLITS if s in files)
        raise UserError(
            f"folds={folds} cross-validates over one file, but the data has {given} splits: "
            "set cv_merge=true to merge them into one pool, or give one file"
        )
    smallest = min(pooled, key=pooled.get)
    if folds > pooled[smallest]:
        raise UserError(
            f"folds={folds}: class {names[smallest]} has only {pooled[smallest]} examples; "
            f"use at most folds={max(pooled[smallest], 2)}"
        )
    mapping, _ = label_mapping({split: list(dict.fromkeys(values)) for split, values in labels.items()}, settings)
    written = {mapping[label_key(v)] if mapping else int(v): v for values in labels.values() for v in values}
    counts = {
        split: Counter(mapping[label_key(v)] if mapping else int(v) for v in values) for split, values in labels.items()
    }
    check_split_classes(counts, files, settings, written)


def check_split_classes(counts: dict[str, Counter], files: dict[str, Path], settings: dict, written: dict) -> None:
    """Every split the run will have holds two classes at least: a validation or test file of one
    class cannot tell a classifier from always answering that class, and carving (one row of every
    class at least, `text.split_off`) can leave a rare class out of the training rows. `counts`: rows
    per class id and split; `written`: each id's label as the files write it."""
    for split in ("validation", "test"):
        if split in counts and len(counts[split]) < 2 and not settings.get("folds"):
            ((label, rows),) = counts[split].items()
            raise UserError(
                f"{files[split]}: every label of the {split} split is {written[label]} ({rows} rows): its "
                "accuracy could not tell a classifier from always answering that class; give it examples "
                f"of every class, or leave the {split} file out to carve a stratified {split} split"
            )
    train = carved_counts(counts, files, settings)
    lost = sorted(set().union(*counts.values()) - set(train))
    if len(train) < 2:
        raise UserError(
            f"{files['train']}: once the test and validation splits are carved (at least one row of every "
            f"class each), the training rows hold {written[next(iter(train))]} alone: add rows of "
            f"{', '.join(str(written[label]) for label in lost)}"
        )


def carved_counts(counts: dict[str, Counter], files: dict[str, Path], settings: dict) -> Counter:
    """The training rows per class that `text.carve` leaves (the same arithmetic, without the data):
    a test split carved from one file, a fold's test split, a validation split carved from the rest;
    the errors carving would raise, raised now. With folds, an upper bound (sklearn spreads a class
    over the folds: each test fold takes at least count // folds of it)."""
    folds, given = settings.get("folds", 0), ", ".join(s for s in SPLITS if s in files)
    if folds:
        pool = sum(counts.values(), Counter())
        train = Counter({label: rows - rows // folds for label, rows in pool.items()})
    elif "test" not in counts:
        train = carve_counts(counts["train"], settings.get("test_fraction", 0.0), NO_TEST.format(given=given))
    else:
        train = counts["train"]
    if folds or "validation" not in counts:
        train = carve_counts(train, settings["val_fraction"], NO_VALIDATION)
    rows = sum(train.values())
    if settings["train_subset"] > rows and not folds:
        raise UserError(subset_too_large(settings["train_subset"], rows))
    return +train


def carve_counts(counts: Counter, fraction: float, what: str) -> Counter:
    """The rows per class left once a stratified share `fraction` of every class is held out."""
    if not 0 < fraction < 1:
        raise UserError(what)
    rest = Counter({label: rows - held_rows(rows, fraction) for label, rows in counts.items() if rows})
    if not sum(rest.values()):
        raise UserError(nothing_left(what, sum(counts.values())))
    return +rest


# The carving rules that `text.carve` applies to the data and `carved_counts` to its label counts.
NO_TEST = (
    "the data has no test split ({given} only): set test_fraction in (0, 1) to carve one, or folds=K to cross-validate"
)
NO_VALIDATION = "the data has no validation split: set val_fraction in (0, 1) to carve one"


def held_rows(rows: int, fraction: float) -> int:
    """Rows of one class a stratified carve holds out: at least one, so every class is in the held split."""
    return max(1, int(rows * fraction))


def nothing_left(what: str, rows: int) -> str:
    return f"{what.split(':')[0]}: nothing left to train on ({rows} rows)"


def subset_too_large(subset: int, rows: int) -> str:
    return f"train_subset={subset} exceeds the {rows} training rows"


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


# -- labels as ids: shared with text.py, which applies them to the loaded data --------------------------
def check_integer_labels(labels: dict[str, list], classes: int) -> int:
    """K, once integer labels are known to be 0..K-1 (K = `classes`, or the largest training label + 1
    with every class present in train): never a class that no example has."""
    train = sorted(labels["train"])
    if not classes:
        classes = train[-1] + 1 if train else 0
        if train[0] < 0 or len(train) != classes:
            missing = sorted(set(range(classes)) - set(train))
            why = f"class {missing[0]} never occurs" if train[0] >= 0 else "negative labels"
            shown = ", ".join(map(str, train[:8])) + (", ..." if len(train) > 8 else "")
            suggestion = ",".join(f"{v}:{i}" for i, v in enumerate(train[:8])) + (",..." if len(train) > 8 else "")
            raise UserError(
                f"train split has labels {{{shown}}}, not 0..K-1 ({why}): set label_map={suggestion} "
                f"or remap the labels to 0..{len(train) - 1}"
            )
    for split, values in labels.items():
        bad = sorted(v for v in values if not 0 <= v < classes)
        if bad:
            raise UserError(
                f"{split} split has labels outside 0..{classes - 1}: {bad[:5]}; set label_map=... "
                f"(e.g. {','.join(f'{v}:{i}' for i, v in enumerate(train))}) or remap them"
            )
    return classes


def label_mapping(labels: dict[str, list], settings: dict) -> tuple[dict[str, int] | None, int]:
    """(label -> id, or None when the labels are already ids 0..K-1; K). Strings map in sorted order,
    learned from train only; any other split naming a label train lacks is an error."""
    if settings["label_map"]:
        mapping = parse_label_map(settings["label_map"])
        for split, values in labels.items():
            unknown = sorted({label_key(v) for v in values} - set(mapping), key=str)
            if unknown:
                raise UserError(f"{split} split has labels missing from label_map: {unknown[:5]}")
        return mapping, max(settings["num_classes"], max(mapping.values()) + 1)
    kinds = {type(v) for values in labels.values() for v in values}
    if kinds <= {int, float} and all(float(v).is_integer() for values in labels.values() for v in values):
        integers = {split: sorted({int(v) for v in values}) for split, values in labels.items()}
        classes = check_integer_labels(integers, settings["num_classes"])
        return (None if kinds == {int} else {label_key(v): int(v) for vs in labels.values() for v in vs}), classes
    if kinds != {str}:
        raise UserError(
            f"the labels mix types ({', '.join(sorted(k.__name__ for k in kinds))}): "
            "use one kind (integers 0..K-1 or class names), or set label_map=<label>:<id>,..."
        )
    names = sorted(set(labels["train"]))
    mapping = {name: index for index, name in enumerate(names)}
    for split, values in labels.items():
        unknown = sorted(set(values) - set(mapping))
        if unknown:
            raise UserError(
                f"{split} split has labels that train lacks: {unknown[:5]}; "
                f"set label_map=<label>:<id>,... naming every class"
            )
    return mapping, max(len(mapping), settings["num_classes"])


def label_key(value) -> str:
    """Labels as label_map keys: 2.0 and 2 are both "2"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
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
