"""Helpers the admin views share: the acting user, lookups that 404, form parsing."""

from __future__ import annotations

import re

from flask import abort
from werkzeug.datastructures import MultiDict

from models import Queue, User
from review.db import db_session
from review.services import queues
from review.services.errors import NotFound
from review.web.security import logged_in_user


def acting_user() -> User:
    """The logged-in User row (not Flask-Login's proxy), for audit records."""
    return logged_in_user()


def queue_or_404(slug: str) -> Queue:
    if not queues.SLUG_RE.match(slug):
        abort(404)
    try:
        return queues.get_queue(db_session(), slug)
    except NotFound:
        abort(404)


def lines(text: str | None) -> list[str]:
    """Non-empty lines of a textarea, trimmed."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def names(text: str | None) -> list[str]:
    """Names separated by commas or line breaks."""
    return [part.strip() for part in re.split(r"[,\n]", text or "") if part.strip()]


def queue_form_data(form: MultiDict[str, str]) -> dict[str, object]:
    """A queue form's fields in the shape the queue services validate."""
    return {
        "slug": (form.get("slug") or "").strip(),
        "name": form.get("name") or "",
        "labels": lines(form.get("labels")),
        "reason_codes": lines(form.get("reason_codes")),
        "instructions": (form.get("instructions") or "").replace("\r\n", "\n"),
        "recommender": {
            "kind": form.get("recommender_kind") or "local",
            "model": (form.get("recommender_model") or "").strip() or None,
        },
        "display_fields": names(form.get("display_fields")),
        "escalation_queue": form.get("escalation_queue") or None,
        "members": [int(v) for v in form.getlist("members") if v.isdigit()],
    }
