"""Which queues and items the token's user may reach over the API.

Reviewers and policy owners reach the queues they are members of; admins and ML users
reach every queue (services/members.py). A queue the user is not a member of answers 403
(its slug is the user's own input); an item in such a queue answers 404, exactly as an
item that does not exist, so guessing ids teaches nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models import Item, Queue
from review.services import members, queues
from review.services.errors import Forbidden, NotFound
from review.web.api.auth import current_api_user


def member_queue(session: Session, slug: str) -> Queue:
    """The queue in the URL: 404 if there is none, 403 unless the caller may work on it."""
    if not queues.SLUG_RE.match(slug):
        raise NotFound(f"no queue {slug[:64]!r}", {"slug": "no such queue"})
    queue = queues.get_queue(session, slug)
    if not members.is_member(session, queue, current_api_user()):
        raise Forbidden(f"you are not a member of queue {slug}", {"slug": "not your queue"})
    return queue


def visible_item_id(session: Session, item_id: int) -> int:
    """The item id, if the item exists in a queue the caller may work on; 404 otherwise."""
    item = session.get(Item, item_id)
    if item is None or not members.is_member(session, item.queue, current_api_user()):
        raise NotFound(f"no item {item_id}", {"item_id": "no such item"})
    return item.id
