"""Revision 0016 makes room for sealed webhook secrets; going down opens them again, since
the code before it reads the secret as it is stored."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from review.sealed_secrets import SecretBox, is_sealed
from review.services import queues
from tests.conftest import alembic_config
from tests.test_migrations import scratch_url  # noqa: F401  (fixture: SQLite and PostgreSQL)

SECRET = "whsec-" + "x" * 250  # the longest a secret may be: sealed, it needs 0016's room


def _hooked_queue(url: str, sealed_secret: str) -> None:
    engine = create_engine(url)
    with Session(engine) as session:
        queue = queues.create_queue(
            session,
            {
                "slug": "hooked",
                "name": "Hooked",
                "labels": ["a", "b"],
                "reason_codes": ["wrong_label"],
                "recommender": {"kind": "none"},
            },
            None,
        )
        session.flush()
        session.execute(
            text(
                "INSERT INTO queue_webhooks (queue_id, url, secret, created_at, updated_at)"
                " VALUES (:queue, 'https://hooks.example.com/x', :secret,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"queue": queue.id, "secret": sealed_secret},
        )
        session.commit()
    engine.dispose()


def _stored(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        secret = conn.execute(text("SELECT secret FROM queue_webhooks")).scalar_one()
    engine.dispose()
    return secret


def test_going_down_opens_sealed_secrets_with_the_servers_key(scratch_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SECRET_KEY", "the-servers-key")
    config = alembic_config(scratch_url)
    command.upgrade(config, "0016")
    _hooked_queue(scratch_url, SecretBox("the-servers-key").seal(SECRET))

    command.downgrade(config, "0015")

    assert _stored(scratch_url) == SECRET
    command.upgrade(config, "0016")
    assert _stored(scratch_url) == SECRET  # read as it is, sealed at its next use


def test_a_secret_the_servers_key_cannot_open_stops_the_downgrade(scratch_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SECRET_KEY", "the-servers-key")
    config = alembic_config(scratch_url)
    command.upgrade(config, "0016")
    _hooked_queue(scratch_url, SecretBox("some-other-key").seal(SECRET))

    with pytest.raises(RuntimeError, match="queue 1 is sealed under another SECRET_KEY"):
        command.downgrade(config, "0015")

    assert is_sealed(_stored(scratch_url))  # nothing was lost
