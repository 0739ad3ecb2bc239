"""Shared fixtures.

Every test that uses `app` runs once on SQLite and, when TEST_DATABASE_URL is set, once
more on PostgreSQL. The schema is built by the real Alembic migrations once per backend.
Tests commit for real (leases and races need real transactions across connections), so
each test ends by deleting every row and flushing its Redis database.

Redis: TEST_REDIS_URL if set (CI points it at a dedicated database number), otherwise a
private embedded redis-server for the session.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from redis import Redis
from sqlalchemy import create_engine, text

import models
from app import create_app
from review.db import db_session
from review.embedded_redis import EmbeddedRedis
from review.services import accounts, members, queues

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["sqlite", "postgresql"]


def alembic_config(url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    return config


def reset_postgres_schema(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("TEST_REDIS_URL"):
        yield url
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A migrated, empty database for the whole session, per backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    else:
        url = os.environ.get("TEST_DATABASE_URL", "")
        if not url:
            pytest.skip("TEST_DATABASE_URL is not set; PostgreSQL run skipped")
        reset_postgres_schema(url)
    command.upgrade(alembic_config(url), "head")
    yield url


def _delete_all_rows(app) -> None:
    engine = app.extensions["db"].engine
    with engine.begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def app(database_url, redis_url):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "RQ_QUEUE_NAME": "workbench-test",
            "LEASE_SECONDS": 300,
            "SWEEP_INTERVAL_SECONDS": 30,
            "SWEEP_PENDING_AFTER_SECONDS": 60,
        }
    )
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    yield app
    _delete_all_rows(app)
    redis.flushdb()
    redis.close()


@pytest.fixture
def make_app():
    """Extra app instances for a test (a second host, another Redis, a broken config).

    Their database pools are closed at the end, pass or fail: an open pool left for the
    garbage collector fails a later, unrelated test with a ResourceWarning.
    """
    made = []

    def make(config):
        extra = create_app(config)
        made.append(extra)
        return extra

    yield make
    for extra in made:
        extra.extensions["db"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    """A session inside an app context; commit it to make rows visible to requests."""
    with app.app_context():
        yield db_session()


class Factory:
    """Builds committed rows for tests."""

    def __init__(self, app) -> None:
        self.app = app
        self._count = 0

    def _next(self) -> int:
        self._count += 1
        return self._count

    def user(self, role: str = "reviewer", email: str | None = None, password: str = "password123"):
        with self.app.app_context():
            session = db_session()
            user = accounts.create_user(
                session, email or f"{role}{self._next()}@example.com", role, password
            )
            session.commit()
            session.refresh(user)
            session.expunge(user)
            return user

    def token(self, user, scopes=None, expires_at=None) -> str:
        """A token for the user; scopes None gives every scope the user's role allows."""
        with self.app.app_context():
            session = db_session()
            user = session.merge(user)
            _, plaintext = accounts.create_token(
                session, user, name="test", scopes=scopes, expires_at=expires_at
            )
            session.commit()
            return plaintext

    def queue(self, slug: str | None = None, **overrides):
        data = {
            "slug": slug or f"queue-{self._next()}",
            "name": "Support tickets",
            "labels": ["approve", "reject", "escalate"],
            "instructions": "Decide whether the ticket can be closed.",
            "reason_codes": ["wrong_label", "missing_context", "policy_exception"],
            "recommender": {"kind": "local"},
        }
        data.update(overrides)
        with self.app.app_context():
            session = db_session()
            queue = queues.create_queue(session, data, None)
            session.commit()
            session.refresh(queue)
            session.expunge(queue)
            return queue

    def member(self, queue, *users) -> None:
        """Assign users to a queue (reviewers only see and work the queues they belong to)."""
        with self.app.app_context():
            session = db_session()
            # get, not merge: merging the detached copy would undo later changes to the rows.
            queue = session.get(models.Queue, queue.id)
            for user in users:
                members.add_member(session, queue, session.get(models.User, user.id), None)
            session.commit()


@pytest.fixture
def factory(app) -> Factory:
    return Factory(app)


CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')


def ids_start_at_one(app) -> None:
    """Make the next row of every table get id 1, as in a new database. The suite's
    PostgreSQL database keeps its sequences going from test to test (SQLite starts again
    at 1 once a table is empty), so a test whose outcome depends on ids (the local model
    holds out items by a hash of theirs) calls this first to be the same on both."""
    engine = app.extensions["db"].engine
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in models.Base.metadata.sorted_tables:
            if "id" in table.c and table.c.id.autoincrement:
                connection.execute(
                    text("SELECT setval(pg_get_serial_sequence(:table, 'id'), 1, false)"),
                    {"table": table.name},
                )


def csrf_from(html: str) -> str:
    match = CSRF_META.search(html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


def login(client, email: str, password: str = "password123"):
    """Log in through the real form, CSRF token included. Returns the response."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token, "login form has no CSRF field"
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
