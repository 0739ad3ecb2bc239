"""The columnar fast paths of the exporter write exactly what the per-row code would:
the same canonical JSON lines (so the content hash cannot drift) and the same counts."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from review.domain.datasets import FIELD_NAMES, SCHEMA, DatasheetStats, split_for, splits_for
from review.services import dataset_writers
from review.services.dataset_writers import (
    canonical_line,
    canonical_lines,
    iso_timestamps,
    rows_of,
)

AWKWARD_TEXT = 'quote " backslash \\ tab \t newline \n bell \x07 é 漢字 \u2028 emoji 🙂'


def _row(n: int) -> tuple:
    values = {
        "review_id": 10 + n,
        "item_id": 1000 + n,
        "external_id": f"T-{n}" if n % 2 else AWKWARD_TEXT,
        "queue": "support",
        "payload": '{"subject": "x \\"y\\"", "body": "caf\u00e9"}',
        "ai_label": None if n % 3 == 0 else "refund",
        "confidence": [None, 1.0, 0.1 + 0.2, 1e-05, 0.999999999999, float("nan")][n % 6],
        "ai_source": None if n % 3 == 0 else "local",
        "model": None if n % 3 == 0 else "tfidf",
        "model_version": None if n % 4 == 0 else "7",
        "final_label": "bug_report",
        "overridden": n % 2 == 0,
        "reason_code": None if n % 2 else "wrong_label",
        "comment": "" if n % 5 else AWKWARD_TEXT,
        "reviewer": "rv-0123456789abcdef",
        "seconds_on_item": [None, 12.5, 3600.0, 1e16, -0.0, math.inf][n % 6],
        "policy_version": None if n % 7 == 0 else n,
        "route": None if n % 7 == 0 else "review",
        "threshold": None if n % 7 == 0 else 0.95,
        "audit": n % 9 == 0,
        "inclusion_probability": [1.0, 0.02, 0.0][n % 3],
        "item_created_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
        "routed_at": (
            None if n % 7 == 0 else datetime(2026, 1, 1, 0, 0, 1, 250_000 * (n % 4), tzinfo=UTC)
        ),
        "decided_at": datetime(2026, 1, 2, tzinfo=UTC) - timedelta(microseconds=n),
        "split": "eval" if n % 5 == 0 else "train",
    }
    assert tuple(values) == FIELD_NAMES
    return tuple(values.values())


def test_columnar_lines_are_the_canonical_lines_byte_for_byte():
    rows = [_row(n) for n in range(60)]
    columns = [list(column) for column in zip(*rows, strict=True)]

    assert canonical_lines(iso_timestamps(columns)) == [canonical_line(row) for row in rows]
    assert rows_of(columns) == rows


def _columns(rows: list[tuple]) -> list[list]:
    return iso_timestamps([list(column) for column in zip(*rows, strict=True)])


def test_a_column_with_one_value_in_the_batch_is_written_the_same():
    """Columns that hold one value across a batch go into its template once: the lines
    must not change, also for a % in that value, for floats that are equal but print
    differently (0.0 and -0.0, 1 and 1.0), and for a batch of one row or of equal rows."""
    base = list(_row(1))
    same = []
    for n in range(8):
        row = list(base)
        row[0] = 100 + n  # review_id differs
        row[FIELD_NAMES.index("comment")] = "100% sure {x} %s %%"
        row[FIELD_NAMES.index("seconds_on_item")] = [0.0, -0.0][n % 2]
        row[FIELD_NAMES.index("threshold")] = [1, 1.0][n % 2]
        row[FIELD_NAMES.index("confidence")] = float("nan")
        same.append(tuple(row))
    assert canonical_lines(_columns(same)) == [canonical_line(row) for row in same]
    assert canonical_lines(_columns(same[:1])) == [canonical_line(same[0])]
    twins = [tuple(base)] * 3  # every column the same
    assert canonical_lines(_columns(twins)) == [canonical_line(base)] * 3
    assert canonical_lines([[] for _ in FIELD_NAMES]) == []


def test_columnar_counts_equal_row_by_row_counts():
    rows = [_row(n) for n in range(60)]
    one_by_one, by_columns = DatasheetStats(), DatasheetStats()
    for row in rows:
        one_by_one.add(row)
    for start in range(0, 60, 25):  # batches, as the exporter feeds them
        batch = rows[start : start + 25]
        by_columns.add_columns([list(c) for c in zip(*batch, strict=True)])

    assert by_columns.as_dict() == one_by_one.as_dict()
    assert by_columns.as_dict()["row_count"] == 60 and len(SCHEMA) == len(rows[0])


def test_parquet_row_groups_written_in_the_background_land_or_fail_loudly(tmp_path, monkeypatch):
    rows = [_row(n) for n in range(10)]
    writer = dataset_writers.ParquetWriter(tmp_path / "ok")
    writer.write(_columns(rows), [])
    files = writer.close()
    read = [
        row["review_id"]
        for file in files
        for row in dataset_writers.read_rows(tmp_path / "ok" / file.path, "parquet")
    ]
    assert sorted(read) == [row[0] for row in rows]

    def disk_full(parquet_writer, table):
        raise OSError("disk full")

    monkeypatch.setattr(dataset_writers, "_write_row_group", disk_full)
    failing = dataset_writers.ParquetWriter(tmp_path / "full")
    failing.write(_columns(rows), [])
    with pytest.raises(OSError, match="disk full"):
        failing.close()


def test_a_column_of_finite_floats_is_written_as_json_dumps_writes_it():
    """Floats without None, NaN or infinity take a faster path (float.__repr__ in C); a
    column with an int among them, or an infinity, goes the per-value way. Same lines."""
    values = [0.1 + 0.2, -0.0, 1e16, 1e15, 1e-05, 5e-324, 12.5, 1e22, 0.999999999999]
    for column_values in (values, [*values, 3], [*values, math.inf], [*values, -math.inf]):
        rows = []
        for n, value in enumerate(column_values):
            row = list(_row(1))
            row[0] = 100 + n
            row[FIELD_NAMES.index("seconds_on_item")] = value
            row[FIELD_NAMES.index("inclusion_probability")] = value
            rows.append(tuple(row))
        assert canonical_lines(_columns(rows)) == [canonical_line(row) for row in rows]


def test_splits_for_a_batch_are_split_for_each_id():
    ids = [0, 1, 2, 7, 10**6, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, *range(5_000, 6_000)]
    assert splits_for(ids) == [split_for(i) for i in ids]
    assert {"train", "eval"} == set(splits_for(ids))
    assert splits_for([]) == []


HOSTILE_COLUMNS = {
    "string": [
        ["a", None, "é 漢字 🙂", "", 'quote " backslash \\ newline \n nul \x00', AWKWARD_TEXT],
        [None, None],
        [],
        ["plain", "ascii"],
        ["same"] * 5,
        ["été 🙂"] * 3,
        ["same", "same", None, "same"],
        [""] * 4,
    ],
    "int64": [[1, None, -(2**63), 2**63 - 1, 0], [None], [], [5]],
    "float64": [
        [1.0, None, float("nan"), -0.0, math.inf, -math.inf, 1e-300, 0.1 + 0.2],
        [None, None],
        [],
        [1, 2.5],
    ],
    "bool": [[True, False, None, True, True, False, False, True, True], [], [False] * 17],
    "timestamp": [
        ["2026-01-01T00:00:30+00:00", None, "2026-01-01T00:00:30.250000+00:00"],
        [],
    ],
}


@pytest.mark.parametrize(
    ("field_type", "values"),
    [(t, v) for t, columns in HOSTILE_COLUMNS.items() for v in columns],
)
def test_arrow_columns_built_from_buffers_equal_what_pa_array_makes(field_type, values):
    import pyarrow as pa

    arrow_type = dataset_writers._ARROW_TYPES[field_type]
    built = dataset_writers._arrow_array(values, arrow_type)
    built.validate(full=True)
    if field_type == "timestamp":
        expected = pa.array(values, type=pa.string()).cast(arrow_type)
    else:
        expected = pa.array(values, type=arrow_type)
    assert built.type == expected.type
    assert built.null_count == expected.null_count
    # repr: NaN equals NaN, and -0.0 stays apart from 0.0
    assert repr(built.to_pylist()) == repr(expected.to_pylist())


@pytest.mark.parametrize(
    ("field_type", "values"),
    [
        ("int64", [1, None]),
        ("string", ["a", None]),
        ("timestamp", [None, "2026-01-01T00:00:00+00:00"]),
    ],
)
def test_a_null_in_a_column_that_may_not_be_null_fails_the_conversion(field_type, values):
    """Columns the schema says are never null are not searched for nulls; a None that got
    there anyway must stop the export, not be written as some other value."""
    arrow_type = dataset_writers._ARROW_TYPES[field_type]
    with pytest.raises(TypeError):
        dataset_writers._arrow_array(values, arrow_type, nullable=False)


def test_writing_parquet_does_not_import_pandas(tmp_path):
    """pa.array imports pandas where it is installed; the writer builds its arrays without
    it, so an export's process does not carry pandas (50 MB)."""
    script = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from tests.services.test_dataset_lines import _columns, _row
from review.services import dataset_writers
writer = dataset_writers.ParquetWriter(Path({str(tmp_path)!r}))
writer.write(_columns([_row(n) for n in range(30)]), [])
files = writer.close()
assert sum(f.rows for f in files) == 30
print("pandas" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
