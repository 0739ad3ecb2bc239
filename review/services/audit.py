"""Writing to the audit log.

Writers only insert; the hash chain is added after commit by the sealer
(review/services/audit_chain.py), so recording an event never waits on other writers.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from models import AuditEvent, User


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
        details=_json_safe(details),
    )
    session.add(event)
    return event
