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
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, repeat
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
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
        if isinstance(values[index], datetime):
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
# The exporter's timestamps arrive as ISO 8601 text already (iso_timestamps): isoformat
# cost three quarters of a microsecond per value, the largest part of the encoding.
def _json_float(value: Any) -> str:
    if value is None:
        return "null"
    if value != value or value in (math.inf, -math.inf):
        return json.dumps(value)  # NaN, Infinity, -Infinity as json.dumps writes them
    return repr(value)


_NOT_FINITE = frozenset(("nan", "inf", "-inf"))


def _json_floats(values: Sequence[Any]) -> list[str]:
    """_json_float of each value. A column of finite floats (the usual case) is mapped by
    float.__repr__ in C, which is what json.dumps writes for them; a None, an int or a
    NaN or infinity anywhere sends the whole column the per-value way."""
    try:
        encoded = list(map(float.__repr__, values))
    except TypeError:  # a None or a value that is not a float
        return list(map(_json_float, values))
    if _NOT_FINITE.isdisjoint(encoded):
        return encoded
    return list(map(_json_float, values))


_json_string = json.encoder.encode_basestring  # the encoder json.dumps(ensure_ascii=False) uses


def _encode_column(field_type: str, nullable: bool, values: Sequence[Any]) -> list[str]:
    """One column's values as JSON texts, exactly as json.dumps writes them (a column that
    may not be null is mapped without the None test, and fails loudly on a None). A
    timestamp that may not be null is left as it is: its template part has the quotes."""
    if field_type in ("string", "json"):
        if not nullable:
            return list(map(_json_string, values))
        return [_json_string(v) if v is not None else "null" for v in values]
    if field_type == "int64":
        if not nullable:
            return list(map(int.__repr__, values))
        return [int.__repr__(v) if v is not None else "null" for v in values]
    if field_type == "float64":
        return _json_floats(values)
    if field_type == "bool":
        return ["true" if v else "false" for v in values]
    if field_type == "timestamp":  # ISO 8601 text, which needs no escaping
        if not nullable:
            return list(values)
        return ['"' + v + '"' if v is not None else "null" for v in values]
    raise ValueError(f"unknown field type {field_type!r}")


def _key_and_quotes(name: str, field_type: str, nullable: bool) -> tuple[str, str]:
    """The text before and after a field's value in a line: its key, and the quotes of a
    timestamp that may not be null (see _encode_column)."""
    if field_type == "timestamp" and not nullable:
        return f'"{name}":"', '"'
    return f'"{name}":', ""


def _column_text(field_type: str, nullable: bool, column: Sequence[Any]) -> str | list[str]:
    """The column encoded for its template part: one text when every row of the batch has
    the same, else one text per row."""
    if _all_equal(column) and _print_alike(field_type, column):
        return _encode_column(field_type, nullable, column[:1])[0]
    encoded = _encode_column(field_type, nullable, column)
    if field_type == "float64" and _all_equal(encoded):
        return encoded[0]
    return encoded


def _all_equal(values: Sequence[Any]) -> bool:
    # First against last before counting: ids, payloads and times differ there at once.
    return len(values) > 1 and values[0] == values[-1] and values.count(values[0]) == len(values)


def _print_alike(field_type: str, equal_values: Sequence[Any]) -> bool:
    """Whether values that compare equal also encode the same. Floats may not: 0.0 and
    -0.0, or 1 and 1.0; those columns are compared once encoded instead."""
    if field_type != "float64":
        return True
    return equal_values[0] != 0 and set(map(type, equal_values)) == {float}


def canonical_lines(columns: Sequence[Sequence[Any]]) -> list[str]:
    """canonical_line of every row of a batch given as SCHEMA-ordered columns, timestamps
    as ISO 8601 text (see iso_timestamps).

    Each line is joined from its pieces: the constant texts between the varying values
    (keys, commas, braces) and the values. A column with one value across the batch
    (always the queue; usually the policy, the route, the model) goes into the constant
    text once rather than into every line. Joining a row's pieces with str.join cost half
    what a %-template per row did (the template is parsed again for every line)."""
    pieces: list[str | list[str]] = []  # constant texts and varying columns, alternating
    constant = "{"
    for position, (field, column) in enumerate(zip(SCHEMA, columns, strict=True)):
        before, after = _key_and_quotes(field.name, field.type, field.nullable)
        if position:
            before = "," + before
        text = _column_text(field.type, field.nullable, column)
        if isinstance(text, str):
            constant += before + text + after
        else:
            pieces += [constant + before, text]
            constant = after
    last = constant + "}\n"
    rows = len(columns[0])
    if not pieces:  # every column the same: one line repeated
        return [last] * rows
    pieces.append(last)
    columns_of_pieces = [repeat(p, rows) if isinstance(p, str) else p for p in pieces]
    return list(map("".join, zip(*columns_of_pieces, strict=True)))


def iso_timestamps(columns: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """The batch with its timestamp columns as ISO 8601 text (datetime.isoformat), the
    form canonical_lines and the writers take. PostgreSQL sends them as text already."""
    return [
        [v.isoformat() if v is not None else None for v in column]
        if field.type == "timestamp"
        else column
        for field, column in zip(SCHEMA, columns, strict=True)
    ]


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
    """`values` grouped by the split of their row, in row order (selected in C: a loop
    in Python over every row cost a tenth of a second per million)."""
    groups = {split: list(compress(values, map(split.__eq__, split_column))) for split in SPLITS}
    return {split: group for split, group in groups.items() if group}


def _split_batch(batch: pa.RecordBatch, split_column: Sequence[str]) -> dict[str, pa.RecordBatch]:
    """The batch's rows per split, in row order (splits without rows left out). Arrow's
    take copies each row once, in C: picking each column's Python values per split before
    converting cost 0.5 µs a row more. A part owns its memory (a slice of one reordered
    batch would keep the other split's rows alive while its row group fills)."""
    if split_column.count(split_column[0]) == len(split_column):
        return {split_column[0]: batch}
    parts = {}
    for split in SPLITS:
        rows = array("i", compress(range(len(split_column)), map(split.__eq__, split_column)))
        if rows:
            indices = pa.Array.from_buffers(pa.int32(), len(rows), [None, pa.py_buffer(rows)])
            parts[split] = batch.take(indices)
    return parts


class InOrderThread:
    """Work handed to a thread of its own and done there in the order it was given, at most
    `ahead` tasks waiting (memory: that many batches). Hashing and writing a batch's bytes
    let go of the GIL, so done here they overlap with the encoding of the next batch
    instead of following it. An error in a task is raised by the next submit or drain."""

    def __init__(self, ahead: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-io")
        self._pending: deque[Future[None]] = deque()
        self._ahead = ahead

    def submit(self, task: Callable[..., None], *args: Any) -> None:
        while len(self._pending) >= self._ahead:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(task, *args))

    def drain(self) -> None:
        """Wait until every task given so far is done."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self._pool.shutdown()


class JsonlWriter(_SplitFiles):
    """The canonical lines themselves; each file's hash is taken as it is written, so the
    (large) files are not read back."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "jsonl")
        self.handles: dict[str, BinaryIO] = {}
        self.hashes: dict[str, Any] = {}
        self.sizes = dict.fromkeys(SPLITS, 0)
        self.io = InOrderThread()

    def write(self, columns: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        for split, split_lines in _by_split(columns[_SPLIT], lines).items():
            handle = self.handles.get(split)
            if handle is None:
                handle = self.handles[split] = self.path(split).open("wb", buffering=1 << 20)
                self.hashes[split] = hashlib.sha256()
            data = "".join(split_lines).encode("utf-8")
            self.io.submit(_write_and_hash, handle, self.hashes[split], data)
            self.sizes[split] += len(data)
            self.counts[split] += len(split_lines)

    def digest(self, split: str) -> tuple[int, str]:
        return self.sizes[split], self.hashes[split].hexdigest()

    def abort(self) -> None:
        try:
            self.io.close()  # a file is closed only once nothing writes to it
        except Exception:  # noqa: BLE001  failing already: what was written is thrown away
            pass
        finally:
            for handle in self.handles.values():
                handle.close()

    def close(self) -> list[WrittenFile]:
        try:
            self.io.close()  # raises what went wrong writing
        finally:
            for handle in self.handles.values():
                handle.close()
        return self.written()


def _write_and_hash(handle: BinaryIO, digest: Any, data: bytes) -> None:
    handle.write(data)
    digest.update(data)


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


def _arrow_array(column: Sequence[Any], arrow_type: pa.DataType, nullable: bool = True) -> pa.Array:
    """A column as Arrow, the array pa.array(column, type=arrow_type) makes, built here from
    its buffers: pa.array first imports pandas where it is installed (to look for pandas
    types), 50 MB of the build process's memory for nothing. Timestamps come as ISO 8601
    text, which Arrow parses in C (converting datetime objects took a second a million).

    A column that may not be null is not searched for nulls (a comparison with None per
    value, a third of a microsecond per row over the schema's 14 such columns). A None
    that got into one fails the conversion of an int, float, text or time column with a
    TypeError; the two such flags (overridden, audit) are made True or False by RowBuilder."""
    if pa.types.is_timestamp(arrow_type):
        return _arrow_array(column, pa.string(), nullable).cast(arrow_type)
    filler, dtype = _FILLERS[arrow_type]
    validity: pa.Buffer | None = None
    values = column
    if nullable and None in column:
        validity = _bits([value is not None for value in column])
        values = [value if value is not None else filler for value in column]
    if dtype is str:
        return _string_array(values, validity)
    # array.array and bytes read a list in C at a few ns a value; np.array took 70.
    data = _bits(values) if dtype == "bool" else pa.py_buffer(array(dtype, values))
    return pa.Array.from_buffers(arrow_type, len(values), [validity, data])


# Per Arrow type: the value that stands in a null's slot, and the array.array typecode of
# the data (8-byte ints and doubles), "bool" for bits or str for strings.
_FILLERS: dict[pa.DataType, tuple[Any, Any]] = {
    pa.int64(): (0, "q"),
    pa.float64(): (0.0, "d"),
    pa.bool_(): (False, "bool"),
    pa.string(): ("", str),
}


def _bits(flags: Sequence[Any]) -> pa.Buffer:
    """Truth values as an Arrow bitmap (least significant bit first)."""
    try:
        as_bytes = np.frombuffer(bytes(flags), dtype=np.uint8)  # bools are the ints 0 and 1
    except (TypeError, ValueError):  # other values: their truth
        as_bytes = np.frombuffer(bytes(map(bool, flags)), dtype=np.uint8)
    return pa.py_buffer(np.packbits(as_bytes, bitorder="little"))


def _string_array(values: Sequence[str], validity: pa.Buffer | None) -> pa.Array:
    """Arrow strings: the UTF-8 bytes of all values, and where each one starts."""
    if len(values) > 1 and values.count(values[0]) == len(values):
        # One value across the batch (the queue, the model, the route): no per-value work.
        one = values[0].encode("utf-8")
        offsets = np.arange(len(values) + 1, dtype=np.int64) * len(one)
        return _from_offsets(offsets, one * len(values), validity)
    text = "".join(values)
    data = text.encode("utf-8")
    if len(data) == len(text):  # ASCII only: a character is a byte
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    else:
        lengths = np.fromiter(
            (len(value.encode("utf-8")) for value in values), dtype=np.int64, count=len(values)
        )
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return _from_offsets(offsets, data, validity)


def _from_offsets(offsets: Any, data: bytes, validity: pa.Buffer | None) -> pa.Array:
    if offsets[-1] >= 2**31:  # pa.string's offsets are 32-bit
        raise ValueError("a batch of more than 2 GB of text in one column")
    buffers = [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), len(offsets) - 1, buffers)


class ParquetWriter(_SplitFiles):
    """Zstandard-compressed Parquet. Columns go to Arrow as they are (no per-row work in
    Python); a split's batches are held in Arrow until they make a row group of
    ROW_GROUP_ROWS, so row groups stay large whatever the fetch batch size.

    A row group is encoded, compressed and written by a thread of its own while the next
    one is gathered: Arrow does that without the GIL, so it takes a second per million
    rows off the thread that encodes the rows. One row group at a time is in flight."""

    # Half of 16,384, which cost 10 MB more at the peak for a file of the same size.
    ROW_GROUP_ROWS = 8_192
    # Dictionary-encode only the columns with few distinct values: for ids, payloads and
    # comments a dictionary is memory spent (per open row group) for no smaller file.
    DICTIONARY_COLUMNS = [f.name for f in SCHEMA if f.name in _FEW_VALUES]

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "parquet")
        # The C library's allocator, for this process: Arrow's default (mimalloc) kept
        # 12 MB more resident at the peak of a million-row export, as it holds on to
        # freed pages that malloc gives back (release_unused, after each row group).
        pa.set_memory_pool(pa.system_memory_pool())
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.pending: dict[str, list[pa.RecordBatch]] = {split: [] for split in SPLITS}
        self.background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self.in_flight: Future[None] | None = None

    def write(self, columns: Sequence[Sequence[Any]], lines: Sequence[str]) -> None:
        if not columns[_SPLIT]:
            return
        batch = pa.RecordBatch.from_arrays(
            [
                _arrow_array(column, field.type, field.nullable)
                for column, field in zip(columns, ARROW_SCHEMA, strict=True)
            ],
            schema=ARROW_SCHEMA,
        )
        for split, part in _split_batch(batch, columns[_SPLIT]).items():
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
        self.pending[split] = []
        self._wait()
        self.in_flight = self.background.submit(_write_row_group, self.writers[split], table)

    def _wait(self) -> None:
        """Wait for the row group in flight; raises what went wrong writing it."""
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            in_flight.result()

    def abort(self) -> None:
        try:
            self._wait()  # a file is closed only once nothing writes to it
        except Exception:  # noqa: BLE001  failing already: what was written is thrown away
            pass
        self.background.shutdown()
        for writer in self.writers.values():
            writer.close()

    def close(self) -> list[WrittenFile]:
        try:
            for split in SPLITS:
                self._flush(split)
            self._wait()
        finally:
            self.abort()
        return self.written()


def _write_row_group(writer: pq.ParquetWriter, table: pa.Table) -> None:
    writer.write_table(table, row_group_size=len(table))
    del table
    pa.default_memory_pool().release_unused()  # keep the peak at one row group in flight


def open_writer(fmt: str, directory: Path) -> DatasetWriter:
    """A writer of `fmt` (jsonl, csv or parquet) into `directory`/data/."""
    writers: dict[str, Callable[[Path], DatasetWriter]] = {
        "jsonl": JsonlWriter,
        "csv": CsvWriter,
        "parquet": ParquetWriter,
    }
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
