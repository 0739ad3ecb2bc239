"""Which decisions a snapshot holds, and each one as a row of the dataset schema.

A snapshot is cut by a watermark on reviews.id captured when it is created (see
capture_watermark): reviews are only ever inserted, so "reviews up to id W" names the
same rows today and in a year. Filters (scope, labels, time range) narrow that further.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Text,
    case,
    cast,
    false,
    func,
    select,
    text,
    true,
)
from sqlalchemy.orm import Session, aliased

from models import Item, PolicyVersion, Queue, Recommendation, Review, RoutingRecord, User
from review.domain.datasets import reviewer_pseudonym, splits_for
from review.services.dataset_prefetch import prefetched
from review.services.dataset_writers import iso_timestamps
from review.services.errors import ValidationFailed

# overrides: corrections on items the policy sent to people; human: every decision on
# those items; audited: human plus the audit samples the policy would have auto-approved
# (weight those by 1 / inclusion_probability).
SCOPES = ("overrides", "human", "audited")
REVIEWER_IDENTITIES = ("pseudonymous", "named")
MAX_LAST_DAYS = 36_500
FILTER_KEYS = {"scope", "labels", "decided_from", "decided_to", "last_days"}


@dataclass(frozen=True)
class SnapshotFilter:
    """What goes in, beyond the watermark. Times are UTC; decided_to is exclusive."""

    scope: str = "human"
    labels: tuple[str, ...] = ()
    decided_from: datetime | None = None
    decided_to: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "labels": list(self.labels),
            "decided_from": self.decided_from.isoformat() if self.decided_from else None,
            "decided_to": self.decided_to.isoformat() if self.decided_to else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotFilter:
        """The filter stored on a snapshot (as written by as_dict)."""
        return cls(
            scope=data["scope"],
            labels=tuple(data["labels"]),
            decided_from=_parse_time(data["decided_from"]),
            decided_to=_parse_time(data["decided_to"]),
        )


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _time_field(raw: Any, name: str, errors: dict[str, str]) -> datetime | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        errors[name] = "must be an ISO 8601 date or time, e.g. 2026-11-19T00:00:00Z"
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        errors[name] = "must be an ISO 8601 date or time, e.g. 2026-11-19T00:00:00Z"
        return None
    if value.tzinfo is None:  # a bare date, or a time without offset, is read as UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_filter(raw: Any, queue: Queue, now: datetime, prefix: str = "filter") -> SnapshotFilter:
    """Validate a filter object from a client. `last_days: n` means decided_from = now - n days.

    Raises ValidationFailed naming each bad field as `<prefix>.<key>`.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationFailed("filter must be an object", {prefix: "must be an object"})
    errors: dict[str, str] = {}
    for key in sorted(set(raw) - FILTER_KEYS):
        errors[f"{prefix}.{key}"] = f"unknown; use {', '.join(sorted(FILTER_KEYS))}"
    scope = raw.get("scope", "human")
    if scope not in SCOPES:
        errors[f"{prefix}.scope"] = f"must be one of: {', '.join(SCOPES)}"
    labels = raw.get("labels") or []
    known = set(queue.all_labels)
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        errors[f"{prefix}.labels"] = "must be a list of label names"
        labels = []
    elif unknown := sorted(set(labels) - known):
        errors[f"{prefix}.labels"] = f"not labels of this queue: {', '.join(unknown)}"
    decided_from = _time_field(raw.get("decided_from"), f"{prefix}.decided_from", errors)
    decided_to = _time_field(raw.get("decided_to"), f"{prefix}.decided_to", errors)
    last_days = raw.get("last_days")
    if last_days is not None:
        if (
            isinstance(last_days, bool)
            or not isinstance(last_days, int)
            or not (0 < last_days <= MAX_LAST_DAYS)
        ):
            errors[f"{prefix}.last_days"] = f"must be a whole number from 1 to {MAX_LAST_DAYS}"
        elif decided_from is not None:
            errors[f"{prefix}.last_days"] = "give last_days or decided_from, not both"
        else:
            decided_from = now - timedelta(days=last_days)
    if decided_from and decided_to and decided_from >= decided_to:
        errors[f"{prefix}.decided_to"] = "must be after decided_from"
    if errors:
        raise ValidationFailed("invalid snapshot filter", errors)
    return SnapshotFilter(scope, tuple(sorted(set(labels))), decided_from, decided_to)


@dataclass(frozen=True)
class Watermark:
    """Reviews with low_review_id < id <= high_review_id; routing as of high_routing_id."""

    low_review_id: int
    high_review_id: int
    high_routing_id: int


def capture_watermark(session: Session) -> tuple[int, int]:
    """(highest review id, highest routing record id) such that every review up to the
    first is committed: later commits can only add reviews above it.

    On PostgreSQL a review id is drawn when the INSERT runs but becomes visible at COMMIT,
    so a transaction still open could commit a lower id after we looked. A SHARE lock on
    `reviews` waits for those writers to finish (and holds new ones back until the caller
    commits, a few milliseconds); SQLite has a single writer, so what is visible is final.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL lock_timeout = '10s'"))
        session.execute(text("LOCK TABLE reviews IN SHARE MODE"))
    high_review = session.scalar(select(func.coalesce(func.max(Review.id), 0)))
    high_routing = session.scalar(select(func.coalesce(func.max(RoutingRecord.id), 0)))
    return int(high_review or 0), int(high_routing or 0)


def selection_columns(routing: Any = RoutingRecord) -> tuple[Any, Any]:
    """SQL for (audit, inclusion_probability) of a row, from its routing record
    (`routing`: the RoutingRecord entity or an alias of it).

    The one place that knows where these come from: routing_records.audit and
    .inclusion_probability when the policy records them, else (an older schema) no audits
    and probability 1 for an item a person was meant to see, 0 for an auto-approval.
    """
    routed_to_person = case((routing.route == "auto_approve", 0.0), else_=1.0)
    audit_column = getattr(routing, "audit", None)
    probability_column = getattr(routing, "inclusion_probability", None)
    audit = func.coalesce(audit_column, false()) if audit_column is not None else false()
    probability = (
        func.coalesce(probability_column, routed_to_person)
        if probability_column is not None
        else routed_to_person
    )
    return audit, probability


# datetime.isoformat of a UTC timestamp, made by PostgreSQL (session time zone UTC): the
# fraction is left out when it is zero, as isoformat does.
_ISO_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


def _iso_text(column: Any) -> Any:
    return func.replace(func.to_char(column, _ISO_FORMAT), ".000000+", "+")


def _latest_routing(mark: Watermark, lateral: bool) -> tuple[Any, Any]:
    """(routing, join condition): each row's latest routing record as of the watermark,
    found by an index probe per row, so that PostgreSQL streams rows in review-id order
    as it reads them (a grouped subquery joined by hash had to be built whole, and the
    result sorted, before the first row). LATERAL, PostgreSQL's, reads the record in one
    probe; elsewhere the latest id is looked up, then its record (a fifth more time)."""
    if lateral:
        latest = (
            select(RoutingRecord)
            .where(
                RoutingRecord.item_id == Review.item_id, RoutingRecord.id <= mark.high_routing_id
            )
            .order_by(RoutingRecord.id.desc())
            .limit(1)
            .lateral("latest_routing")
        )
        return aliased(RoutingRecord, latest), true()
    latest_id = aliased(RoutingRecord)
    highest = (
        select(func.max(latest_id.id))
        .where(latest_id.item_id == Review.item_id, latest_id.id <= mark.high_routing_id)
        .scalar_subquery()
    )
    return RoutingRecord, RoutingRecord.id == highest


def rows_query(
    queue_id: int, flt: SnapshotFilter, mark: Watermark, named: bool, *, postgresql: bool = False
) -> Select[Any]:
    """The snapshot's rows in review-id order (columns as RowBuilder expects them).

    With `postgresql` the SQL is PostgreSQL's own: LATERAL, and the timestamps as the ISO
    8601 text datetime.isoformat writes (cheaper to read and write out than datetimes)."""
    routing, routing_join = _latest_routing(mark, lateral=postgresql)
    audit, probability = selection_columns(routing)
    timestamps: list[Any] = [Item.created_at, routing.created_at, Review.decided_at]
    if postgresql:
        timestamps = [_iso_text(column) for column in timestamps]
    columns: list[Any] = [
        Review.id,
        Review.item_id,
        Item.external_id,
        # The payload's JSON text as stored: no parse and re-encode per row.
        cast(Item.payload, Text),
        Recommendation.label,
        Recommendation.confidence,
        Recommendation.source,
        Recommendation.model,
        Recommendation.model_version,
        Review.final_label,
        Review.action,
        Review.reason_code,
        Review.comment,
        User.email if named else Review.reviewer_id,
        Review.seconds_on_item,
        PolicyVersion.version,
        routing.route,
        routing.threshold,
        audit,
        probability,
        *timestamps,
    ]
    query = (
        select(*columns)
        .select_from(Review)
        .join(Item, Item.id == Review.item_id)
        .outerjoin(Recommendation, Recommendation.item_id == Review.item_id)
        .outerjoin(routing, routing_join)
        .outerjoin(PolicyVersion, PolicyVersion.id == routing.policy_version_id)
        .where(
            Item.queue_id == queue_id,
            Review.id > mark.low_review_id,
            Review.id <= mark.high_review_id,
        )
        .order_by(Review.id)
    )
    if named:
        query = query.join(User, User.id == Review.reviewer_id)
    return _filtered(query, flt, audit)


def count_query(queue_id: int, flt: SnapshotFilter, mark: Watermark) -> Select[Any]:
    """How many rows rows_query returns. Only what the filters read is joined.

    Whether an item's latest routing (as of the watermark) is an audit is asked of the
    audited records alone, which are few: an audited record with no newer one. Finding
    every item's latest record first (a grouped pass over all routing records) cost 1.5 s
    of PostgreSQL CPU on a million rows, against 0.7 s, while the export's own query
    wants the same cores."""
    audited, newer = aliased(RoutingRecord), aliased(RoutingRecord)
    latest_is_audit = (
        select(audited.id)
        .where(
            audited.item_id == Review.item_id,
            audited.audit.is_(True),
            audited.id <= mark.high_routing_id,
            ~select(newer.id)
            .where(
                newer.item_id == audited.item_id,
                newer.id > audited.id,
                newer.id <= mark.high_routing_id,
            )
            .exists(),
        )
        .exists()
    )
    query = (
        select(func.count())
        .select_from(Review)
        .join(Item, Item.id == Review.item_id)
        .where(
            Item.queue_id == queue_id,
            Review.id > mark.low_review_id,
            Review.id <= mark.high_review_id,
        )
    )
    return _filtered(query, flt, latest_is_audit)


class RowCount:
    """The number of rows of a count query, as the session's transaction sees them.

    On PostgreSQL it is counted by a second connection that imports the session's
    snapshot (pg_export_snapshot), in a thread, while the session reads the rows: the
    count took a second and a half on a million rows, all of it before the first row.
    Elsewhere it is counted at once. The session must be in a REPEATABLE READ transaction.
    """

    def __init__(self, session: Session, query: Select[Any]) -> None:
        self._value: int | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if session.get_bind().dialect.name != "postgresql":
            self._value = int(session.scalar(query) or 0)
            return
        snapshot = session.scalar(text("SELECT pg_export_snapshot()"))
        self._thread = threading.Thread(
            target=self._count, args=(session.get_bind(), str(snapshot), query), daemon=True
        )
        self._thread.start()

    def _count(self, engine: Engine, snapshot: str, query: Select[Any]) -> None:
        try:
            with engine.connect() as connection:
                connection.execution_options(isolation_level="REPEATABLE READ")
                with connection.begin():
                    # Must be the transaction's first statement; the name comes from PostgreSQL.
                    connection.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                    _no_jit_nor_parallel(connection.connection.driver_connection)
                    self._value = int(connection.scalar(query) or 0)
        except BaseException as error:  # noqa: BLE001  raised by result()
            self._error = error

    def known(self) -> int | None:
        """The count if it is done, else None (without waiting)."""
        if self._thread is not None and self._thread.is_alive():
            return None
        return self._value

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def result(self) -> int:
        """The count, waiting for it; raises what went wrong while counting."""
        self.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


def _filtered(query: Select[Any], flt: SnapshotFilter, audit: Any) -> Select[Any]:
    if flt.scope != "audited":
        query = query.where(~audit)
    if flt.scope == "overrides":
        query = query.where(Review.action == "overridden")
    if flt.labels:
        query = query.where(Review.final_label.in_(flt.labels))
    if flt.decided_from is not None:
        query = query.where(Review.decided_at >= flt.decided_from)
    if flt.decided_to is not None:
        query = query.where(Review.decided_at < flt.decided_to)
    return query


class RowBuilder:
    """Turns a batch of result rows into the schema's columns: reviewer pseudonyms,
    overridden flag, split. Columnar, so that the per-row work is a few C-level loops."""

    def __init__(self, queue_slug: str, secret: str, named: bool) -> None:
        self.queue_slug = queue_slug
        self.secret = secret
        self.named = named
        self._pseudonyms: dict[Any, str] = {}

    def reviewer(self, value: Any) -> str:
        if self.named:
            return str(value)
        if value not in self._pseudonyms:
            self._pseudonyms[value] = reviewer_pseudonym(self.secret, value)
        return self._pseudonyms[value]

    def columns(self, rows: Sequence[Any]) -> list[Sequence[Any]]:
        """The batch as SCHEMA-ordered columns (one sequence per field, rows aligned)."""
        c = list(zip(*rows, strict=True)) if rows else [()] * 23
        pseudonym = {value: self.reviewer(value) for value in set(c[13])}
        return [
            c[0], c[1], c[2], [self.queue_slug] * len(rows), c[3],
            c[4], c[5], c[6], c[7], c[8],
            c[9], list(map("overridden".__eq__, c[10])), c[11],
            [comment or "" for comment in c[12]], list(map(pseudonym.__getitem__, c[13])),
            c[14], c[15], c[16], c[17], list(map(bool, c[18])),
            list(map(float, c[19])), c[20], c[21], c[22], splits_for(c[1]),
        ]  # fmt: skip


def iter_column_batches(
    session: Session, query: Select[Any], build: RowBuilder, batch_size: int
) -> Iterator[list[Sequence[Any]]]:
    """The query's rows as SCHEMA-ordered columns, `batch_size` rows at a time, in the
    session's transaction, timestamps as ISO 8601 text; memory stays flat whatever the row
    count. On PostgreSQL the query must have been built with postgresql=True."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        for rows in _core_batches(connection, query, batch_size):
            yield iso_timestamps(build.columns(rows))
        return
    with prefetched(_postgresql_batches(connection, query, batch_size)) as batches:
        for rows in batches:
            yield build.columns(rows)


def _core_batches(connection: Connection, query: Select[Any], size: int) -> Iterator[Sequence[Any]]:
    with connection.execute(query.execution_options(yield_per=size)) as result:
        yield from result.partitions()


def _no_jit_nor_parallel(driver: Any) -> None:
    """Settings for the export's queries, for the rest of the transaction.

    No JIT: a million-row plan is costly enough that PostgreSQL compiled it, three seconds
    of CPU (in every parallel worker) before the first row, for per-row work that is index
    probes. No parallel workers: the client takes one core to encode what the query sends,
    so workers gain nothing on a small machine and cost the tuples' hand-over to the leader
    (the count, run alongside, had each worker aggregate the routing records again)."""
    driver.execute("SET LOCAL jit = off")
    driver.execute("SET LOCAL max_parallel_workers_per_gather = 0")


def _postgresql_batches(
    connection: Connection, query: Select[Any], size: int
) -> Iterator[Sequence[Any]]:
    """Straight from psycopg, skipping SQLAlchemy's per-value result processing (half
    the client's time on a million rows)."""
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    driver = connection.connection.driver_connection
    assert driver is not None
    # The timestamps are formatted as UTC text (rows_query with postgresql=True).
    driver.execute("SET LOCAL TimeZone TO 'UTC'")
    # Stream: walk the reviews in id order and probe the other tables by index (nested
    # loops), so that rows flow from the first one on, while earlier ones are encoded.
    # Hash and merge joins would first build or sort the whole result (seconds on a
    # million rows, all before the first row, spilling to disk).
    driver.execute("SET LOCAL enable_hashjoin = off")
    driver.execute("SET LOCAL enable_mergejoin = off")
    _no_jit_nor_parallel(driver)
    sql, params = str(compiled), compiled.params
    # Binary results: ints and floats arrive as machine values, not text to parse (a third
    # less client CPU per row); the columns are ints, floats, booleans and text, whose
    # Python values are the same either way (the timestamps are text, made by to_char).
    # A server-side cursor: fetchmany builds a batch's rows in one call into the driver's
    # C code, where Cursor.stream yields row by row through Python (0.3 µs more per row,
    # on the thread every other step of the export waits for). The round trip per batch
    # costs nothing here: the batches are read a batch ahead of the encoding (prefetched).
    with driver.cursor(name=f"snapshot_rows_{uuid.uuid4().hex}", binary=True) as cursor:
        cursor.itersize = size
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(size):
            yield rows
