"""Reading CSV and JSON Lines files row by row, and turning rows into API-shaped items.

Everything here streams: a file is read a line at a time, so a million-row file costs the
memory of one row. Rows come out as (line number, values or a problem); the column mapping
then shapes the values into the same dict the JSON API accepts, so file rows are checked by
the very rules the API applies (services.ingest.parse_ingest_body).
"""

from __future__ import annotations

import codecs
import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from review.services.errors import ValidationFailed

FORMATS_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# Keys of this many JSON lines are read to offer the file's columns in the mapping step.
JSONL_SAMPLE_LINES = 1000
# Large enough for any payload the API accepts (256 KiB of JSON) in one CSV cell.
CSV_FIELD_LIMIT = 16 * 1024 * 1024

# Column names recognised without asking, in order of preference (compared lowercased).
ID_NAMES = ("external_id", "id", "item_id", "ticket_id", "key")
LABEL_NAMES = ("ai_label", "predicted_label", "prediction", "label")
CONFIDENCE_NAMES = ("confidence", "ai_confidence", "score", "probability")
MODEL_NAMES = ("model", "ai_model", "model_name")
PRIORITY_NAMES = ("priority",)


def file_format(filename: str) -> str:
    """ "csv" or "jsonl" from the file name; ValidationFailed for anything else."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS_BY_SUFFIX:
        raise ValidationFailed(
            "unsupported file type",
            {"file": "must be a .csv, .jsonl or .ndjson file"},
        )
    return FORMATS_BY_SUFFIX[suffix]


@dataclass(frozen=True)
class Row:
    """One record of the file: its first line number and its values, or why it is unreadable."""

    line: int
    values: dict[str, Any] | None
    problem: str | None = None


class ProgressFile:
    """The open binary file, so callers can ask how far reading has got (in bytes)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle

    @property
    def bytes_read(self) -> int:
        return self.handle.tell()


def _decoded_lines(handle: BinaryIO, bad_lines: set[int]) -> Iterator[str]:
    """The file's lines as text. A line that is not UTF-8 is decoded with replacement
    characters and its number noted in `bad_lines`, so only that row is refused."""
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]  # Excel writes a byte-order mark
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.add(number)
            yield raw.decode("utf-8", errors="replace")


def _header(reader: Any, bad_lines: set[int]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationFailed("the file is empty", {"file": "is empty"}) from None
    except csv.Error as exc:
        raise ValidationFailed("unreadable header", {"file": f"header: {exc}"}) from None
    if 1 in bad_lines:
        raise ValidationFailed("header is not UTF-8", {"file": "the header is not UTF-8 text"})
    columns = [name.strip() for name in header]
    if not any(columns):
        raise ValidationFailed("no header", {"file": "the first line must name the columns"})
    if "" in columns:
        position = columns.index("") + 1
        raise ValidationFailed("unnamed column", {"file": f"column {position} has no name"})
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise ValidationFailed(
            "repeated column names", {"file": f"the header repeats {', '.join(repeated)}"}
        )
    return columns


def csv_columns(path: Path) -> list[str]:
    """The column names in the CSV file's first line."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    with path.open("rb") as handle:
        return _header(csv.reader(_decoded_lines(handle, set())), set())


def jsonl_columns(path: Path) -> list[str]:
    """Top-level keys of the first JSON objects in the file, in order of first appearance."""
    seen: dict[str, None] = {}
    objects = 0
    with path.open("rb") as handle:
        for raw in handle:
            if objects >= JSONL_SAMPLE_LINES:
                break
            try:
                value = json.loads(raw.removeprefix(codecs.BOM_UTF8))
            except ValueError:
                continue  # reported line by line at validation
            if isinstance(value, dict):
                objects += 1
                seen.update(dict.fromkeys(str(key) for key in value))
    if not objects:
        raise ValidationFailed("no JSON objects", {"file": "has no line holding a JSON object"})
    return list(seen)


def read_columns(path: Path, fmt: str) -> list[str]:
    return csv_columns(path) if fmt == "csv" else jsonl_columns(path)


def iter_csv_rows(progress: ProgressFile) -> Iterator[Row]:
    """Data records of a CSV file (after its header), keyed by column name."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    bad_lines: set[int] = set()
    reader = csv.reader(_decoded_lines(progress.handle, bad_lines))
    columns = _header(reader, bad_lines)
    while True:
        first_line = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(first_line, None, f"malformed CSV: {exc}")
            continue
        if not record:
            continue  # a blank line
        if any(first_line <= number <= reader.line_num for number in bad_lines):
            yield Row(first_line, None, "not valid UTF-8 text")
        elif len(record) != len(columns):
            yield Row(first_line, None, f"has {len(record)} fields, the header has {len(columns)}")
        else:
            yield Row(first_line, dict(zip(columns, record, strict=True)))


def iter_jsonl_rows(progress: ProgressFile) -> Iterator[Row]:
    """One JSON object per line; blank lines are skipped."""
    for number, raw in enumerate(progress.handle, start=1):
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except UnicodeDecodeError:
            yield Row(number, None, "not valid UTF-8 text")
            continue
        except ValueError as exc:
            yield Row(number, None, f"bad JSON: {exc}")
            continue
        if not isinstance(value, dict):
            yield Row(
                number, None, f"bad JSON: the line holds a {type(value).__name__}, not an object"
            )
            continue
        yield Row(number, value)


def iter_rows(progress: ProgressFile, fmt: str) -> Iterator[Row]:
    return iter_csv_rows(progress) if fmt == "csv" else iter_jsonl_rows(progress)


# --- the mapping ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mapping:
    """Which columns make up an item. Either `payload_columns` (each becomes a payload key)
    or `payload_json_column` (one column holding the whole payload as a JSON object)."""

    id_column: str
    payload_columns: tuple[str, ...] = ()
    payload_json_column: str | None = None
    label_column: str | None = None
    confidence_column: str | None = None
    model_column: str | None = None
    model_name: str | None = None
    priority_column: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id_column": self.id_column,
            "payload_columns": list(self.payload_columns),
            "payload_json_column": self.payload_json_column,
            "label_column": self.label_column,
            "confidence_column": self.confidence_column,
            "model_column": self.model_column,
            "model_name": self.model_name,
            "priority_column": self.priority_column,
        }

    @property
    def has_recommendation(self) -> bool:
        return self.label_column is not None


def _pick(columns: list[str], names: tuple[str, ...], taken: set[str]) -> str | None:
    lowered = {column.lower(): column for column in columns if column not in taken}
    return next((lowered[name] for name in names if name in lowered), None)


def suggest_mapping(columns: list[str]) -> dict[str, Any]:
    """A starting mapping guessed from common column names; the person confirms or edits it."""
    taken: set[str] = set()
    suggestion: dict[str, Any] = {}
    for key, names in (
        ("id_column", ID_NAMES),
        ("label_column", LABEL_NAMES),
        ("confidence_column", CONFIDENCE_NAMES),
        ("model_column", MODEL_NAMES),
        ("priority_column", PRIORITY_NAMES),
    ):
        suggestion[key] = _pick(columns, names, taken)
        if suggestion[key]:
            taken.add(suggestion[key])
    if "payload" in columns and "payload" not in taken:
        suggestion["payload_json_column"] = "payload"
        suggestion["payload_columns"] = []
    else:
        suggestion["payload_json_column"] = None
        suggestion["payload_columns"] = [c for c in columns if c not in taken]
    suggestion["model_name"] = None
    return suggestion


def _optional_column(
    data: dict[str, Any], key: str, columns: list[str], errors: dict[str, str]
) -> str | None:
    value = data.get(key) or None
    if value is not None and value not in columns:
        errors[key] = f"“{value}” is not a column of the file"
    return value


def parse_mapping(data: dict[str, Any], columns: list[str]) -> Mapping:
    """Check a mapping against the file's columns; ValidationFailed names each bad field."""
    errors: dict[str, str] = {}
    id_column = data.get("id_column") or None
    if id_column is None:
        errors["id_column"] = "choose the column that holds each item's external id"
    elif id_column not in columns:
        errors["id_column"] = f"“{id_column}” is not a column of the file"
    optional = {
        key: _optional_column(data, key, columns, errors)
        for key in (
            "payload_json_column",
            "label_column",
            "confidence_column",
            "model_column",
            "priority_column",
        )
    }
    payload_columns = list(dict.fromkeys(data.get("payload_columns") or []))
    if unknown := [c for c in payload_columns if c not in columns]:
        errors["payload_columns"] = f"not columns of the file: {', '.join(unknown)}"
    elif optional["payload_json_column"] and payload_columns:
        errors["payload_columns"] = "choose payload columns or one JSON payload column, not both"
    elif not optional["payload_json_column"] and not payload_columns:
        errors["payload_columns"] = "choose at least one column for the payload"
    model_name = (data.get("model_name") or "").strip() or None
    if model_name is not None and len(model_name) > 100:
        errors["model_name"] = "must be at most 100 characters"
    if optional["label_column"]:
        if not optional["confidence_column"]:
            errors["confidence_column"] = "a recommended label needs its confidence column"
        if not optional["model_column"] and not model_name:
            errors["model_name"] = "name the model that made the recommendations, or its column"
    elif optional["confidence_column"] or optional["model_column"]:
        errors["label_column"] = "choose the label column, or clear the confidence and model"
    used = [id_column, *optional.values()]
    if id_column in payload_columns:
        errors["payload_columns"] = "the external id column cannot also be a payload column"
    if len([c for c in used if c]) != len({c for c in used if c}):
        errors.setdefault("mapping", "a column may play only one part (id, label, ...)")
    # An id column that is not a string is among the errors already; the second test is
    # for the type checker.
    if errors or not isinstance(id_column, str):
        raise ValidationFailed("invalid column mapping", errors)
    return Mapping(
        id_column=id_column,
        payload_columns=tuple(payload_columns),
        payload_json_column=optional["payload_json_column"],
        label_column=optional["label_column"],
        confidence_column=optional["confidence_column"],
        model_column=optional["model_column"],
        model_name=model_name,
        priority_column=optional["priority_column"],
    )


# --- rows into items -----------------------------------------------------------------------


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: Any) -> Any:
    """CSV cells are text: "0.93" becomes 0.93. Anything unparseable is passed on as it is,
    so the ingest rules refuse it and say why."""
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return value
    return value


@dataclass(frozen=True)
class Shaped:
    """A row in the API's item shape, or the reason it cannot be shaped."""

    raw: dict[str, Any] | None
    problem: str | None = None


def shape_row(values: dict[str, Any], mapping: Mapping) -> Shaped:
    """Build {"external_id", "payload", "priority", "recommendation"} from a row's values."""
    external_id = values.get(mapping.id_column)
    if _is_blank(external_id):
        return Shaped(None, f"missing external id (column “{mapping.id_column}” is empty)")
    if isinstance(external_id, int | float) and not isinstance(external_id, bool):
        external_id = str(external_id)  # JSON ids are often numbers
    if mapping.payload_json_column:
        payload = values.get(mapping.payload_json_column)
        if isinstance(payload, str):
            try:
                payload = json.loads(payload)
            except ValueError as exc:
                return Shaped(None, f"bad JSON in column “{mapping.payload_json_column}”: {exc}")
        if not isinstance(payload, dict):
            return Shaped(None, f"column “{mapping.payload_json_column}” must hold a JSON object")
    else:
        payload = {column: values.get(column) for column in mapping.payload_columns}
    raw: dict[str, Any] = {"external_id": external_id, "payload": payload}
    if mapping.priority_column and not _is_blank(values.get(mapping.priority_column)):
        raw["priority"] = _integer(values[mapping.priority_column])
    if mapping.label_column:
        label = values.get(mapping.label_column)
        confidence = values.get(mapping.confidence_column)  # type: ignore[arg-type]
        if not (_is_blank(label) and _is_blank(confidence)):
            model = values.get(mapping.model_column) if mapping.model_column else None
            raw["recommendation"] = {
                "label": label.strip() if isinstance(label, str) else label,
                "confidence": None if _is_blank(confidence) else _number(confidence),
                "model": mapping.model_name if _is_blank(model) else model,
            }
    return Shaped(raw)


# Which column each ingest field came from, and what to call it in a report.
def _field_source(mapping: Mapping) -> dict[str, tuple[str, str | None]]:
    return {
        "external_id": ("external id", mapping.id_column),
        "payload": ("payload", mapping.payload_json_column),
        "priority": ("priority", mapping.priority_column),
        "recommendation.label": ("label", mapping.label_column),
        "recommendation.confidence": ("confidence", mapping.confidence_column),
        "recommendation.model": ("model", mapping.model_column),
    }


def describe_problems(fields: dict[str, str], values: dict[str, Any], mapping: Mapping) -> str:
    """Turn ingest's field errors into one sentence naming the column and its value."""
    sources = _field_source(mapping)
    parts = []
    for field_name, message in fields.items():
        what, column = sources.get(field_name, (field_name, None))
        if column is None:
            parts.append(f"{what} {message}")
            continue
        value = values.get(column)
        if _is_blank(value):
            parts.append(f"{what} (column “{column}”) is empty: it {message}")
        else:
            shown = value if isinstance(value, str) else json.dumps(value)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            parts.append(f"{what} “{shown}” (column “{column}”) {message}")
    return "; ".join(parts)
