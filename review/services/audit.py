"""Writing to the audit log.

Writers only insert; the hash chain is added after commit by the sealer
(review/services/audit_chain.py), so recording an event never waits on other writers.

An API request names its token on the session (acting_as_token), so the events its user
causes say which token acted: a leaked token's doings can be told from its owner's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, insert
from sqlalchemy.orm import Session

from models import AuditEvent, User
from review.services.statements import built_once

ACTING_TOKEN_KEY = "audit_acting_token"


@dataclass(frozen=True)
class ActingToken:
    """The API token a session's work is done with."""

    id: int
    prefix: str
    user_id: int


@contextmanager
def acting_as_token(session: Session, token: ActingToken) -> Iterator[None]:
    """Within the block, events the token's user records on `session` name the token.

    The mark is removed afterwards: a session (or a test's shared one) may serve other
    requests later, and those must not inherit it.
    """
    session.info[ACTING_TOKEN_KEY] = token
    try:
        yield
    finally:
        session.info.pop(ACTING_TOKEN_KEY, None)


def _acting_token(session: Session, user: User | None) -> ActingToken | None:
    """The session's token if `user` is its owner; system events stay "system"."""
    token: ActingToken | None = session.info.get(ACTING_TOKEN_KEY)
    if token is None or user is None or user.id != token.user_id:
        return None
    return token


def actor_label(user: User | None, token_prefix: str | None = None) -> str:
    if user is None:
        return "system"
    if token_prefix:
        return f"token:{token_prefix}:{user.email}"
    return f"user:{user.email}"


def _json_safe(value: Any) -> Any:
    """Details as strict JSON: PostgreSQL's json type refuses NaN and infinities."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(inner) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(inner) for inner in value]
    return value


def _event_values(
    session: Session,
    action: str,
    user: User | None,
    actor: str | None,
    queue_id: int | None,
    item_id: int | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    """The columns of one event (see record)."""
    token = _acting_token(session, user)
    if token is not None:
        details = {**details, "token_id": token.id, "token_prefix": token.prefix}
    return {
        "action": action,
        "actor_user_id": user.id if user else None,
        "actor": actor or actor_label(user, token.prefix if token else None),
        "queue_id": queue_id,
        "item_id": item_id,
        "details": _json_safe(details),
    }


def record(
    session: Session,
    action: str,
    *,
    user: User | None = None,
    actor: str | None = None,
    queue_id: int | None = None,
    item_id: int | None = None,
    **details: Any,
) -> AuditEvent:
    """Append one event. `actor` defaults to the user's label, or "system" without a user.

    When the session acts for an API token of `user`, the label names the token and the
    details carry its id and prefix.
    """
    event = AuditEvent(**_event_values(session, action, user, actor, queue_id, item_id, details))
    session.add(event)
    return event


@built_once
def _insert_statement() -> Insert:
    return insert(AuditEvent.__table__)


def record_now(
    session: Session,
    action: str,
    *,
    user: User | None = None,
    queue_id: int | None = None,
    item_id: int | None = None,
    **details: Any,
) -> None:
    """record, written at once with a plain INSERT rather than at the next flush: for the
    review loop, where the flush of one new object cost 0.3 ms more CPU than the statement.
    The queue and item must exist in the database already (their ids are known)."""
    values = _event_values(session, action, user, None, queue_id, item_id, details)
    session.execute(_insert_statement(), values)
