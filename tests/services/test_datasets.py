"""Dataset snapshots at the service level: what goes in, formats, hash, incrementals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from models import Item, Review
from review.db import db_session
from review.domain.datasets import FIELD_NAMES, reviewer_pseudonym, split_for
from tests.web.exports.helpers import build, create, decided, rows_of, snapshot, use_export_dir


@pytest.fixture
def export_dir(app, tmp_path) -> Path:
    return use_export_dir(app, tmp_path / "exports")


@pytest.fixture
def setup(app, factory, export_dir):
    queue = factory.queue("support")
    reviewer = factory.user("reviewer", email="rev@example.com")
    ml = factory.user("ml")
    return queue, reviewer, ml


def expected_rows(app, item_ids) -> dict[int, dict]:
    """What the database says about these items' reviews, keyed by item id."""
    with app.app_context():
        session = db_session()
        result = {}
        for item in session.scalars(select(Item).where(Item.id.in_(item_ids))):
            result[item.id] = {
                "payload": item.payload,
                "final_label": item.review.final_label,
                "overridden": item.review.action == "overridden",
                "reason_code": item.review.reason_code,
                "comment": item.review.comment,
                "decided_at": item.review.decided_at,
                "ai_label": item.recommendation.label,
                "confidence": item.recommendation.confidence,
                "external_id": item.external_id,
                "review_id": item.review.id,
            }
        return result


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_round_trip_reads_back_what_was_exported(app, setup, fmt, export_dir):
    queue, reviewer, ml = setup
    ids = decided(app, "support", reviewer, 12, prefix="rt")
    snapshot_id = create(app, "support", ml, format=fmt)
    assert build(app, snapshot_id) == "succeeded"

    rows = rows_of(app, snapshot_id)
    truth = expected_rows(app, ids)
    assert len(rows) == 12 and [tuple(row) for row in rows] == [FIELD_NAMES] * 12
    for row in rows:
        want = truth[row["item_id"]]
        assert json.loads(row["payload"]) == want["payload"]
        assert row["decided_at"] == want["decided_at"]
        for key in (
            "final_label",
            "overridden",
            "reason_code",
            "comment",
            "ai_label",
            "confidence",
            "external_id",
            "review_id",
        ):
            assert row[key] == want[key], key
        assert row["reviewer"] == reviewer_pseudonym("test-secret", reviewer.id)
        assert row["split"] == split_for(row["item_id"])
        assert row["queue"] == "support" and row["policy_version"] == 1
        assert row["route"] == "review" and row["inclusion_probability"] == 1.0
        assert row["model"] == "upstream" and row["model_version"] == "2.1"

    built = snapshot(app, snapshot_id)
    assert built.status == "succeeded" and built.row_count == 12
    # The JSONL format's lines are the hashed lines: one file per split, same hash.
    assert {f["split"] for f in built.files} <= {"train", "eval"}
    assert sum(f["rows"] for f in built.files) == 12
    directory = export_dir / built.storage_dir
    assert (directory / "README.md").is_file() and (directory / "datasheet.json").is_file()


def test_every_format_of_the_same_rows_has_the_same_content_hash(app, setup):
    queue, reviewer, ml = setup
    decided(app, "support", reviewer, 9, prefix="h")
    hashes = set()
    for fmt in ("jsonl", "csv", "parquet"):
        snapshot_id = create(app, "support", ml, format=fmt)
        build(app, snapshot_id)
        hashes.add(snapshot(app, snapshot_id).sha256)
    assert len(hashes) == 1 and len(hashes.pop()) == 64


def test_hash_is_stable_for_a_rebuild_and_changes_when_a_row_changes(app, setup, export_dir):
    queue, reviewer, ml = setup
    ids = decided(app, "support", reviewer, 6, prefix="s")
    first = create(app, "support", ml, format="parquet")
    build(app, first)
    original = snapshot(app, first).sha256

    # Rebuild the same snapshot from scratch (as a retried job would): same hash.
    with app.app_context():
        session = db_session()
        from models import DatasetSnapshot

        session.execute(
            update(DatasetSnapshot).where(DatasetSnapshot.id == first).values(status="failed")
        )
        session.commit()
    build(app, first)
    assert snapshot(app, first).sha256 == original

    with app.app_context():
        session = db_session()
        session.execute(update(Review).where(Review.item_id == ids[2]).values(comment="edited"))
        session.commit()
    second = create(app, "support", ml, format="parquet")
    build(app, second)
    assert snapshot(app, second).sha256 != original


def test_incremental_snapshots_add_up_to_the_full_one(app, setup):
    queue, reviewer, ml = setup
    decided(app, "support", reviewer, 7, prefix="a")
    v1 = create(app, "support", ml, format="jsonl", filter={"scope": "human"})
    decided(app, "support", reviewer, 5, prefix="b")
    v2 = create(app, "support", ml, format="csv", since_snapshot=v1)
    decided(app, "support", reviewer, 4, prefix="c")
    v3 = create(app, "support", ml, format="parquet", since_snapshot="v2")
    full = create(app, "support", ml, format="jsonl", filter={"scope": "human"})
    for snapshot_id in (v1, v2, v3, full):
        assert build(app, snapshot_id) == "succeeded"

    parts = [rows_of(app, s) for s in (v1, v2, v3)]
    assert [len(p) for p in parts] == [7, 5, 4]
    assert sum(parts, []) == rows_of(app, full)
    assert snapshot(app, v3).since_snapshot.version == 2


def test_incremental_overrides_only_fetch_new_overrides(app, setup):
    queue, reviewer, ml = setup
    decided(app, "support", reviewer, 9, prefix="a")  # 3 overrides
    v1 = create(app, "support", ml, format="parquet", filter={"scope": "overrides", "last_days": 7})
    decided(app, "support", reviewer, 6, prefix="b")  # 2 more
    v2 = create(app, "support", ml, format="parquet", since_snapshot=v1)
    build(app, v1), build(app, v2)
    assert [r["overridden"] for r in rows_of(app, v1)] == [True] * 3
    new = rows_of(app, v2)
    assert len(new) == 2 and {r["external_id"] for r in new} == {"b-0", "b-3"}
    assert snapshot(app, v2).filters == snapshot(app, v1).filters


def test_snapshot_sees_the_moment_it_was_created_not_later_decisions(app, setup):
    queue, reviewer, ml = setup
    decided(app, "support", reviewer, 5, prefix="a")
    snapshot_id = create(app, "support", ml, format="jsonl")
    decided(app, "support", reviewer, 5, prefix="late")  # after creation, before the build
    build(app, snapshot_id)
    rows = rows_of(app, snapshot_id)
    assert len(rows) == 5 and not any(r["external_id"].startswith("late") for r in rows)
    assert snapshot(app, snapshot_id).datasheet["counts"]["row_count"] == 5


def test_timestamps_are_written_as_isoformat_writes_them(app, setup, export_dir):
    """PostgreSQL formats the timestamps itself (rows_query's timestamps_as_text): the text
    must be datetime.isoformat's, with or without a fraction, trailing zeros kept."""
    queue, reviewer, ml = setup
    ids = decided(app, "support", reviewer, 3, prefix="ts")
    whole = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    decided_at = {ids[0]: whole, ids[1]: whole.replace(microsecond=250_000)}
    with app.app_context():
        session = db_session()
        for item_id, value in decided_at.items():
            session.execute(
                update(Review).where(Review.item_id == item_id).values(decided_at=value)
            )
        session.commit()
        routed = {
            item.id: (item.created_at, item.routings[-1].created_at, item.review.decided_at)
            for item in session.scalars(select(Item).where(Item.id.in_(ids)))
        }
    snapshot_id = create(app, "support", ml, format="jsonl")
    build(app, snapshot_id)

    built = snapshot(app, snapshot_id)
    lines = []
    for file in built.files:
        lines += (export_dir / built.storage_dir / file["path"]).read_text().splitlines()
    written = {
        row["item_id"]: (row["item_created_at"], row["routed_at"], row["decided_at"])
        for row in map(json.loads, lines)
    }
    assert written == {
        item_id: tuple(value.isoformat() for value in values) for item_id, values in routed.items()
    }
    assert written[ids[0]][2] == "2026-03-01T12:00:00+00:00"
    assert written[ids[1]][2] == "2026-03-01T12:00:00.250000+00:00"
