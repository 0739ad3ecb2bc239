"""Who may open which queue: members only (admins see every queue)."""

from __future__ import annotations

from flask import abort

from models import Item, Queue, User
from review.db import db_session
from review.services import members
from review.web.security import logged_in_user


def current() -> User:
    return logged_in_user()  # the User row, not Flask-Login's proxy


def member_queue_or_404(slug: str) -> Queue:
    """The queue, if the current user is assigned to it; a 404 otherwise, so a reviewer
    cannot even learn that a queue they are not assigned to exists."""
    queue = members.member_queue(db_session(), slug, current())
    if queue is None:
        abort(404)
    return queue


def queue_and_item_or_404(slug: str, item_id: int) -> tuple[Queue, Item]:
    """The queue (as member_queue_or_404) and its item `item_id`, in one query; a 404 if
    either is not there for this user."""
    found = members.member_queue_item(db_session(), slug, item_id, current())
    if found is None or found[1] is None:
        abort(404)
    return found[0], found[1]
