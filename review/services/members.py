"""Who works on which queue.

Reviewers and policy owners see only the queues they are members of; admins and the ML
team see every queue (the ML team exports across queues).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, exists, select
from sqlalchemy.orm import Session

from models import Item, Queue, QueueMember, User
from review.services import audit, webhook_outbox
from review.services.errors import ValidationFailed
from review.services.statements import built_once

SEES_ALL_QUEUES = ("admin", "ml")


def _membership(queue_id: Any, user_id: Any) -> ColumnElement[bool]:
    """SQL: the user `user_id` is a member of the queue `queue_id` (each a value or a SQL
    expression: Queue.id, a bound parameter)."""
    return exists().where(QueueMember.queue_id == queue_id, QueueMember.user_id == user_id)


def member_queue(session: Session, slug: str, user: User) -> Queue | None:
    """The queue with this slug if the user may work on it, in one query (every reviewer
    request starts here); None if there is no such queue or the user is not a member."""
    return session.scalar(
        _member_queue_statement(user.role in SEES_ALL_QUEUES),
        {"b_slug": slug, "b_user": user.id},
    )


@built_once
def _member_queue_statement(sees_all: bool) -> Select[Queue]:
    # Built once: on every reviewer request, building the statement cost more CPU than
    # running it.
    query = select(Queue).where(Queue.slug == bindparam("b_slug"))
    if not sees_all:
        query = query.where(_membership(Queue.id, bindparam("b_user")))
    return query


def member_queue_item(
    session: Session, slug: str, item_id: int, user: User
) -> tuple[Queue, Item | None] | None:
    """Like member_queue, with the queue's item `item_id` (None if the queue has no such
    item), in the same one query: every action on an item starts here."""
    row = session.execute(
        _member_queue_item_statement(user.role in SEES_ALL_QUEUES),
        {"b_slug": slug, "b_user": user.id, "b_item": item_id},
    ).first()
    if row is None:
        return None
    queue, item, has_webhook = row
    # A decision asks next whether its queue has a webhook: answered here, in passing.
    webhook_outbox.remember_configuration(session, queue.id, bool(has_webhook))
    return queue, item


@built_once
def _member_queue_item_statement(sees_all: bool) -> Select[Queue, Item, bool]:
    in_queue = and_(Item.id == bindparam("b_item"), Item.queue_id == Queue.id)
    return (
        _member_queue_statement(sees_all)
        .add_columns(Item, webhook_outbox.configured_sql(Queue.id))
        .outerjoin(Item, in_queue)
    )


def is_member(session: Session, queue: Queue, user: User) -> bool:
    """True if the user may work on this queue (admins and ML users may see every queue)."""
    if user.role in SEES_ALL_QUEUES:
        return True
    return bool(session.scalar(select(_membership(queue.id, user.id))))


def queues_for_user(session: Session, user: User) -> list[Queue]:
    """The queues this user may see, by name."""
    query = select(Queue).order_by(Queue.name)
    if user.role not in SEES_ALL_QUEUES:
        query = query.join(QueueMember, QueueMember.queue_id == Queue.id).where(
            QueueMember.user_id == user.id
        )
    return list(session.scalars(query))


def member_ids(session: Session, queue: Queue) -> set[int]:
    return set(session.scalars(select(QueueMember.user_id).where(QueueMember.queue_id == queue.id)))


def set_members(
    session: Session, queue: Queue, user_ids: Iterable[int], actor: User | None
) -> tuple[set[int], set[int]]:
    """Make exactly these users the queue's members. Returns (added ids, removed ids)."""
    wanted = set(user_ids)
    known = set(session.scalars(select(User.id).where(User.id.in_(wanted)))) if wanted else set()
    if unknown := wanted - known:
        raise ValidationFailed("unknown users", {"members": f"no users with ids {sorted(unknown)}"})
    current = member_ids(session, queue)
    added, removed = wanted - current, current - wanted
    for user_id in sorted(added):
        session.add(QueueMember(queue_id=queue.id, user_id=user_id))
    if removed:
        session.execute(
            delete(QueueMember).where(
                QueueMember.queue_id == queue.id, QueueMember.user_id.in_(removed)
            )
        )
    if added or removed:
        audit.record(
            session,
            "queue.members_changed",
            user=actor,
            queue_id=queue.id,
            added=sorted(added),
            removed=sorted(removed),
        )
    return added, removed


def add_member(session: Session, queue: Queue, user: User, actor: User | None) -> bool:
    """Add one member; False if they already were one."""
    added, _ = set_members(session, queue, member_ids(session, queue) | {user.id}, actor)
    return bool(added)
