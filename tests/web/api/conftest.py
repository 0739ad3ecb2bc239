"""Fixtures for the API tests: bearer-token headers per role, and reads of the database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from models import Queue, QueueMember, User
from review.db import db_session
from review.services import members


class RoleTokens:
    """`as_role("reviewer")` is an Authorization header for a reviewer, made on first use,
    with every scope the role allows.

    Its reviewer and policy owner are members of every queue that exists when the header
    is asked for (API access is per queue); `as_role.outsider(role)` is a user of that role
    who belongs to no queue.
    """

    def __init__(self, factory) -> None:
        self.factory = factory
        self._users: dict[str, Any] = {}
        self._headers: dict[str, dict[str, str]] = {}

    def user(self, role: str):
        if role not in self._users:
            self._users[role] = self.factory.user(role)
        return self._users[role]

    def __call__(self, role: str = "admin") -> dict[str, str]:
        if role not in self._headers:
            token = self.factory.token(self.user(role))
            self._headers[role] = {"Authorization": f"Bearer {token}"}
        if role in ("reviewer", "policy_owner"):
            self._join_every_queue(self.user(role))
        return self._headers[role]

    def outsider(self, role: str) -> dict[str, str]:
        """A header for a user of this role who is a member of no queue."""
        key = f"outsider:{role}"
        if key not in self._headers:
            token = self.factory.token(self.factory.user(role))
            self._headers[key] = {"Authorization": f"Bearer {token}"}
        return self._headers[key]

    def _join_every_queue(self, user) -> None:
        with self.factory.app.app_context():
            session = db_session()
            joined = select(QueueMember.queue_id).where(QueueMember.user_id == user.id)
            for queue in session.scalars(select(Queue).where(Queue.id.not_in(joined))):
                members.add_member(session, queue, session.get(User, user.id), None)
            session.commit()


@pytest.fixture
def as_role(factory) -> RoleTokens:
    return RoleTokens(factory)


@pytest.fixture
def in_db(app):
    """Run `fn(session)` in a fresh app context, so it sees exactly what requests committed.

    (The shared `session` fixture keeps an app context open, which requests would then reuse.)
    """

    def run(fn):
        with app.app_context():
            session = db_session()
            result = fn(session)
            session.commit()
            return result

    return run
