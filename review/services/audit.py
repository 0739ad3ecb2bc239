"""Writing to the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models import AuditEvent, User


def actor_label(user: User | None, token_prefix: str | None = None) -> str:
    if user is None:
        return "system"
    if token_prefix:
        return f"token:{token_prefix}:{user.email}"
    return f"user:{user.email}"


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
    """Append one event. `actor` defaults to the user's label, or "system" without a user."""
    event = AuditEvent(
        action=action,
        actor_user_id=user.id if user else None,
        actor=actor or actor_label(user),
        queue_id=queue_id,
        item_id=item_id,
        details=details,
    )
    session.add(event)
    return event
