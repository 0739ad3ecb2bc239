"""Who may open which queue: members only (admins see every queue)."""

from __future__ import annotations

from flask import abort
from flask_login import current_user

from models import Item, Queue, User
from review.db import db_session
from review.services import members


def current() -> User:
    return current_user._get_current_object()  # the User row, not Flask-Login's proxy


def member_queue_or_404(slug: str) -> Queue:
    """The queue, if the current user is assigned to it; a 404 otherwise, so a reviewer
    cannot even learn that a queue they are not assigned to exists."""
    queue = members.member_queue(db_session(), slug, current())
    if queue is None:
        abort(404)
    return queue


def item_in_queue_or_404(queue: Queue, item_id: int) -> Item:
    item = db_session().get(Item, item_id)
    if item is None or item.queue_id != queue.id:
        abort(404)
    return item
