"""Snapshots under concurrent writes, failed builds, idempotent jobs, and the HF layout."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from models import DatasetSnapshot, Item
from review.db import db_session
from review.services import datasets, queues, reviewing
from tests.web.exports.helpers import (
    add_reviewable,
    build,
    create,
    decide,
    decided,
    rows_of,
    snapshot,
    use_export_dir,
)


@pytest.fixture
def setup(app, factory, tmp_path):
    use_export_dir(app, tmp_path / "exports")
    factory.queue("support")
    return factory.user("reviewer"), factory.user("ml")


def test_decisions_made_while_the_export_runs_stay_out(app, setup, monkeypatch):
    reviewer, ml = setup
    decided(app, "support", reviewer, 10, prefix="a")
    waiting = add_reviewable(app, "support", 6, prefix="during")
    snapshot_id = create(app, "support", ml, format="parquet")

    # Decide more items between the export's batches (batches of 3 rows).
    real_write = datasets.write_snapshot
    batches_seen = []

    def progress_with_writes(done, total):
        batches_seen.append(done)
        if waiting and done:
            decide(app, reviewer, [waiting.pop()])

    def write_in_small_batches(session, snap, settings, on_progress, batch_rows=3):
        def both(done, total):
            on_progress(done, total)
            progress_with_writes(done, total)

        return real_write(session, snap, settings, both, batch_rows=3)

    monkeypatch.setattr(datasets, "write_snapshot", write_in_small_batches)
    assert build(app, snapshot_id) == "succeeded"
    assert len(batches_seen) > 3 and len(waiting) < 6  # writes really happened mid-export
    rows = rows_of(app, snapshot_id)
    assert len(rows) == 10 and not any(r["external_id"].startswith("during") for r in rows)
    assert snapshot(app, snapshot_id).datasheet["counts"]["row_count"] == 10


def test_watermark_waits_for_a_decision_still_being_committed(app, setup):
    """PostgreSQL: a review inserted but not yet committed when the snapshot is created
    must not be lost between this snapshot and the next incremental one."""
    reviewer, ml = setup
    if app.extensions["db"].is_sqlite:
        pytest.skip("SQLite has one writer: nothing can be half-committed")
    decided(app, "support", reviewer, 2, prefix="a")
    [slow_item] = add_reviewable(app, "support", 1, prefix="slow")
    inserted = threading.Event()

    def slow_decision():
        with app.app_context():
            session = db_session()
            reviewing.decide(session, slow_item, session.merge(reviewer), {"action": "approve"})
            session.flush()  # the review row exists, uncommitted
            inserted.set()
            time.sleep(1.0)
            session.commit()

    writer = threading.Thread(target=slow_decision)
    writer.start()
    inserted.wait(5)
    first = create(app, "support", ml, format="jsonl")  # waits for the commit
    writer.join()
    later = create(app, "support", ml, format="jsonl", since_snapshot=first)
    build(app, first), build(app, later)
    seen = [r["external_id"] for r in rows_of(app, first) + rows_of(app, later)]
    assert sorted(seen) == ["a-0", "a-1", "slow-0"]


def test_failed_build_is_marked_failed_publishes_nothing_and_can_be_retried(
    app, setup, monkeypatch, tmp_path
):
    reviewer, ml = setup
    decided(app, "support", reviewer, 8, prefix="f")
    snapshot_id = create(app, "support", ml, format="csv")
    real_write = datasets.write_snapshot

    def failing(session, snap, settings, on_progress, batch_rows=2):
        def explode(done, total):
            on_progress(done, total)
            if done >= 4:
                raise OSError("disk full")

        return real_write(session, snap, settings, explode, batch_rows=2)

    monkeypatch.setattr(datasets, "write_snapshot", failing)
    with pytest.raises(OSError):
        build(app, snapshot_id)
    failed = snapshot(app, snapshot_id)
    assert failed.status == "failed" and "disk full" in failed.error
    assert failed.sha256 is None and failed.files is None
    export_dir = tmp_path / "exports"
    assert [p.name for p in export_dir.rglob("*") if p.is_file()] == []

    monkeypatch.setattr(datasets, "write_snapshot", real_write)
    assert build(app, snapshot_id) == "succeeded"
    assert len(rows_of(app, snapshot_id)) == 8


def test_running_the_job_twice_changes_nothing(app, setup, tmp_path):
    reviewer, ml = setup
    decided(app, "support", reviewer, 4, prefix="i")
    snapshot_id = create(app, "support", ml, format="jsonl")
    assert build(app, snapshot_id) == "succeeded"
    first = snapshot(app, snapshot_id)
    files = sorted((tmp_path / "exports").rglob("*.jsonl"))
    stamps = [p.stat().st_mtime_ns for p in files]
    assert build(app, snapshot_id) == "succeeded"
    again = snapshot(app, snapshot_id)
    assert (again.sha256, again.finished_at) == (first.sha256, first.finished_at)
    assert [p.stat().st_mtime_ns for p in files] == stamps


def test_scope_and_label_and_time_filters(app, setup):
    reviewer, ml = setup
    ids = decided(app, "support", reviewer, 9, prefix="x")  # overrides: 0, 3, 6 -> escalate
    with app.app_context():
        session = db_session()
        decided_at = [
            i.review.decided_at
            for i in session.scalars(select(Item).where(Item.id.in_(ids)).order_by(Item.id))
        ]
    overrides = create(app, "support", ml, filter={"scope": "overrides"})
    approvals = create(app, "support", ml, filter={"labels": ["approve"]})
    later = create(app, "support", ml, filter={"decided_from": decided_at[5].isoformat()})
    for s in (overrides, approvals, later):
        build(app, s)
    assert {r["external_id"] for r in rows_of(app, overrides)} == {"x-0", "x-3", "x-6"}
    assert len(rows_of(app, approvals)) == 6
    assert {r["external_id"] for r in rows_of(app, later)} == {"x-5", "x-6", "x-7", "x-8"}


def test_audit_samples_only_with_the_audited_scope(app, setup):
    from models import RoutingRecord

    if not hasattr(RoutingRecord, "audit"):
        pytest.skip("routing_records has no audit column in this schema")
    reviewer, ml = setup
    ids = decided(app, "support", reviewer, 4, prefix="au")
    with app.app_context():
        session = db_session()
        record = session.scalar(select(RoutingRecord).where(RoutingRecord.item_id == ids[1]))
        record.audit, record.inclusion_probability = True, 0.05
        session.commit()
    human = create(app, "support", ml, filter={"scope": "human"})
    audited = create(app, "support", ml, filter={"scope": "audited"})
    build(app, human), build(app, audited)
    assert len(rows_of(app, human)) == 3
    rows = {r["item_id"]: r for r in rows_of(app, audited)}
    assert len(rows) == 4 and rows[ids[1]]["audit"] is True
    assert rows[ids[1]]["inclusion_probability"] == 0.05
    assert snapshot(app, audited).datasheet["counts"]["audit_rows"] == 1


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "csv"])
def test_the_folder_loads_with_datasets_and_matches_the_datasheet(
    app, setup, fmt, tmp_path, monkeypatch
):
    datasets_lib = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reviewer, ml = setup
    decided(app, "support", reviewer, 40, prefix="hf")
    snapshot_id = create(app, "support", ml, format=fmt)
    build(app, snapshot_id)
    built = snapshot(app, snapshot_id)
    folder = tmp_path / "exports" / built.storage_dir
    loaded = datasets_lib.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    counts = built.datasheet["counts"]
    assert {name: len(split) for name, split in loaded.items()} == {
        split: n for split, n in counts["counts_per_split"].items() if n
    }
    labels: dict[str, int] = {}
    for split in loaded.values():
        for label in split["final_label"]:
            labels[label] = labels.get(label, 0) + 1
    assert labels == counts["counts_per_final_label"]
    assert list(loaded["train"].features) == [f["name"] for f in built.datasheet["schema"]]


def test_queue_lists_snapshots_newest_first(app, setup):
    reviewer, ml = setup
    first, second = create(app, "support", ml), create(app, "support", ml)
    with app.app_context():
        session = db_session()
        listed = datasets.list_snapshots(session, queues.get_queue(session, "support"))
        assert [s.id for s in listed] == [second, first]
        assert [s.version for s in listed] == [2, 1]
        assert (
            session.scalar(select(DatasetSnapshot.status).where(DatasetSnapshot.id == first))
            == "queued"
        )


def test_only_the_latest_routing_as_of_the_cut_says_whether_an_item_is_an_audit(app, setup):
    """Re-routed items: an audit that a later routing replaced is no longer an audit, a
    routing into audit after the snapshot was cut does not count yet, and the count the
    build checks its rows against agrees with the rows in every case."""
    from models import RoutingRecord

    reviewer, ml = setup
    ids = decided(app, "support", reviewer, 5, prefix="re")

    def route_again(item_id: int, audit: bool) -> None:
        with app.app_context():
            session = db_session()
            latest = session.scalar(
                select(RoutingRecord)
                .where(RoutingRecord.item_id == item_id)
                .order_by(RoutingRecord.id.desc())
            )
            session.add(
                RoutingRecord(
                    item_id=item_id,
                    policy_version_id=latest.policy_version_id,
                    route="review",
                    reason="routed again",
                    audit=audit,
                    inclusion_probability=0.05 if audit else 1.0,
                )
            )
            session.commit()

    route_again(ids[0], audit=True)  # now an audit
    route_again(ids[1], audit=True)
    route_again(ids[1], audit=False)  # was an audit, routed again: no longer
    human = create(app, "support", ml, filter={"scope": "human"})
    audited = create(app, "support", ml, filter={"scope": "audited"})
    route_again(ids[2], audit=True)  # after both snapshots were cut
    assert build(app, human) == "succeeded" and build(app, audited) == "succeeded"
    assert {r["item_id"] for r in rows_of(app, human)} == set(ids) - {ids[0]}
    assert {r["item_id"]: r["audit"] for r in rows_of(app, audited)} == {
        ids[0]: True, ids[1]: False, ids[2]: False, ids[3]: False, ids[4]: False
    }  # fmt: skip
    assert snapshot(app, human).row_count == 4 and snapshot(app, audited).row_count == 5
