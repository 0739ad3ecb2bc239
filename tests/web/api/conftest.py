"""Fixtures for the API tests: bearer-token headers per role, and reads of the database."""

from __future__ import annotations

from typing import Any

import pytest

from review.db import db_session


class RoleTokens:
    """`as_role("reviewer")` is an Authorization header for a reviewer, made on first use."""

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
        return self._headers[role]


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
