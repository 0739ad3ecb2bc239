"""Writing snapshot rows to JSONL, CSV and Parquet, streaming, and reading them back.

Rows are tuples in the order of review.domain.datasets.SCHEMA. A writer keeps one open
file per split (data/train.<ext>, data/eval.<ext>) and never holds more than the batch it
is given, so memory does not grow with the row count. `read_rows` turns any of the three
formats back into the same Python values, for round trips, retraining and checks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from review.domain.datasets import FIELD_INDEX, FIELD_NAMES, SCHEMA, SPLITS

EXTENSIONS = {"jsonl": "jsonl", "csv": "csv", "parquet": "parquet"}
_SPLIT = FIELD_INDEX["split"]
_ARROW_TYPES = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "json": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
ARROW_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW_TYPES[f.type], nullable=f.nullable) for f in SCHEMA]
)


# Columns whose values repeat across rows (labels, names, routes): worth a dictionary.
_FEW_VALUES = frozenset(
    (
        "queue", "ai_label", "ai_source", "model", "model_version", "final_label",
        "overridden", "reason_code", "reviewer", "route", "audit", "split",
    )
)  # fmt: skip
_TIMESTAMPS = tuple(i for i, f in enumerate(SCHEMA) if f.type == "timestamp")


def canonical_line(row: Sequence[Any]) -> str:
    """The row as one line of compact JSON, keys in schema order, timestamps in ISO 8601.

    This is both a JSONL line and the unit of the snapshot's content hash.
    """
    values = list(row)
    for index in _TIMESTAMPS:
        if values[index] is not None:
            values[index] = values[index].isoformat()
    return (
        json.dumps(
            dict(zip(FIELD_NAMES, values, strict=True)), ensure_ascii=False, separators=(",", ":")
        )
        + "\n"
    )


# canonical_lines builds the same text as canonical_line without a dict and the generic
# encoder per row: each column is encoded by a function chosen once for its field type,
# then one %-template per row joins them. Same bytes (tests/services/test_dataset_lines.py).
def _template_part(name: str, field_type: str, nullable: bool) -> str:
    # A timestamp that is never null gets its quotes here, so its column is plain isoformat.
    quoted = field_type == "timestamp" and not nullable
    return f'"{name}":"%s"' if quoted else f'"{name}":%s'


_LINE_TEMPLATE = "{" + ",".join(_template_part(f.name, f.type, f.nullable) for f in SCHEMA) + "}\n"
_json_string = json.encoder.encode_basestring  # the encoder json.dumps(ensure_ascii=False) uses


def _json_float(value: Any) -> str:
    if value is None:
        return "null"
    if value != value or value in (math.inf, -math.inf):
        return json.dumps(value)  # NaN, Infinity, -Infinity as json.dumps writes them
    return repr(value)


def _encode_column(field_type: str, nullable: bool, values: Sequence[Any]) -> list[str]:
    """One column's values as JSON texts, exactly as json.dumps writes them (a column that
    may not be null is mapped without the None test, and fails loudly on a None)."""
    if field_type in ("string", "json"):
        if not nullable:
            return list(map(_json_string, values))
        return [_json_string(v) if v is not None else "null" for v in values]
    if field_type == "int64":
        if not nullable:
            return list(map(int.__repr__, values))
        return [int.__repr__(v) if v is not None else "null" for v in values]
    if field_type == "float64":
        return list(map(_json_float, values))
    if field_type == "bool":
        return ["true" if v else "false" for v in values]
    if field_type == "timestamp":
        if not nullable:
            return list(map(datetime.isoformat, values))
        return ['"' + v.isoformat() + '"' if v is not None else "null" for v in values]
    raise ValueError(f"unknown field type {field_type!r}")


def canonical_lines(columns: Sequence[Sequence[Any]]) -> list[str]:
    """canonical_line of every row of a batch given as SCHEMA-ordered columns."""
    encoded = [
        _encode_column(f.type, f.nullable, column)
        for f, column in zip(SCHEMA, columns, strict=True)
    ]
    return list(map(_LINE_TEMPLATE.__mod__, zip(*encoded, strict=True)))


def rows_of(columns: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """A batch's columns turned back into row tuples."""
    return list(zip(*columns, strict=True))


@dataclass(frozen=True)
class WrittenFile:
    path: str  # relative to the snapshot directory
    split: str
    rows: int
    bytes: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return vars(self).copy()


def data_path(fmt: str, split: str) -> str:
    return f"data/{split}.{EXTENSIONS[fmt]}"


class DatasetWriter(Protocol):
    def write(self, columns: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        """Append a batch: its SCHEMA-ordered `columns` and each row's canonical JSON line."""

    def close(self) -> list[WrittenFile]:
        """Finish every file; returns those that received rows (empty splits leave none)."""

    def abort(self) -> None:
        """Close every file after a failure; what was written is to be thrown away."""


class _SplitFiles:
    """Opens a split's file on its first row and tracks its row count."""

    def __init__(self, directory: Path, fmt: str) -> None:
        self.directory = directory
        self.fmt = fmt
        self.counts = dict.fromkeys(SPLITS, 0)

    def path(self, split: str) -> Path:
        path = self.directory / data_path(self.fmt, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def digest(self, split: str) -> tuple[int, str]:
        """(size, SHA-256) of the split's finished file."""
        return file_digest(self.directory / data_path(self.fmt, split))

    def written(self) -> list[WrittenFile]:
        files = []
        for split in SPLITS:
            if self.counts[split]:
                size, digest = self.digest(split)
                files.append(
                    WrittenFile(data_path(self.fmt, split), split, self.counts[split], size, digest)
                )
        return files


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _by_split(split_column: Sequence[str], values: Sequence[Any]) -> dict[str, list[Any]]:
    """`values` grouped by the split of their row, in row order."""
    if all(split == split_column[0] for split in split_column):
        return {split_column[0]: list(values)} if values else {}
    groups: dict[str, list[Any]] = {split: [] for split in SPLITS}
    for split, value in zip(split_column, values, strict=True):
        groups[split].append(value)
    return {split: group for split, group in groups.items() if group}


class JsonlWriter(_SplitFiles):
    """The canonical lines themselves; each file's hash is taken as it is written, so the
    (large) files are not read back."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "jsonl")
        self.handles: dict[str, io.BufferedWriter] = {}
        self.hashes: dict[str, Any] = {}
        self.sizes = dict.fromkeys(SPLITS, 0)

    def write(self, columns: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        for split, split_lines in _by_split(columns[_SPLIT], lines).items():
            handle = self.handles.get(split)
            if handle is None:
                handle = self.handles[split] = self.path(split).open("wb", buffering=1 << 20)
                self.hashes[split] = hashlib.sha256()
            data = "".join(split_lines).encode("utf-8")
            handle.write(data)
            self.hashes[split].update(data)
            self.sizes[split] += len(data)
            self.counts[split] += len(split_lines)

    def digest(self, split: str) -> tuple[int, str]:
        return self.sizes[split], self.hashes[split].hexdigest()

    def abort(self) -> None:
        for handle in self.handles.values():
            handle.close()

    def close(self) -> list[WrittenFile]:
        self.abort()
        return self.written()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class CsvWriter(_SplitFiles):
    """RFC 4180 CSV with a header row. Empty cells are nulls; booleans are true/false."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "csv")
        self.handles: dict[str, io.TextIOWrapper] = {}
        self.writers: dict[str, Any] = {}

    def _writer(self, split: str) -> Any:
        if split not in self.writers:
            handle = self.path(split).open("w", encoding="utf-8", newline="", buffering=1 << 20)
            self.handles[split] = handle
            self.writers[split] = csv.writer(handle, lineterminator="\n")
            self.writers[split].writerow(FIELD_NAMES)
        return self.writers[split]

    def write(self, columns: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        for split, rows in _by_split(columns[_SPLIT], rows_of(columns)).items():
            self._writer(split).writerows([_csv_cell(value) for value in row] for row in rows)
            self.counts[split] += len(rows)

    def abort(self) -> None:
        for handle in self.handles.values():
            handle.close()

    def close(self) -> list[WrittenFile]:
        self.abort()
        return self.written()


class ParquetWriter(_SplitFiles):
    """Zstandard-compressed Parquet. Columns go to Arrow as they are (no per-row work in
    Python); a split's batches are held in Arrow until they make a row group of
    ROW_GROUP_ROWS, so row groups stay large whatever the fetch batch size."""

    ROW_GROUP_ROWS = 16_384
    # Dictionary-encode only the columns with few distinct values: for ids, payloads and
    # comments a dictionary is memory spent (per open row group) for no smaller file.
    DICTIONARY_COLUMNS = [f.name for f in SCHEMA if f.name in _FEW_VALUES]

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "parquet")
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.pending: dict[str, list[pa.RecordBatch]] = {split: [] for split in SPLITS}

    def write(self, columns: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(column, type=field.type)
                for column, field in zip(columns, ARROW_SCHEMA, strict=True)
            ],
            schema=ARROW_SCHEMA,
        )
        split_array = batch.column(_SPLIT)
        for split in SPLITS:
            part = batch.filter(pc.equal(split_array, split))
            if part.num_rows:
                self.pending[split].append(part)
                self.counts[split] += part.num_rows
                if sum(b.num_rows for b in self.pending[split]) >= self.ROW_GROUP_ROWS:
                    self._flush(split)

    def _flush(self, split: str) -> None:
        if not self.pending[split]:
            return
        if split not in self.writers:
            self.writers[split] = pq.ParquetWriter(
                self.path(split),
                ARROW_SCHEMA,
                compression="zstd",
                use_dictionary=self.DICTIONARY_COLUMNS,
            )
        table = pa.Table.from_batches(self.pending[split], schema=ARROW_SCHEMA)
        self.writers[split].write_table(table, row_group_size=len(table))
        self.pending[split].clear()
        del table
        pa.default_memory_pool().release_unused()  # keep the peak at one row group

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def close(self) -> list[WrittenFile]:
        for split in SPLITS:
            self._flush(split)
        self.abort()
        return self.written()


def open_writer(fmt: str, directory: Path) -> DatasetWriter:
    """A writer of `fmt` (jsonl, csv or parquet) into `directory`/data/."""
    writers = {"jsonl": JsonlWriter, "csv": CsvWriter, "parquet": ParquetWriter}
    return writers[fmt](directory)


# --- reading back ---------------------------------------------------------------------


def _from_text(field_type: str, text: str | None, nullable: bool) -> Any:
    """A CSV cell or JSON string back to its typed value."""
    if text is None or (text == "" and nullable):
        return None
    if field_type == "int64":
        return int(text)
    if field_type == "float64":
        return float(text)
    if field_type == "bool":
        return text == "true"
    if field_type == "timestamp":
        return datetime.fromisoformat(text)
    return text


def _typed(record: dict[str, Any], from_csv: bool) -> dict[str, Any]:
    typed = {}
    for field in SCHEMA:
        value = record[field.name]
        if from_csv:
            value = _from_text(field.type, value, field.nullable)
        elif field.type == "timestamp" and value is not None:
            value = datetime.fromisoformat(value)
        typed[field.name] = value
    return typed


def read_rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """The rows of one data file as dicts with schema-typed values, streaming."""
    if fmt == "jsonl":
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                yield _typed(json.loads(line), from_csv=False)
    elif fmt == "csv":
        with path.open(encoding="utf-8", newline="") as handle:
            for record in csv.DictReader(handle):
                yield _typed(record, from_csv=True)
    elif fmt == "parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()
    else:
        raise ValueError(f"unknown format {fmt!r}")
