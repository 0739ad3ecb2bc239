"""Engine and session setup, and the per-request session for the web app.

Services take a Session and never commit; a view or a job owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPICursor, ExecutionContext
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from review.services.payload_search import register_sqlite_function


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend: SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(
            dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
        ) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            register_sqlite_function(dbapi_connection)  # payload search (services/payload_search)

        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    _note_possible_writes(engine)
    return engine


# Statements that cannot write: a transaction that ran nothing else may simply be committed.
_READ_ONLY_STATEMENTS = ("SELECT", "EXPLAIN", "SHOW")
_MAY_HAVE_WRITTEN = "may_have_written"


def _note_possible_writes(engine: Engine) -> None:
    """Mark a connection's transaction once it runs a statement that may write (anything
    but a plain SELECT, EXPLAIN or SHOW: a WITH ... UPDATE, a SET, a text() statement),
    until it commits or rolls back. end_read_only_transaction reads the mark instead of
    asking PostgreSQL, a round trip at the end of every read-only request."""

    @event.listens_for(engine, "before_cursor_execute")
    def _note(
        conn: Connection,
        _cursor: DBAPICursor,
        statement: str,
        _parameters: object,
        _context: ExecutionContext | None,
        _executemany: bool,
    ) -> None:
        if not statement.lstrip()[:7].upper().startswith(_READ_ONLY_STATEMENTS):
            conn.info[_MAY_HAVE_WRITTEN] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _clear(conn: Connection) -> None:
        conn.info.pop(_MAY_HAVE_WRITTEN, None)


class Database:
    """Holds the engine and session factory for one app (or one worker process)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for a job or command: commits if the block succeeds, rolls back if not."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def init_app(app: Flask) -> Database:
    database = Database(app.config["DATABASE_URL"])
    app.extensions["db"] = database

    @app.teardown_appcontext
    def _close_request_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            if _exc is None:
                end_read_only_transaction(session)
            session.close()

    return database


def end_read_only_transaction(session: Session) -> None:
    """Commit the session's transaction if it has written nothing, on PostgreSQL.

    Most requests end with a transaction their reads opened after the view committed; closing
    the session would roll it back, and psycopg forgets every prepared statement of the
    connection on a ROLLBACK. Pooled connections then never kept a prepared statement, and
    PostgreSQL parsed and planned every query of every request afresh. A transaction that
    holds no transaction id has written nothing, so committing it changes nothing but
    keeps the statements; one that did write (a view that neither committed nor rolled
    back) is still rolled back by close().
    """
    if not session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return
    try:
        # Only reads since the transaction began (see _note_possible_writes): nothing to
        # ask. Otherwise PostgreSQL knows: a transaction id is assigned at the first write.
        if session.connection().info.get(_MAY_HAVE_WRITTEN):
            wrote = session.execute(text("SELECT pg_current_xact_id_if_assigned()")).scalar()
        else:
            wrote = None
        if wrote is None:
            session.commit()
    except Exception:  # noqa: BLE001 - a broken connection: close() rolls back and discards it
        return


def get_database() -> Database:
    return cast(Database, current_app.extensions["db"])


def db_session() -> Session:
    """The session of the current request or app context, opened on first use."""
    if "db_session" not in g:
        g.db_session = get_database().session_factory()
    return cast(Session, g.db_session)
