"""The columnar fast paths of the exporter write exactly what the per-row code would:
the same canonical JSON lines (so the content hash cannot drift) and the same counts."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from review.domain.datasets import FIELD_NAMES, SCHEMA, DatasheetStats
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
