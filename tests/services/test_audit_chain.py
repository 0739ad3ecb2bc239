"""The audit hash chain: sealing, and verify naming the first row edited, deleted or
inserted out of order; concurrent writers and sealers never fork or break it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update

from models import AuditChainHead, AuditEvent
from models.base import utcnow
from review.db import db_session
from review.domain.audit_chain import ChainedEvent, event_hash
from review.services import audit, audit_chain


def seal_all(session) -> int:
    total = 0
    while sealed := audit_chain.seal_batch(session, limit=7):
        session.commit()
        total += sealed
    session.commit()
    return total


@pytest.fixture
def chain(session):
    """Ten sealed events; returns their ids in chain order."""
    for n in range(10):
        audit.record(session, "test.event", item_id=None, n=n, note=f"event {n}", score=n / 3)
    session.commit()
    assert seal_all(session) == 10
    return list(session.scalars(select(AuditEvent.id).order_by(AuditEvent.seq)))


def sql(session, statement) -> None:
    """Tamper with the table directly, as someone with database access would."""
    session.execute(statement.execution_options(synchronize_session=False))
    session.commit()


def test_sealed_chain_verifies_and_links_each_event_to_the_one_before(session, chain):
    report = audit_chain.verify(session)
    assert report.ok, report.problem
    assert (report.checked, report.head_seq, report.unsealed) == (10, 10, 0)
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == list(range(1, 11))
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert report.head_hash == events[-1].hash


def test_hash_is_reproducible_from_the_documented_canonical_form(session, chain):
    event = session.get(AuditEvent, chain[3])
    content = ChainedEvent(
        id=event.id,
        created_at=event.created_at,
        actor=event.actor,
        actor_user_id=event.actor_user_id,
        action=event.action,
        queue_id=event.queue_id,
        item_id=event.item_id,
        details=event.details,
    )
    assert event_hash(content, event.seq, event.prev_hash) == event.hash


@pytest.mark.parametrize(
    "change",
    [
        {"details": {"n": 4, "note": "event 4 (edited)", "score": 4 / 3}},
        {"actor": "user:someone-else@example.com"},
        {"action": "test.other"},
        {"created_at": utcnow() - timedelta(days=3)},
    ],
)
def test_an_edited_event_fails_verify_naming_it(session, chain, change):
    sql(session, update(AuditEvent).where(AuditEvent.id == chain[4]).values(**change))
    report = audit_chain.verify(session)
    assert not report.ok
    assert report.problem.kind == "edited"
    assert report.problem.event_id == chain[4]
    assert f"event {chain[4]} (seq 5)" in report.problem.message


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(session, chain):
    event = session.get(AuditEvent, chain[4])
    forged = dict(event.details, note="forged")
    content = ChainedEvent(
        event.id, event.created_at, event.actor, None, event.action, None, None, forged
    )
    sql(
        session,
        update(AuditEvent)
        .where(AuditEvent.id == chain[4])
        .values(details=forged, hash=event_hash(content, 5, event.prev_hash)),
    )
    report = audit_chain.verify(session)
    assert report.problem.kind == "relinked"
    assert report.problem.event_id == chain[5]
    assert f"does not link to event {chain[4]}" in report.problem.message


def test_a_deleted_event_fails_verify_naming_the_gap(session, chain):
    sql(session, delete(AuditEvent).where(AuditEvent.id == chain[2]))
    report = audit_chain.verify(session)
    assert report.problem.kind == "missing"
    assert report.problem.seq == 3
    assert f"seq 3 is missing (after event {chain[1]}, before event {chain[3]}" in (
        report.problem.message
    )


def test_deleting_the_first_or_the_newest_events_fails_verify(session, chain):
    sql(session, delete(AuditEvent).where(AuditEvent.id.in_(chain[8:])))
    report = audit_chain.verify(session)
    assert report.problem.kind == "head_mismatch"
    assert f"ends at seq 8 (event {chain[7]}) but its head records seq 10" in (
        report.problem.message
    )
    sql(session, delete(AuditEvent).where(AuditEvent.id == chain[0]))
    assert audit_chain.verify(session).problem.message.startswith("seq 1 is missing (at the start")


def test_deleting_the_head_row_fails_verify_and_stops_sealing(session, chain):
    sql(session, delete(AuditChainHead))
    assert "chain head is missing" in audit_chain.verify(session).problem.message
    audit.record(session, "test.after")
    session.commit()
    with pytest.raises(audit_chain.Conflict):
        audit_chain.seal_batch(session)
    session.rollback()


def test_events_swapped_in_the_chain_fail_verify(session, chain):
    first, second = session.get(AuditEvent, chain[5]), session.get(AuditEvent, chain[6])
    a, b = (first.seq, first.prev_hash, first.hash), (second.seq, second.prev_hash, second.hash)
    sql(session, update(AuditEvent).where(AuditEvent.id == chain[5]).values(seq=None))
    sql(
        session,
        update(AuditEvent)
        .where(AuditEvent.id == chain[6])
        .values(seq=a[0], prev_hash=a[1], hash=a[2]),
    )
    sql(
        session,
        update(AuditEvent)
        .where(AuditEvent.id == chain[5])
        .values(seq=b[0], prev_hash=b[1], hash=b[2]),
    )
    report = audit_chain.verify(session)
    assert report.problem.kind == "edited"
    assert report.problem.event_id == chain[6]


def test_a_row_sealed_past_the_head_is_inserted_out_of_order(session, chain):
    sql(
        session,
        update(AuditEvent).where(AuditEvent.id == chain[-1]).values(seq=11),
    )
    sql(session, update(AuditChainHead).values(seq=9))
    head_hash = session.get(AuditEvent, chain[-2]).hash
    sql(session, update(AuditChainHead).values(hash=head_hash))
    report = audit_chain.verify(session)
    assert report.problem.kind == "out_of_order"
    assert report.problem.event_id == chain[-1]


def test_unsealed_events_fail_verify_only_after_the_grace_period(session, chain):
    event = audit.record(session, "test.late")
    session.commit()
    report = audit_chain.verify(session, grace_seconds=300)
    assert report.ok and report.unsealed == 1
    later = utcnow() + timedelta(seconds=301)
    report = audit_chain.verify(session, now=later, grace_seconds=300)
    assert report.problem.kind == "unsealed"
    assert report.problem.event_id == event.id
    assert "still unsealed" in report.problem.message
    seal_all(session)
    assert audit_chain.verify(session, now=later, grace_seconds=300).ok


def test_non_finite_numbers_in_details_are_recorded_and_sealed(session):
    audit.record(session, "test.nan", confidence=float("nan"), worst=[float("-inf")])
    session.commit()
    seal_all(session)
    event = session.scalars(select(AuditEvent)).one()
    assert event.details == {"confidence": "nan", "worst": ["-inf"]}
    assert audit_chain.verify(session).ok


def postgres_only(app) -> None:
    if app.extensions["db"].is_sqlite:
        pytest.skip("concurrent writers are meaningful on PostgreSQL (SQLite has one writer)")


def test_a_late_commit_is_chained_after_higher_ids_and_writers_never_wait(app, session):
    """A writer's open transaction neither blocks the sealer nor is blocked by it."""
    postgres_only(app)
    factory = app.extensions["db"].session_factory
    slow = factory()
    early = audit.record(slow, "test.slow_writer")
    slow.flush()  # inserted, id taken, not committed
    audit.record(session, "test.fast_writer")
    session.commit()

    sealer = factory()
    assert audit_chain.seal_batch(sealer) == 1  # only the committed event; did not wait
    # While the sealer holds the head lock, a writer still inserts and commits at once.
    writer_done = threading.Event()

    def write() -> None:
        with app.app_context():
            other = db_session()
            audit.record(other, "test.during_seal")
            other.commit()
            writer_done.set()

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=60)
    assert writer_done.is_set(), "a writer waited on the sealer's lock"
    sealer.commit()
    sealer.close()
    slow.commit()
    slow.close()
    seal_all(session)
    by_seq = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.action for e in by_seq] == [
        "test.fast_writer",
        "test.slow_writer",  # committed last, sealed in id order with what was pending
        "test.during_seal",
    ]
    assert by_seq[1].id == early.id and early.id < by_seq[0].id
    assert audit_chain.verify(session).ok


def test_concurrent_writers_and_sealers_never_fork_or_break_the_chain(app, session):
    """Twelve writers (some routing-sized batches of 500 in one transaction) and three
    sealers at once: every event is sealed exactly once, seq runs 1..N, verify passes."""
    postgres_only(app)
    writers, rounds, sealers = 12, 6, 3
    errors: list[BaseException] = []
    writing = threading.Event()
    start = threading.Barrier(writers + sealers)

    def write(n: int) -> None:
        try:
            start.wait()
            with app.app_context():
                s = db_session()
                for r in range(rounds):
                    size = 500 if (n % 4 == 0 and r == 0) else 5
                    for i in range(size):
                        audit.record(s, "test.concurrent", writer=n, round=r, i=i)
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def seal_loop() -> None:
        try:
            start.wait()
            with app.app_context():
                s = db_session()
                while True:
                    more_coming = writing.is_set()
                    sealed = audit_chain.seal_batch(s, limit=50)
                    s.commit()
                    if not sealed and not more_coming:
                        return
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    writing.set()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    seal_threads = [threading.Thread(target=seal_loop) for _ in range(sealers)]
    for thread in threads + seal_threads:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    for thread in seal_threads:
        thread.join()
    assert errors == []
    seal_all(session)
    expected = sum(
        500 if (n % 4 == 0 and r == 0) else 5 for n in range(writers) for r in range(rounds)
    )
    seqs = session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
    assert seqs == list(range(1, expected + 1))
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.seq.is_(None))) == 0
    report = audit_chain.verify(session)
    assert report.ok, report.problem
    assert report.checked == expected
