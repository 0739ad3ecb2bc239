"""How a request's database session ends: writes a view left uncommitted are thrown away,
and a transaction that only read is committed (on PostgreSQL a rollback would also throw
away the connection's prepared statements)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select, update

from models import Queue
from review.db import db_session


def test_writes_a_view_left_uncommitted_are_rolled_back(app, client, factory):
    factory.queue("support", name="Support")

    @app.get("/_test/rename-without-commit")
    def rename_without_commit():  # type: ignore[no-untyped-def]
        db_session().execute(update(Queue).values(name="Renamed"))
        db_session().scalar(select(func.count(Queue.id)))
        return "ok"

    assert client.get("/_test/rename-without-commit").status_code == 200
    with app.app_context():
        assert db_session().scalar(select(Queue.name)) == "Support"


def test_a_request_that_only_read_ends_with_a_commit(app, client, factory):
    if app.extensions["db"].is_sqlite:
        pytest.skip("SQLite keeps its statement cache across rollbacks")
    factory.queue("support")
    engine = app.extensions["db"].engine
    ends: list[str] = []
    statements: list[str] = []
    event.listen(engine, "commit", lambda _conn: ends.append("commit"))
    event.listen(engine, "rollback", lambda _conn: ends.append("rollback"))
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    @app.get("/_test/read")
    def read():  # type: ignore[no-untyped-def]
        return str(db_session().scalar(select(func.count(Queue.id))))

    assert client.get("/_test/read").text == "1"
    assert ends == ["commit"]
    # Nothing but the read itself: no round trip to ask whether the transaction wrote.
    assert len(statements) == 1 and statements[0].startswith("SELECT count")


def test_a_write_inside_a_select_statement_is_still_rolled_back(app, client, factory):
    """A statement that writes need not start with UPDATE: WITH ... UPDATE ... SELECT."""
    if app.extensions["db"].is_sqlite:
        pytest.skip("SQLite has no UPDATE inside WITH")
    factory.queue("support", name="Support")

    @app.get("/_test/rename-in-a-cte")
    def rename_in_a_cte():  # type: ignore[no-untyped-def]
        renamed = update(Queue).values(name="Renamed").returning(Queue.id).cte("renamed")
        db_session().execute(select(renamed.c.id)).all()
        return "ok"

    assert client.get("/_test/rename-in-a-cte").status_code == 200
    with app.app_context():
        assert db_session().scalar(select(Queue.name)) == "Support"
