"""Revision 0012 gives tokens made before scopes existed every scope their role allows."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import create_engine, text

from review.services import accounts
from tests.conftest import alembic_config
from tests.test_migrations import scratch_url  # noqa: F401  (fixture: SQLite and PostgreSQL)


def test_existing_tokens_keep_working_with_their_roles_scopes(scratch_url):  # noqa: F811
    config = alembic_config(scratch_url)
    command.upgrade(config, "0011")
    engine = create_engine(scratch_url)
    with engine.begin() as conn:
        for n, role in enumerate(accounts.ROLE_SCOPES, start=1):
            conn.execute(
                text(
                    "INSERT INTO users (id, email, display_name, password_hash, role, is_active,"
                    " created_at) VALUES (:id, :email, '', 'x', :role, true, CURRENT_TIMESTAMP)"
                ),
                {"id": n, "email": f"{role}@example.com", "role": role},
            )
            conn.execute(
                text(
                    "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at)"
                    " VALUES (:id, '', :prefix, :hash, CURRENT_TIMESTAMP)"
                ),
                {"id": n, "prefix": f"rwb_{n:06d}", "hash": f"{n:064d}"},
            )
    command.upgrade(config, "0012")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT u.role, t.scopes FROM api_tokens t JOIN users u ON u.id = t.user_id")
        ).all()
    engine.dispose()
    found = {role: json.loads(s) if isinstance(s, str) else s for role, s in rows}
    assert found == {role: list(scopes) for role, scopes in accounts.ROLE_SCOPES.items()}
    command.downgrade(config, "0011")
