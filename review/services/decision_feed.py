"""A queue's final decisions, oldest first, page by page: for systems that poll for what
was decided (one behind a firewall that cannot take webhooks, or one catching up after an
outage) instead of, or besides, receiving the queue's webhook.

A consumer keeps the cursor of its last page and asks again with it; it gets each decision
once, in the order the decisions were made, by the policy (auto-approvals) or by a person.
A decision is listed only once it is SETTLE_SECONDS old:
- a person's decision can be undone for UNDO_SECONDS; after that it is final, as the
  webhook waits for it to be (review_actions.undo refuses later);
- decisions are ordered by their decision time, which is taken when the transaction that
  makes them starts. One that commits later than a newer one could otherwise appear
  behind a cursor a consumer has already passed. A minute is far beyond how long such a
  transaction runs (a decision's takes milliseconds; an import's batch, seconds).

Each status is read by its own walk of ix_items_queue_decided, (queue, status, decided_at,
id), and the two walks are merged: one page costs two index range reads however large
the queue.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, bindparam, select, tuple_
from sqlalchemy.orm import Session

from models import Item, Queue, Recommendation, Review
from review.domain.datasets import reviewer_pseudonym
from review.services.errors import ValidationFailed
from review.services.queue_views import DECIDED_STATUSES
from review.services.review_actions import UNDO_SECONDS
from review.services.routing import latest_policy_version
from review.services.statements import built_once

SETTLE_SECONDS = 60
assert SETTLE_SECONDS > UNDO_SECONDS  # a listed decision can no longer be undone
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class FeedPage:
    decisions: list[dict[str, Any]]
    # Where to continue from: the last listed decision's cursor, or the one asked with
    # when nothing new has settled (None only before the first decision).
    cursor: str | None
    # More settled decisions wait beyond this page: ask again at once.
    has_more: bool
    # Decisions made before this time are settled (listed, or listed on a later page).
    settled_before: datetime


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"([0-9]{1,20})-([0-9]{1,19})")


def _cursor_error() -> ValidationFailed:
    return ValidationFailed(
        "invalid cursor", {"after": "must be a cursor this endpoint returned for this queue"}
    )


def parse_cursor(raw: str | None) -> tuple[datetime, int] | None:
    """A cursor is "<decision time in µs since 1970>-<item id>" of a listed decision:
    digits and a dash, so that it goes into a URL as it is (an ISO time's "+" arrived as a
    space when a caller pasted it in unencoded). Exact to the microsecond, as stored."""
    if not raw:
        return None
    match = _CURSOR.fullmatch(raw)
    if match is None:
        raise _cursor_error()
    try:
        decided_at = _EPOCH + timedelta(microseconds=int(match.group(1)))
    except OverflowError:
        raise _cursor_error() from None
    return decided_at, int(match.group(2))


def _cursor_of(decided_at: datetime, item_id: int) -> str:
    micros = (decided_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{item_id}"


def _check_cursor(session: Session, queue: Queue, after: tuple[datetime, int]) -> None:
    """A cursor names a decision the feed listed: an item of this queue, decided then. A
    listed decision is final (its undo window had closed), so it stays so; anything else
    is a cursor made up or taken from another queue, which would otherwise page on quietly
    from wherever it points, or wait for ever."""
    decided_at, item_id = after
    found = session.scalar(
        select(Item.id).where(
            Item.id == item_id,
            Item.queue_id == queue.id,
            Item.status.in_(DECIDED_STATUSES),
            Item.decided_at == decided_at,
        )
    )
    if found is None:
        raise _cursor_error()


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValidationFailed(
            "invalid limit", {"limit": f"must be a whole number from 1 to {MAX_LIMIT}"}
        )
    return int(raw)


@built_once
def _page_statement(after: bool) -> Select[*tuple[Any, ...]]:
    """One status's settled decisions after the cursor, oldest first, with what a
    consumer needs to act on them (the policy version of the item's latest routing)."""
    policy_version = latest_policy_version().label("policy_version")
    query = (
        select(
            Item.id,
            Item.external_id,
            Item.status,
            Item.final_label,
            Item.decided_at,
            Recommendation.label.label("ai_label"),
            Recommendation.confidence.label("ai_confidence"),
            Recommendation.model.label("ai_model"),
            Review.action,
            Review.reviewer_id,
            Review.reason_code,
            policy_version,
        )
        .outerjoin(Recommendation, Recommendation.item_id == Item.id)
        .outerjoin(Review, Review.item_id == Item.id)
        .where(
            Item.queue_id == bindparam("b_queue"),
            Item.status == bindparam("b_status"),
            Item.decided_at.is_not(None),
            Item.decided_at < bindparam("b_settled"),
        )
        .order_by(Item.decided_at, Item.id)
        .limit(bindparam("b_limit", type_=Integer))
    )
    if after:
        cursor = tuple_(
            bindparam("b_after_time", type_=Item.decided_at.type), bindparam("b_after_id")
        )
        query = query.where(tuple_(Item.decided_at, Item.id) > cursor)
    return query


def decisions_page(
    session: Session,
    queue: Queue,
    cursor: str | None,
    limit: int,
    now: datetime,
    pseudonym_secret: str,
) -> FeedPage:
    """The queue's settled decisions after `cursor` (from the first without one), at most
    `limit`. Raises ValidationFailed for a cursor this endpoint did not make."""
    after = parse_cursor(cursor)
    if after is not None:
        _check_cursor(session, queue, after)
    settled = now - timedelta(seconds=SETTLE_SECONDS)
    params: dict[str, Any] = {"b_queue": queue.id, "b_settled": settled, "b_limit": limit + 1}
    if after is not None:
        params["b_after_time"], params["b_after_id"] = after
    statement = _page_statement(after is not None)
    walks = [
        list(session.execute(statement, {**params, "b_status": status}))
        for status in DECIDED_STATUSES
    ]
    rows = list(heapq.merge(*walks, key=lambda row: (row.decided_at, row.id)))
    shown = rows[:limit]
    decisions = [_as_dict(row, queue, pseudonym_secret) for row in shown]
    last = _cursor_of(shown[-1].decided_at, shown[-1].id) if shown else cursor or None
    return FeedPage(decisions, last, len(rows) > limit, settled)


def _as_dict(row: Any, queue: Queue, pseudonym_secret: str) -> dict[str, Any]:
    """A decision as the webhook's body carries it (the same names and meanings), with
    the cursor that points at it."""
    by_policy = row.status == "auto_approved"
    return {
        "cursor": _cursor_of(row.decided_at, row.id),
        "queue": queue.slug,
        "item_id": row.id,
        "external_id": row.external_id,
        "final_label": row.final_label,
        "action": "auto_approved" if by_policy else row.action,
        "decided_by": "policy" if by_policy else "reviewer",
        # Pseudonymous, as in webhooks and datasets: never a name or an email.
        "reviewer_id": (
            reviewer_pseudonym(pseudonym_secret, row.reviewer_id)
            if row.reviewer_id is not None and not by_policy
            else None
        ),
        "reason_code": None if by_policy else row.reason_code,
        "ai_label": row.ai_label,
        "ai_confidence": row.ai_confidence,
        "ai_model": row.ai_model,
        "policy_version": row.policy_version,
        "decided_at": row.decided_at.isoformat(),
    }
