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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
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
    def write(self, rows: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        """Append a batch: `rows` and their canonical JSON `lines`, in the same order."""

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

    def written(self) -> list[WrittenFile]:
        files = []
        for split in SPLITS:
            if self.counts[split]:
                relative = data_path(self.fmt, split)
                size, digest = file_digest(self.directory / relative)
                files.append(WrittenFile(relative, split, self.counts[split], size, digest))
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


class JsonlWriter(_SplitFiles):
    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "jsonl")
        self.handles: dict[str, io.TextIOWrapper] = {}

    def write(self, rows: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        for row, line in zip(rows, lines, strict=True):
            split = row[_SPLIT]
            handle = self.handles.get(split)
            if handle is None:
                handle = self.handles[split] = self.path(split).open(
                    "w", encoding="utf-8", newline="\n", buffering=1 << 20
                )
            handle.write(line)
            self.counts[split] += 1

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

    def write(self, rows: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        for row in rows:
            split = row[_SPLIT]
            self._writer(split).writerow([_csv_cell(value) for value in row])
            self.counts[split] += 1

    def abort(self) -> None:
        for handle in self.handles.values():
            handle.close()

    def close(self) -> list[WrittenFile]:
        self.abort()
        return self.written()


class ParquetWriter(_SplitFiles):
    """Zstandard-compressed Parquet; each batch given to `write` becomes one row group."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "parquet")
        self.writers: dict[str, pq.ParquetWriter] = {}

    def write(self, rows: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        by_split: dict[str, list[Sequence[Any]]] = {}
        for row in rows:
            by_split.setdefault(row[_SPLIT], []).append(row)
        for split, split_rows in by_split.items():
            columns = list(zip(*split_rows, strict=True))
            batch = pa.RecordBatch.from_arrays(
                [
                    pa.array(column, type=field.type)
                    for column, field in zip(columns, ARROW_SCHEMA, strict=True)
                ],
                schema=ARROW_SCHEMA,
            )
            if split not in self.writers:
                self.writers[split] = pq.ParquetWriter(
                    self.path(split), ARROW_SCHEMA, compression="zstd"
                )
            self.writers[split].write_batch(batch)
            self.counts[split] += len(split_rows)

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def close(self) -> list[WrittenFile]:
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
