"""Sealing the audit log into a hash chain, and verifying it.

Why a sealing step rather than chaining at insert time: chaining on insert needs the
previous event's hash, so every writer (16 reviewers deciding, workers routing batches of
500 items in one transaction, logins) would queue behind one lock on the chain head until
its whole transaction commits; on SQLite the lock is the database write lock anyway, but
on PostgreSQL it turns every audited transaction into a serial one. Per-queue chains only
shrink the problem (a big routing batch still blocks its queue) and leave queue-less events
(logins, users, tokens) on one hot chain.

So writers only INSERT (review/services/audit.py `record`): they never read or lock
anything of the chain and never wait on each other. The sealer, run every sweep by each
worker and by `flask audit seal`, takes the events committed but not yet sealed in id order
and gives each its position (`seq`), the previous hash and its own hash. Sealers serialise
on the chain head row (UPDATE ... RETURNING takes its row lock on PostgreSQL and the write
lock on SQLite), and `seq` is unique, so two sealers can never fork the chain: the second
waits, then continues from the head the first committed. Sealing after commit means a
late-committing transaction's events are chained after events with higher ids; the chain
order is `seq`, not `id`.

On SQLite there is one writer at a time anyway; the sealer is one more short write
transaction (at most SEAL_BATCH rows) that waits its turn under the busy timeout, and a
sealer that times out behind a long import simply tries again at the next sweep.

The gap this leaves (an event between its insert and its seal carries no hash yet) is
bounded: `verify` fails on any unsealed event older than a short grace period. Anyone able
to rewrite the whole table and the head could re-hash everything; publishing the head hash
(`flask audit verify` prints it) somewhere they cannot reach closes that too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import AuditChainHead, AuditEvent
from models.base import utcnow
from review.domain.audit_chain import GENESIS_HASH, ChainChecker, ChainedEvent, Problem, seal
from review.services.errors import Conflict

if TYPE_CHECKING:
    from review.db import Database

HEAD_ID = 1
# Events sealed per transaction: bounds the time the head lock is held.
SEAL_BATCH = 1000
# Events read per query while verifying.
VERIFY_BATCH = 5000
DEFAULT_GRACE_SECONDS = 300

_CONTENT = (
    AuditEvent.id,
    AuditEvent.created_at,
    AuditEvent.actor,
    AuditEvent.actor_user_id,
    AuditEvent.action,
    AuditEvent.queue_id,
    AuditEvent.item_id,
    AuditEvent.details,
    AuditEvent.seq,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def _chained(row: object) -> ChainedEvent:
    return ChainedEvent(**row._mapping)  # type: ignore[attr-defined]


def _lock_head(session: Session) -> tuple[int, str]:
    """Lock the chain head for this transaction; (seq, hash) of the last sealed event."""
    lock = (
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(sealed_at=utcnow())
        .returning(AuditChainHead.seq, AuditChainHead.hash)
        .execution_options(synchronize_session=False)
    )
    head = session.execute(lock).first()
    if head is None:
        # The first seal ever, or the head was deleted. Create it unless another sealer
        # did: the insert waits for theirs to commit, and the lock then reads their head.
        # Looking for sealed events before this, as this did, raced a sealer that created
        # the head and sealed meanwhile, and took its work for a deleted head.
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(AuditChainHead)
            .values(id=HEAD_ID, seq=0, hash=GENESIS_HASH)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        head = session.execute(lock).one()
        if head.seq == 0 and session.scalar(
            select(AuditEvent.id).where(AuditEvent.seq.is_not(None)).limit(1)
        ):
            # A new chain's head over sealed events: the old head is gone. Starting again
            # would hide the tampering.
            raise Conflict("the audit chain head is missing; run `flask audit verify`")
    return head.seq, head.hash


def seal_batch(session: Session, limit: int = SEAL_BATCH) -> int:
    """Seal up to `limit` committed, unsealed events, oldest id first. Returns how many.

    The caller commits (which releases the head lock); call again until it returns 0.
    """
    last_seq, last_hash = _lock_head(session)
    rows = session.execute(
        select(*_CONTENT).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id).limit(limit)
    ).all()
    seals = list(seal((_chained(row) for row in rows), last_seq, last_hash))
    if not seals:
        return 0
    session.execute(
        update(AuditEvent),
        [{"id": s.event_id, "seq": s.seq, "prev_hash": s.prev_hash, "hash": s.hash} for s in seals],
    )
    session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == HEAD_ID)
        .values(seq=seals[-1].seq, hash=seals[-1].hash)
        .execution_options(synchronize_session=False)
    )
    return len(seals)


@dataclass(frozen=True)
class ChainReport:
    """The result of a full verification, for the CLI and the admin page."""

    checked: int
    head_seq: int | None
    head_hash: str | None
    last_sealed_run: datetime | None
    unsealed: int
    oldest_unsealed_at: datetime | None
    grace_seconds: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for keeping the result of a background verification."""
        data = asdict(self)
        for key in ("last_sealed_run", "oldest_unsealed_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChainReport:
        values = dict(data)
        for key in ("last_sealed_run", "oldest_unsealed_at"):
            values[key] = datetime.fromisoformat(values[key]) if values[key] else None
        values["problem"] = Problem(**values["problem"]) if values["problem"] else None
        return cls(**values)


def _sealed_events(session: Session, up_to: int | None) -> Iterator[ChainedEvent]:
    """Sealed events in seq order (up to seq `up_to` if given), read in batches."""
    after = 0
    while True:
        query = select(*_CONTENT).where(AuditEvent.seq > after)
        if up_to is not None:
            query = query.where(AuditEvent.seq <= up_to)
        rows = session.execute(query.order_by(AuditEvent.seq).limit(VERIFY_BATCH)).all()
        if not rows:
            return
        for row in rows:
            yield _chained(row)
        after = rows[-1].seq


def _beyond_head(session: Session) -> Problem | None:
    """A sealed event past the recorded head: appended behind the sealer's back.

    One statement, so it compares the head and the events of the same snapshot even while
    a sealer commits on PostgreSQL.
    """
    head_seq = select(AuditChainHead.seq).where(AuditChainHead.id == HEAD_ID).scalar_subquery()
    row = session.execute(
        select(AuditEvent.id, AuditEvent.seq)
        .where(AuditEvent.seq > func.coalesce(head_seq, 0))
        .order_by(AuditEvent.seq)
        .limit(1)
    ).first()
    if row is None:
        return None
    return Problem(
        "out_of_order",
        row.seq,
        row.id,
        f"event {row.id} (seq {row.seq}) lies beyond the chain head: it was inserted out of order",
    )


def _late_unsealed(session: Session, cutoff: datetime) -> Problem | None:
    row = session.execute(
        select(AuditEvent.id, AuditEvent.created_at)
        .where(AuditEvent.seq.is_(None), AuditEvent.created_at < cutoff)
        .order_by(AuditEvent.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    return Problem(
        "unsealed",
        None,
        row.id,
        f"event {row.id} (created {row.created_at:%Y-%m-%d %H:%M:%S} UTC) is still unsealed: "
        "the sealer is not running (start a worker or run `flask audit seal`), "
        "or the row was inserted behind its back",
    )


def verify(
    session: Session, now: datetime | None = None, grace_seconds: int = DEFAULT_GRACE_SECONDS
) -> ChainReport:
    """Check the whole chain; the report names the first bad row, if any.

    Checks, in order: every sealed event up to the head links to the one before and matches
    its hash, seq runs 1..head without a gap (deleted rows), the last one is the recorded
    head (a cut tail), nothing sealed lies past the head (inserted out of order), and no
    event waits unsealed longer than `grace_seconds`.
    """
    head = session.get(AuditChainHead, HEAD_ID, populate_existing=True)
    checker = ChainChecker()
    for event in _sealed_events(session, head.seq if head else None):
        checker.feed(event)
        if checker.problem is not None:
            break
    checker.check_head(head.seq if head else None, head.hash if head else None)
    cutoff = (now or utcnow()) - timedelta(seconds=grace_seconds)
    problem = checker.problem or _beyond_head(session) or _late_unsealed(session, cutoff)
    unsealed, oldest = session.execute(
        select(func.count(AuditEvent.id), func.min(AuditEvent.created_at)).where(
            AuditEvent.seq.is_(None)
        )
    ).one()
    return ChainReport(
        checked=checker.checked,
        head_seq=head.seq if head else None,
        head_hash=head.hash if head else None,
        last_sealed_run=head.sealed_at if head else None,
        unsealed=unsealed,
        oldest_unsealed_at=oldest,
        grace_seconds=grace_seconds,
        problem=problem,
    )


def verify_snapshot(database: Database, grace_seconds: int = DEFAULT_GRACE_SECONDS) -> ChainReport:
    """`verify` in a read-only session of its own, on one snapshot of the database.

    On PostgreSQL the walk runs in REPEATABLE READ, so a sealer committing meanwhile cannot
    make the head and the events disagree; SQLite's read transaction is one snapshot anyway.
    """
    engine = database.engine
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with database.session_factory(bind=engine) as session:
        try:
            return verify(session, grace_seconds=grace_seconds)
        finally:
            session.rollback()


def chain_length(session: Session) -> int:
    """Events in the log, sealed or not (cheap: the head and a count of the unsealed)."""
    head = session.scalar(select(AuditChainHead.seq).where(AuditChainHead.id == HEAD_ID))
    unsealed = session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.seq.is_(None)))
    return (head or 0) + (unsealed or 0)
