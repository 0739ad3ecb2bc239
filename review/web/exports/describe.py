"""Template filters that put a snapshot's stored filters and times into words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from review.web.exports import bp

# The same words as the choices on the new-snapshot form, so a snapshot reads back as it was asked.
SCOPE_NAMES = {
    "overrides": "Overrides only",
    "human": "All human decisions",
    "audited": "All human decisions and audited auto-approvals",
}


@bp.app_template_filter("utc_minute")
def utc_minute(value: str | datetime | None) -> str:
    """'2026-11-20 13:03 UTC' from an ISO string or a datetime; '—' for none. The datasheet
    keeps microseconds for machines; people need the minute."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@bp.app_template_filter("scope_name")
def scope_name(scope: str) -> str:
    return SCOPE_NAMES.get(scope, scope)


@bp.app_template_filter("snapshot_filters")
def snapshot_filters(filters: dict[str, Any]) -> str:
    """One line: which decisions, which final labels, which decision times."""
    labels = filters.get("labels") or []
    parts = [
        scope_name(filters.get("scope", "")),
        "final label " + ", ".join(labels) if labels else "every final label",
    ]
    start, end = filters.get("decided_from"), filters.get("decided_to")
    if start and end:
        parts.append(f"decided from {utc_minute(start)} to before {utc_minute(end)}")
    elif start:
        parts.append(f"decided from {utc_minute(start)}")
    elif end:
        parts.append(f"decided before {utc_minute(end)}")
    else:
        parts.append("any decision time")
    return "; ".join(parts)
