"""Searching and exporting the audit log: filters, keyset pages, batched iteration."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, String, cast, or_, select
from sqlalchemy.orm import Session

from models import AuditEvent, Item, Queue
from review.services.errors import ValidationFailed

FILTER_FIELDS = ("actor", "action", "queue", "item", "since", "until", "text")
PAGE_SIZE = 50
EXPORT_BATCH = 1000
MAX_TEXT = 200
# The time inputs send "2026-11-26T21:08" (datetime-local); a plain date is accepted too.
TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


@dataclass(frozen=True)
class AuditFilters:
    """What the admin searches for; empty fields do not filter."""

    actor: str = ""
    action: str = ""
    queue: str = ""  # a queue slug
    item: str = ""  # an item id, or an external id
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC
    text: str = ""  # free text inside the details
    queue_id: int | None = None

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments (for page links and export links)."""
        args = {
            "actor": self.actor,
            "action": self.action,
            "queue": self.queue,
            "item": self.item,
            "since": self.since.strftime("%Y-%m-%dT%H:%M") if self.since else "",
            "until": self.until.strftime("%Y-%m-%dT%H:%M") if self.until else "",
            "text": self.text,
        }
        return {key: value for key, value in args.items() if value}


def _time(raw: str, field: str, errors: dict[str, str]) -> datetime | None:
    if not raw:
        return None
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    errors[field] = "use a date and time like 2026-11-26T14:30 (UTC)"
    return None


def parse_filters(session: Session, args: Mapping[str, str]) -> AuditFilters:
    """Filters from a query string; ValidationFailed names each bad field."""
    errors: dict[str, str] = {}
    values = {key: (args.get(key) or "").strip() for key in ("actor", "action", "queue", "item")}
    text = (args.get("text") or "").strip()
    for key, value in {**values, "text": text}.items():
        if len(value) > MAX_TEXT:
            errors[key] = f"at most {MAX_TEXT} characters"
    since = _time((args.get("since") or "").strip(), "since", errors)
    until = _time((args.get("until") or "").strip(), "until", errors)
    if since and until and until <= since:
        errors["until"] = "must be after “from”"
    queue_id = None
    if values["queue"]:
        queue_id = session.scalar(select(Queue.id).where(Queue.slug == values["queue"]))
        if queue_id is None:
            errors["queue"] = "no such queue"
    if errors:
        raise ValidationFailed("Some search fields are not valid.", errors)
    return AuditFilters(**values, since=since, until=until, text=text, queue_id=queue_id)


def known_actions(session: Session) -> list[str]:
    """Actions seen in the log, for the action field's suggestions."""
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def queue_slugs(session: Session) -> list[str]:
    return list(session.scalars(select(Queue.slug).order_by(Queue.slug)))


def _filtered(query: Select[Any], filters: AuditFilters) -> Select[Any]:
    if filters.actor:
        query = query.where(AuditEvent.actor.icontains(filters.actor, autoescape=True))
    if filters.action:
        query = query.where(AuditEvent.action.startswith(filters.action, autoescape=True))
    if filters.queue_id is not None:
        query = query.where(AuditEvent.queue_id == filters.queue_id)
    if filters.item:
        by_external = AuditEvent.item_id.in_(
            select(Item.id).where(Item.external_id == filters.item)
        )
        if filters.item.isdigit() and len(filters.item) < 12:
            query = query.where(or_(AuditEvent.item_id == int(filters.item), by_external))
        else:
            query = query.where(by_external)
    if filters.since:
        query = query.where(AuditEvent.created_at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.created_at < filters.until)
    if filters.text:
        # The details as stored JSON text: keys, values and comments alike.
        query = query.where(
            cast(AuditEvent.details, String).icontains(filters.text, autoescape=True)
        )
    return query


@dataclass(frozen=True)
class EventRow:
    """An event with the names the page and the exports show beside the ids."""

    event: AuditEvent
    queue_slug: str | None
    external_id: str | None


@dataclass(frozen=True)
class Page:
    rows: list[EventRow]
    older: int | None  # `before` cursor for the next (older) page, if there is one
    newer: int | None  # `after` cursor for the previous (newer) page, if there is one


def _with_names(session: Session, events: list[AuditEvent]) -> list[EventRow]:
    queue_ids = {e.queue_id for e in events if e.queue_id is not None}
    item_ids = {e.item_id for e in events if e.item_id is not None}
    slugs: dict[int, str] = {}
    if queue_ids:
        query = select(Queue.id, Queue.slug).where(Queue.id.in_(queue_ids))
        slugs = {queue_id: slug for queue_id, slug in session.execute(query)}
    external: dict[int, str] = {}
    if item_ids:
        query = select(Item.id, Item.external_id).where(Item.id.in_(item_ids))
        external = {item_id: ext for item_id, ext in session.execute(query)}
    return [EventRow(e, slugs.get(e.queue_id or 0), external.get(e.item_id or 0)) for e in events]


def _exists(session: Session, filters: AuditFilters, condition: Any) -> bool:
    query = _filtered(select(AuditEvent.id), filters).where(condition).limit(1)
    return session.scalar(query) is not None


def search(
    session: Session,
    filters: AuditFilters,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """One page of matching events, newest first, by keyset on id.

    `before` gives the page of events older than that id; `after` the page of events just
    newer than it (the "newer" link); neither gives the newest page.
    """
    query = _filtered(select(AuditEvent), filters)
    if after is not None:
        query = query.where(AuditEvent.id > after).order_by(AuditEvent.id.asc())
        events = list(reversed(session.scalars(query.limit(size)).all()))
    else:
        if before is not None:
            query = query.where(AuditEvent.id < before)
        events = list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(size)))
    if not events:
        return Page([], None, None)
    oldest, newest = events[-1].id, events[0].id
    return Page(
        _with_names(session, events),
        older=oldest if _exists(session, filters, AuditEvent.id < oldest) else None,
        newer=newest if _exists(session, filters, AuditEvent.id > newest) else None,
    )


def iter_events(session: Session, filters: AuditFilters) -> Iterator[EventRow]:
    """Every matching event, oldest first, read in batches (for streamed exports)."""
    last = 0
    while True:
        query = _filtered(select(AuditEvent), filters).where(AuditEvent.id > last)
        events = list(session.scalars(query.order_by(AuditEvent.id).limit(EXPORT_BATCH)))
        if not events:
            return
        yield from _with_names(session, events)
        last = events[-1].id
        session.expunge_all()  # keeps memory flat over a long export


EXPORT_COLUMNS = (
    "id",
    "created_at",
    "actor",
    "action",
    "queue",
    "item_id",
    "external_id",
    "details",
    "seq",
    "prev_hash",
    "hash",
)


def export_record(row: EventRow) -> dict[str, Any]:
    """One event as exported: its content, the names beside the ids, and its seal."""
    event = row.event
    return {
        "id": event.id,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor,
        "actor_user_id": event.actor_user_id,
        "action": event.action,
        "queue_id": event.queue_id,
        "queue": row.queue_slug,
        "item_id": event.item_id,
        "external_id": row.external_id,
        "details": event.details,
        "seq": event.seq,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _spreadsheet_safe(value: str) -> str:
    """Stop a spreadsheet from running text that looks like a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_cells(row: EventRow) -> list[str]:
    record = export_record(row)
    record["details"] = json.dumps(record["details"], ensure_ascii=False, sort_keys=True)
    return [
        _spreadsheet_safe("" if record[column] is None else str(record[column]))
        for column in EXPORT_COLUMNS
    ]
