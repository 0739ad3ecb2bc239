"""The Alembic history builds exactly the schema the models describe, and unbuilds it.

Runs on a scratch database per backend so it never disturbs the suite's own database.
"""

import os

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

import models
from tests.conftest import alembic_config


def _scratch_postgres_url() -> str:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL is not set; PostgreSQL run skipped")
    url = make_url(base)
    scratch = url.set(database=f"{url.database}_migrations")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}"'))
        conn.execute(text(f'CREATE DATABASE "{scratch.database}"'))
    admin.dispose()
    return scratch.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    return _scratch_postgres_url()


# SQLite cannot reflect expression indexes; this one exists on PostgreSQL only (ddl_if),
# where the comparison does check it.
@pytest.mark.filterwarnings(
    "ignore:autogenerate skipping metadata-specified expression-based index "
    "'ix_items_payload_words'; dialect 'sqlite':UserWarning"
)
def test_upgrade_matches_models_and_downgrade_removes_everything(scratch_url):
    config = alembic_config(scratch_url)
    command.upgrade(config, "head")

    engine = create_engine(scratch_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"

    command.downgrade(config, "base")
    remaining = set(inspect(engine).get_table_names()) - {"alembic_version"}
    assert remaining == set()

    # And back up again: a downgrade must leave the database upgradeable.
    command.upgrade(config, "head")
    assert set(models.Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_history_is_one_line():
    """`alembic upgrade head` (README, dev.py, production) needs exactly one head."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}; chain the new migration"
