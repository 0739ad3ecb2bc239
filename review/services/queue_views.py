"""The queue page: filtered, sorted, keyset-paginated lists of waiting items, and live counts.

Built to stay fast at a million items: every sort walks an index in order and stops after
one page (keyset pagination, never OFFSET), and counts are exact only up to a cap
(review/services/counting.py). The AI label and confidence filters and the confidence sort
read the items' own copies of them (Item.ai_label, ai_confidence), so no query joins the
recommendations. Sorting by priority walks one priority at a time, because "priority DESC,
id ASC" in one query cannot be read from one ascending index without sorting a whole
priority group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.orm import Session

from models import Item, Queue, User
from review.services.counting import Count, capped_count
from review.services.errors import ValidationFailed

PAGE_SIZE = 50
# Sorting by priority visits at most this many priority groups for one page.
MAX_GROUPS = 100
SORTS = ("priority", "oldest", "newest", "confidence")
STATUSES = ("needs_review", "pending")
# Confidence bands: name -> [low, high).
BANDS: dict[str, tuple[float, float]] = {
    "low": (0.0, 0.5),
    "medium": (0.5, 0.8),
    "high": (0.8, 0.95),
    "very_high": (0.95, 1.01),
}
# Age filters: name -> (newer than, older than) as timedeltas from now.
AGES: dict[str, tuple[timedelta | None, timedelta | None]] = {
    "lt1h": (timedelta(hours=1), None),
    "lt24h": (timedelta(hours=24), None),
    "gt24h": (None, timedelta(hours=24)),
    "gt7d": (None, timedelta(days=7)),
}
PREVIEW_CHARS = 140
# The ai_status of items that have no recommendation (models/item.py AI_STATUSES but "ok").
NO_AI_STATUSES = ("none", "unavailable", "budget_exhausted")


@dataclass(frozen=True)
class QueueFilters:
    status: str = "needs_review"
    label: str | None = None
    band: str | None = None
    age: str | None = None
    min_priority: int | None = None
    no_recommendation: bool = False
    ai_unavailable: bool = False
    sort: str = "priority"

    def as_params(self) -> dict[str, str]:
        """The filters as query-string parameters (defaults left out)."""
        params = {
            "status": self.status if self.status != "needs_review" else None,
            "label": self.label,
            "band": self.band,
            "age": self.age,
            "min_priority": str(self.min_priority) if self.min_priority is not None else None,
            "no_rec": "1" if self.no_recommendation else None,
            "ai_unavailable": "1" if self.ai_unavailable else None,
            "sort": self.sort if self.sort != "priority" else None,
        }
        return {key: value for key, value in params.items() if value is not None}


def _choice(args: Any, name: str, choices: Any, errors: dict[str, str]) -> str | None:
    value = args.get(name) or None
    if value is not None and value not in choices:
        errors[name] = f"must be one of: {', '.join(choices)}"
        return None
    return value


def parse_filters(args: Any, queue: Queue) -> QueueFilters:
    """Read filters from query parameters; raise ValidationFailed naming each bad one."""
    errors: dict[str, str] = {}
    min_priority = None
    if raw := args.get("min_priority"):
        try:
            min_priority = int(raw)
        except ValueError:
            errors["min_priority"] = "must be a whole number"
    filters = QueueFilters(
        status=_choice(args, "status", STATUSES, errors) or "needs_review",
        label=_choice(args, "label", queue.labels, errors),
        band=_choice(args, "band", BANDS, errors),
        age=_choice(args, "age", AGES, errors),
        min_priority=min_priority,
        no_recommendation=args.get("no_rec") == "1",
        ai_unavailable=args.get("ai_unavailable") == "1",
        sort=_choice(args, "sort", SORTS, errors) or "priority",
    )
    if filters.no_recommendation and (filters.label or filters.band):
        errors["no_rec"] = "cannot be combined with a label or confidence filter"
    if filters.no_recommendation and filters.sort == "confidence":
        errors["sort"] = "items without a recommendation have no confidence to sort by"
    if errors:
        raise ValidationFailed("invalid filters", errors)
    return filters


def _filtered(query: Select, queue: Queue, filters: QueueFilters, now: datetime) -> Select:
    query = query.where(Item.queue_id == queue.id, Item.status == filters.status)
    if filters.label:
        query = query.where(Item.ai_label == filters.label)
    if filters.band:
        low, high = BANDS[filters.band]
        query = query.where(Item.ai_confidence >= low, Item.ai_confidence < high)
    if filters.age:
        newer, older = AGES[filters.age]
        if newer is not None:
            query = query.where(Item.created_at >= now - newer)
        if older is not None:
            query = query.where(Item.created_at < now - older)
    if filters.min_priority is not None:
        query = query.where(Item.priority >= filters.min_priority)
    if filters.no_recommendation:
        # An item has a recommendation exactly when its ai_status is "ok" (routing.py sets
        # both); testing the column lets ix_items_queue_ai_status find the few without.
        query = query.where(or_(Item.ai_status.is_(None), Item.ai_status.in_(NO_AI_STATUSES)))
    if filters.ai_unavailable:
        query = query.where(Item.ai_status == "unavailable")
    return query


def _base(queue: Queue, filters: QueueFilters, now: datetime) -> Select:
    query = select(Item)
    if filters.sort == "confidence":
        # Only items with a recommendation have a confidence to sort by.
        query = query.where(Item.ai_confidence.is_not(None))
    return _filtered(query, queue, filters, now)


def _rows(session: Session, query: Select) -> list[Item]:
    return list(session.scalars(query))


@dataclass(frozen=True)
class QueueRow:
    item: Item
    preview: str
    leased_by: str | None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    filters: QueueFilters
    params: dict[str, str] = field(default_factory=dict)


def _cursor_error() -> ValidationFailed:
    return ValidationFailed("invalid page cursor", {"after": "is not a cursor from this page"})


def _parse_cursor(cursor: str | None, sort: str) -> tuple[Any, int] | None:
    """A cursor is "<sort key>_<item id>" of the last row of the previous page."""
    if not cursor:
        return None
    key, _, raw_id = cursor.rpartition("_")
    try:
        item_id = int(raw_id)
        if sort == "priority":
            return int(key), item_id
        if sort == "confidence":
            return float(key), item_id
        return datetime.fromisoformat(key), item_id
    except ValueError as exc:
        raise _cursor_error() from exc


def _cursor_for(item: Item, sort: str) -> str:
    if sort == "priority":
        return f"{item.priority}_{item.id}"
    if sort == "confidence":
        return f"{item.ai_confidence!r}_{item.id}"
    return f"{item.created_at.isoformat()}_{item.id}"


def _by_priority(
    session: Session, base: Select, after: tuple[Any, int] | None, limit: int
) -> list[Item]:
    """Highest priority first, oldest first within a priority: one index walk per group."""
    items: list[Item] = []
    if after is None:
        priority = _highest_priority(session, base)
        after_id = 0
    else:
        priority, after_id = after
    for _ in range(MAX_GROUPS):
        if priority is None or len(items) >= limit:
            break
        group = base.where(Item.priority == priority, Item.id > after_id)
        items.extend(_rows(session, group.order_by(Item.id).limit(limit - len(items))))
        if len(items) >= limit:
            break
        priority = _highest_priority(session, base.where(Item.priority < priority))
        after_id = 0
    return items


def _highest_priority(session: Session, base: Select) -> int | None:
    # ORDER BY ... LIMIT 1 walks the index backwards; max() may scan the whole queue.
    query = base.with_only_columns(Item.priority).order_by(Item.priority.desc()).limit(1)
    return session.scalar(query)


def _sorted(session: Session, base: Select, sort: str, after: Any, limit: int) -> list[Item]:
    if sort == "priority":
        return _by_priority(session, base, after, limit)
    if sort == "confidence":
        if after is not None:
            base = base.where(tuple_(Item.ai_confidence, Item.id) > after)
        order = (Item.ai_confidence, Item.id)
    elif sort == "oldest":
        if after is not None:
            base = base.where(tuple_(Item.created_at, Item.id) > after)
        order = (Item.created_at, Item.id)
    else:
        if after is not None:
            base = base.where(tuple_(Item.created_at, Item.id) < after)
        order = (Item.created_at.desc(), Item.id.desc())
    return _rows(session, base.order_by(*order).limit(limit))


def preview_text(payload: dict[str, Any]) -> str:
    """A one-line glimpse of the payload: its first text field, else compact JSON."""
    for value in payload.values():
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            break
    else:
        text = json.dumps(payload, ensure_ascii=False)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def queue_page(
    session: Session,
    queue: Queue,
    filters: QueueFilters,
    cursor: str | None,
    now: datetime,
    limit: int = PAGE_SIZE,
) -> QueuePage:
    """One page of the queue's items under the filters, after the cursor's row."""
    after = _parse_cursor(cursor, filters.sort)
    items = _sorted(session, _base(queue, filters, now), filters.sort, after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    holder_ids = {item.leased_by_id for item in items if _leased(item, now)}
    names = (
        {
            user.id: user.name
            for user in session.scalars(select(User).where(User.id.in_(holder_ids)))
        }
        if holder_ids
        else {}
    )
    rows = [
        QueueRow(
            item,
            preview_text(item.payload),
            (names.get(item.leased_by_id) or "a reviewer") if _leased(item, now) else None,
        )
        for item in items
    ]
    next_cursor = _cursor_for(items[-1], filters.sort) if more and items else None
    return QueuePage(rows, next_cursor, filters, filters.as_params())


def _leased(item: Item, now: datetime) -> bool:
    return item.leased_by_id is not None and (
        item.lease_expires_at is not None and item.lease_expires_at >= now
    )


@dataclass(frozen=True)
class QueueCounts:
    needs_review: Count
    in_review: Count  # leased right now
    pending: Count
    matching: Count  # under the current filters


def queue_counts(
    session: Session, queue: Queue, filters: QueueFilters, now: datetime
) -> QueueCounts:
    """Live counts for the queue page (polled): exact up to the cap, estimated beyond."""
    in_queue = select(Item.id).where(Item.queue_id == queue.id)
    by_status = {
        status: capped_count(session, in_queue.where(Item.status == status)) for status in STATUSES
    }
    in_review = capped_count(
        session,
        in_queue.where(
            Item.status == "needs_review",
            Item.leased_by_id.is_not(None),
            Item.lease_expires_at >= now,
        ),
    )
    if replace(filters, sort="priority") == QueueFilters(status=filters.status):
        matching = by_status[filters.status]  # no filter but the status: counted already
    else:
        matching = capped_count(session, _filtered(select(Item.id), queue, filters, now))
    return QueueCounts(by_status["needs_review"], in_review, by_status["pending"], matching)
