"""The queue page: filtered, sorted, keyset-paginated lists of a queue's items (waiting by
default; decided ones too), and live counts.

Built to stay fast at a million items: every sort walks an index in order and stops after
one page (keyset pagination, never OFFSET), and counts are exact only up to a cap
(review/services/counting.py). The AI label and confidence filters and the confidence sort
read the items' own copies of them (Item.ai_label, ai_confidence), so no query joins the
recommendations. Sorting by priority walks one priority at a time, because "priority DESC,
id ASC" in one query cannot be read from one ascending index without sorting a whole
priority group. Decided items are filtered by their final label (an index of its own),
and by how and by whom they were decided (asked of each item's one review as the walk
passes it). A search by the payload's words (services/payload_search.py) either walks the
page's index like any filter or, when it has few matches, finds them first (_few_matches).

The statements are built once per filter shape (which filters are set, not their values:
those are bound parameters) and read plain rows, not ORM objects: building the statements
and loading Items took 2.5 ms of CPU per page at a million items, now 0.9 ms. The counts
go to PostgreSQL as one statement.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    bindparam,
    exists,
    null,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Session, aliased

from models import Item, Queue, Review, User
from review.services.counting import CappedCounts, Count
from review.services.errors import ValidationFailed
from review.services.payload_search import index_first, parse_search, payload_matches
from review.services.statements import built_once

PAGE_SIZE = 50
# Sorting by priority visits at most this many priority groups for one page.
MAX_GROUPS = 100
SORTS = ("priority", "oldest", "newest", "confidence", "decided")
# Items that have been decided, by a person or by the policy: they have a decision time.
DECIDED_STATUSES = ("decided", "auto_approved")
# The queue page lists waiting items by default; decided ones can be browsed the same way.
STATUSES = ("needs_review", "pending", "decided", "auto_approved")
# The statuses queue_counts counts on their own (a filter by another counts it as matching).
_COUNTED_STATUSES = ("needs_review", "pending")
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
# How a person's decision went, as Review.action records it: kept the AI's label or not.
OUTCOMES = {"agreed": "approved", "overridden": "overridden"}
PREVIEW_CHARS = 140
# A search with at most this many matches reads its page from the word index (_few_matches).
FEW_MATCHES = 2_000
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
    # Decided items only (see _for_status): the label they ended with, and for items a
    # person decided, how the decision went and who made it (a user id).
    final_label: str | None = None
    outcome: str | None = None
    decided_by: int | None = None
    # Words the payload's text must have (services/payload_search.py).
    search: str | None = None
    sort: str = "priority"

    @property
    def default_sort(self) -> str:
        return default_sort(self.status)

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
            "final_label": self.final_label,
            "outcome": self.outcome,
            "decided_by": str(self.decided_by) if self.decided_by is not None else None,
            "q": self.search,
            "sort": self.sort if self.sort != self.default_sort else None,
        }
        return {key: value for key, value in params.items() if value is not None}

    def without_sort(self) -> QueueFilters:
        """The filters that decide which items match: all but the sort (counts ignore it)."""
        return replace(self, sort="priority")


def default_sort(status: str) -> str:
    """Waiting items come in the order reviewers get them; decided ones newest decision
    first (what a reviewer looking back, or someone checking a complaint, wants)."""
    return "decided" if status in DECIDED_STATUSES else "priority"


def _choice(args: Any, name: str, choices: Any, errors: dict[str, str]) -> str | None:
    value = args.get(name) or None
    if value is not None and value not in choices:
        errors[name] = f"must be one of: {', '.join(choices)}"
        return None
    return value


def _whole_number(args: Any, name: str, errors: dict[str, str], message: str) -> int | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        errors[name] = message
        return None


def parse_filters(args: Any, queue: Queue, deciders: Collection[int] | None = None) -> QueueFilters:
    """Read filters from query parameters; raise ValidationFailed naming each bad one.

    `deciders`: the user ids "decided by" may name (the page's choices); None to accept
    any id (an id nobody has matches no item)."""
    errors: dict[str, str] = {}
    min_priority = _whole_number(args, "min_priority", errors, "must be a whole number")
    decided_by = _whole_number(args, "decided_by", errors, "choose a person from the list")
    if decided_by is not None and deciders is not None and decided_by not in deciders:
        errors["decided_by"] = "choose a person from the list"
    try:
        search = parse_search(args.get("q"))
    except ValidationFailed as exc:
        errors.update(exc.fields)
        search = None
    status = _choice(args, "status", STATUSES, errors) or "needs_review"
    sort = _choice(args, "sort", SORTS, errors) or default_sort(status)
    if sort == "decided" and status not in DECIDED_STATUSES:
        # Left over from browsing decided items (one form holds both choices): waiting
        # items have no decision time, so they come in their own default order.
        sort = default_sort(status)
    filters = QueueFilters(
        status=status,
        label=_choice(args, "label", queue.labels, errors),
        band=_choice(args, "band", BANDS, errors),
        age=_choice(args, "age", AGES, errors),
        min_priority=min_priority,
        no_recommendation=args.get("no_rec") == "1",
        ai_unavailable=args.get("ai_unavailable") == "1",
        final_label=_choice(args, "final_label", queue.all_labels, errors),
        outcome=_choice(args, "outcome", OUTCOMES, errors),
        decided_by=decided_by,
        search=search,
        sort=sort,
    )
    filters = _for_status(filters)
    if filters.no_recommendation and (filters.label or filters.band):
        errors["no_rec"] = "cannot be combined with a label or confidence filter"
    if filters.no_recommendation and filters.sort == "confidence":
        errors["sort"] = "items without a recommendation have no confidence to sort by"
    if errors:
        raise ValidationFailed("invalid filters", errors)
    return filters


def _for_status(filters: QueueFilters) -> QueueFilters:
    """The filters without those that do not apply to the status: what the items ended
    with (final label) to waiting items, and how a person decided to items a person did
    not decide. One form holds them all, so they are left over, not mistakes."""
    if filters.status not in DECIDED_STATUSES:
        return replace(filters, final_label=None, outcome=None, decided_by=None)
    if filters.status != "decided":
        return replace(filters, outcome=None, decided_by=None)
    return filters


class Decider(NamedTuple):
    id: int
    name: str


def deciders(session: Session) -> list[Decider]:
    """The people the "decided by" filter offers: whoever may decide (reviewers and
    admins) and whoever has decided something (a role can change; decisions stay). The
    second is one probe of ix_reviews_reviewer_decided per user."""
    has_decided = exists().where(Review.reviewer_id == User.id)
    rows = session.execute(
        select(User.id, User.display_name, User.email).where(
            or_(User.role.in_(("reviewer", "admin")), has_decided)
        )
    )
    people = [Decider(user_id, display_name or email) for user_id, display_name, email in rows]
    return sorted(people, key=lambda person: (person.name.casefold(), person.id))


class _Shape(NamedTuple):
    """Which optional conditions a set of filters uses: the key of the statements built
    for it (their values are bound parameters, see _params)."""

    label: bool
    band: bool
    newer: bool
    older: bool
    min_priority: bool
    no_recommendation: bool
    ai_unavailable: bool
    final_label: bool
    outcome: str | None
    decided_by: bool
    search: bool
    # Only the items :b_ids (a search's few matches, found first: see _few_matches).
    among_ids: bool
    # The list shows who decided each item (status "decided"): a join for those pages only.
    deciders: bool


def _shape(filters: QueueFilters) -> _Shape:
    newer, older = AGES[filters.age] if filters.age else (None, None)
    return _Shape(
        label=filters.label is not None,
        band=filters.band is not None,
        newer=newer is not None,
        older=older is not None,
        min_priority=filters.min_priority is not None,
        no_recommendation=filters.no_recommendation,
        ai_unavailable=filters.ai_unavailable,
        final_label=filters.final_label is not None,
        outcome=filters.outcome,
        decided_by=filters.decided_by is not None,
        search=filters.search is not None,
        among_ids=False,
        deciders=filters.status == "decided",
    )


def _params(queue: Queue, filters: QueueFilters, now: datetime) -> dict[str, Any]:
    """The values of the bound parameters of _conditions(_shape(filters))."""
    params: dict[str, Any] = {"b_queue": queue.id, "b_status": filters.status}
    if filters.label:
        params["b_label"] = filters.label
    if filters.band:
        params["b_band_low"], params["b_band_high"] = BANDS[filters.band]
    if filters.age:
        newer, older = AGES[filters.age]
        if newer is not None:
            params["b_created_from"] = now - newer
        if older is not None:
            params["b_created_before"] = now - older
    if filters.min_priority is not None:
        params["b_min_priority"] = filters.min_priority
    if filters.final_label is not None:
        params["b_final_label"] = filters.final_label
    if filters.decided_by is not None:
        params["b_decided_by"] = filters.decided_by
    if filters.search is not None:
        params["b_search"] = filters.search
    return params


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    """SQL: the items of queue :b_queue in status :b_status under filters of this shape."""
    conditions = [Item.queue_id == bindparam("b_queue"), Item.status == bindparam("b_status")]
    if shape.label:
        conditions.append(Item.ai_label == bindparam("b_label"))
    if shape.band:
        conditions.append(Item.ai_confidence >= bindparam("b_band_low"))
        conditions.append(Item.ai_confidence < bindparam("b_band_high"))
    if shape.newer:
        conditions.append(Item.created_at >= bindparam("b_created_from"))
    if shape.older:
        conditions.append(Item.created_at < bindparam("b_created_before"))
    if shape.min_priority:
        conditions.append(Item.priority >= bindparam("b_min_priority"))
    if shape.no_recommendation:
        # An item has a recommendation exactly when its ai_status is "ok" (routing.py sets
        # both); testing the column lets ix_items_queue_ai_status find the few without.
        conditions.append(or_(Item.ai_status.is_(None), Item.ai_status.in_(NO_AI_STATUSES)))
    if shape.ai_unavailable:
        conditions.append(Item.ai_status == "unavailable")
    if shape.final_label:
        conditions.append(Item.final_label == bindparam("b_final_label"))
    if shape.outcome or shape.decided_by:
        # Asked of the item's one review (unique item_id), per item the sort walks to;
        # an alias of its own, as the decided list also joins reviews for the decider.
        review = aliased(Review, name="decision")
        decision = [review.item_id == Item.id]
        if shape.outcome:
            decision.append(review.action == OUTCOMES[shape.outcome])
        if shape.decided_by:
            decision.append(review.reviewer_id == bindparam("b_decided_by"))
        conditions.append(exists().where(*decision))
    if shape.search:
        conditions.append(payload_matches(Item.payload, bindparam("b_search")))
    if shape.among_ids:
        conditions.append(Item.id.in_(bindparam("b_ids", expanding=True)))
    return conditions


class ListedItem(NamedTuple):
    """What the queue page shows of an item. A tuple with real attributes, as the template
    reads each several times: through SQLAlchemy's Row, whose attributes are looked up by
    a fallback, rendering a page took 0.8 ms more."""

    id: int
    external_id: str
    priority: int
    created_at: datetime
    ai_label: str | None
    ai_confidence: float | None
    ai_status: str | None
    final_label: str | None
    decided_at: datetime | None


# Who decided a decided item: the reviewer of its review.
_Decider = aliased(User, name="decider")
# A page's columns: the item's shown ones, then what the preview and the lease need, the
# lease holder's names and the decider's (users outer-joined, so the page needs no second
# query; the decider's are NULL but on pages of items a person decided).
_LISTED = (
    *(getattr(Item, name) for name in ListedItem._fields),
    Item.payload,
    Item.leased_by_id,
    Item.lease_expires_at,
    Item.lease_started_at,
    User.display_name,
    User.email,
)


def _listing(shape: _Shape) -> Select[*tuple[Any, ...]]:
    query = select(*_LISTED).outerjoin(User, User.id == Item.leased_by_id)
    if shape.deciders:
        query = (
            query.add_columns(_Decider.display_name, _Decider.email)
            .outerjoin(Review, Review.item_id == Item.id)
            .outerjoin(_Decider, _Decider.id == Review.reviewer_id)
        )
    else:
        query = query.add_columns(null().label("decider_name"), null().label("decider_email"))
    return query.where(*_conditions(shape)).limit(bindparam("b_limit", type_=Integer))


@built_once
def _group_statement(shape: _Shape) -> Select[*tuple[Any, ...]]:
    # Like every statement here, built once per filter shape: building one cost more CPU
    # than running it.
    in_group = (Item.priority == bindparam("b_priority"), Item.id > bindparam("b_after_id"))
    return _listing(shape).where(*in_group).order_by(Item.id)


@built_once
def _highest_priority_statement(shape: _Shape, below: bool) -> Select[int]:
    # ORDER BY ... LIMIT 1 walks the index backwards; max() may scan the whole queue.
    query = select(Item.priority).where(*_conditions(shape))
    if below:
        query = query.where(Item.priority < bindparam("b_below"))
    return query.order_by(Item.priority.desc()).limit(1)


# Per sort but "priority": the keyset columns and whether the sort is descending.
_KEYSETS: dict[str, tuple[Any, bool]] = {
    "oldest": (Item.created_at, False),
    "newest": (Item.created_at, True),
    "confidence": (Item.ai_confidence, False),
    "decided": (Item.decided_at, True),
}


@built_once
def _sorted_statement(shape: _Shape, sort: str, after: bool) -> Select[*tuple[Any, ...]]:
    key, descending = _KEYSETS[sort]
    query = _listing(shape)
    if sort == "confidence":
        # Only items with a recommendation have a confidence to sort by.
        query = query.where(Item.ai_confidence.is_not(None))
    if sort == "decided":
        # As ix_items_queue_decided holds them (every decided item has a decision time).
        query = query.where(Item.decided_at.is_not(None))
    if after:
        last = tuple_(bindparam("b_after_key", type_=key.type), bindparam("b_after_id"))
        columns = tuple_(key, Item.id)
        query = query.where(columns < last if descending else columns > last)
    if descending:
        return query.order_by(key.desc(), Item.id.desc())
    return query.order_by(key, Item.id)


def _by_priority(
    session: Session, shape: _Shape, params: dict[str, Any], after: Any, limit: int
) -> list[Row[*tuple[Any, ...]]]:
    """Highest priority first, oldest first within a priority: one index walk per group."""
    rows: list[Row[*tuple[Any, ...]]] = []
    if after is None:
        priority = session.scalar(_highest_priority_statement(shape, False), params)
        after_id = 0
    else:
        priority, after_id = after
    for _ in range(MAX_GROUPS):
        if priority is None or len(rows) >= limit:
            break
        group = {"b_priority": priority, "b_after_id": after_id, "b_limit": limit - len(rows)}
        rows.extend(session.execute(_group_statement(shape), {**params, **group}))
        if len(rows) >= limit:
            break
        below = {**params, "b_below": priority}
        priority = session.scalar(_highest_priority_statement(shape, True), below)
        after_id = 0
    return rows


def _sorted(
    session: Session,
    filters: QueueFilters,
    shape: _Shape,
    params: dict[str, Any],
    after: Any,
    limit: int,
) -> list[Row[*tuple[Any, ...]]]:
    if filters.sort == "priority":
        return _by_priority(session, shape, params, after, limit)
    page_params = {**params, "b_limit": limit}
    if after is not None:
        page_params["b_after_key"], page_params["b_after_id"] = after
    statement = _sorted_statement(shape, filters.sort, after is not None)
    return list(session.execute(statement, page_params))


@dataclass(frozen=True)
class QueueRow:
    item: ListedItem
    preview: str
    leased_by: str | None
    # Leased as the holder's next item (prefetched), not yet on their screen.
    lined_up: bool = False
    # Who decided it, for items a person decided.
    decided_by: str | None = None


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


def _cursor_for(item: ListedItem, sort: str) -> str:
    if sort == "priority":
        return f"{item.priority}_{item.id}"
    if sort == "confidence":
        return f"{item.ai_confidence!r}_{item.id}"
    if sort == "decided":
        assert item.decided_at is not None  # the sort lists only decided items
        return f"{item.decided_at.isoformat()}_{item.id}"
    return f"{item.created_at.isoformat()}_{item.id}"


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
    limit: int | None = None,
) -> QueuePage:
    """One page of the queue's items under the filters, after the cursor's row; `limit`
    items (PAGE_SIZE unless given)."""
    limit = PAGE_SIZE if limit is None else limit
    after = _parse_cursor(cursor, filters.sort)
    params = _params(queue, filters, now)
    shape = _shape(filters)
    if shape.search and (few := _few_matches(session, shape, params)) is not None:
        # Their page is read among them, by id: no payload is read again.
        shape = shape._replace(search=False, among_ids=True)
        params = {**params, "b_ids": few}
    found = _sorted(session, filters, shape, params, after, limit + 1)
    rows = [_queue_row(row, now) for row in found[:limit]]
    next_cursor = _cursor_for(rows[-1].item, filters.sort) if len(found) > limit else None
    return QueuePage(rows, next_cursor, filters, filters.as_params())


def _few_matches(session: Session, shape: _Shape, params: dict[str, Any]) -> list[int] | None:
    """A search's matches (under all the filters) if they are at most FEW_MATCHES, found
    from the word index (payload_search.index_first); None if there are more, or on SQLite.

    With more, the page's own index walk reads a payload for each item it passes and meets
    a match every N / FEW_MATCHES items or sooner (N: the queue's items): a page reads at
    most 50 N / FEW_MATCHES payloads (25,000 at a million items, 0.45 s on the ninth
    machine; a few hundred for a common word). With fewer, that walk could read every
    payload in the queue (18 s at a million), so they are looked up first (a few ms) and
    their page read among them. Looking costs the word index's read of the word's entries,
    even for a common word: up to 80 ms for one in every item of a million."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    with index_first(session):
        limit = {"b_few": FEW_MATCHES + 1}
        ids = list(session.scalars(_matching_ids_statement(shape), {**params, **limit}))
    return ids if len(ids) <= FEW_MATCHES else None


def _matching(shape: _Shape) -> Select[int]:
    """The ids of the items the filters of this shape match (for counts and lookups)."""
    return select(Item.id).where(*_conditions(shape))


@built_once
def _matching_ids_statement(shape: _Shape) -> Select[int]:
    # No join and no order: nothing but the word index to read first, then those items.
    return _matching(shape).limit(bindparam("b_few", type_=Integer))


def _queue_row(row: Row[*tuple[Any, ...]], now: datetime) -> QueueRow:
    *shown, payload, leased_by_id, lease_expires_at, lease_started_at = row[:-4]
    display_name, email, decider_name, decider_email = row[-4:]
    leased = leased_by_id is not None and lease_expires_at is not None and lease_expires_at >= now
    holder = (display_name or email or "a reviewer") if leased else None
    lined_up = leased and lease_started_at is None
    decider = decider_name or decider_email or None
    return QueueRow(ListedItem(*shown), preview_text(payload), holder, lined_up, decider)


@dataclass(frozen=True)
class QueueCounts:
    needs_review: Count
    in_review: Count  # leased right now: on a reviewer's screen or lined up as their next
    pending: Count
    matching: Count  # under the current filters


def queue_counts(
    session: Session, queue: Queue, filters: QueueFilters, now: datetime
) -> QueueCounts:
    """Live counts for the queue page (polled): exact up to the cap, estimated beyond."""
    # No filter but the status: the status's own count is the matching one.
    status_only = filters.status in _COUNTED_STATUSES and filters.without_sort() == QueueFilters(
        status=filters.status
    )
    params = {**_params(queue, filters, now), "b_now": now}
    if filters.search is not None:
        # The queue's counts as usual; the matching ones from the word index, which names
        # the matches (the count stops at its cap), rather than by reading payloads.
        counts = _counter(None).run(session, params)
        with index_first(session):
            counts |= _matching_counter(_shape(filters)).run(session, params)
    else:
        counts = _counter(None if status_only else _shape(filters)).run(session, params)
    matching = counts[filters.status] if status_only else counts["matching"]
    return QueueCounts(counts["needs_review"], counts["in_review"], counts["pending"], matching)


@built_once
def _matching_counter(shape: _Shape) -> CappedCounts:
    return CappedCounts(matching=_matching(shape))


@built_once
def _counter(matching: _Shape | None) -> CappedCounts:
    """The page's counts in one statement; `matching` is the shape of the filters, or None
    when they filter by nothing but the status."""
    in_queue = select(Item.id).where(Item.queue_id == bindparam("b_queue"))
    needs_review = in_queue.where(Item.status == "needs_review")
    queries = {
        "needs_review": needs_review,
        "in_review": needs_review.where(
            Item.leased_by_id.is_not(None), Item.lease_expires_at >= bindparam("b_now")
        ),
        "pending": in_queue.where(Item.status == "pending"),
    }
    if matching is not None:
        queries["matching"] = _matching(matching)
    return CappedCounts(**queries)
