"""Which queue a policy page is about, and whether the user may tune it."""

from __future__ import annotations

from flask import abort, current_app

from models import Queue, User
from review.db import db_session
from review.services import members, queues
from review.services.errors import NotFound
from review.web.security import logged_in_user


def user() -> User:
    return logged_in_user()  # the User row, not Flask-Login's proxy


def owned_queue(slug: str) -> Queue:
    """The queue in the URL: 404 if there is none, 403 unless the user is a member (or admin)."""
    session = db_session()
    try:
        queue = queues.get_queue(session, slug)
    except NotFound:
        abort(404)
    if not members.is_member(session, queue, user()):
        abort(403)
    return queue


def max_stale_seconds() -> float:
    """How old cached evidence may be before a what-if rebuilds it (see policy_stats)."""
    return float(current_app.config.get("POLICY_STATS_MAX_STALE_SECONDS", 60))
