"""The people page lists each person's live API tokens, counts the ended ones, and reads
every listed user's tokens in one query."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event

from models import ApiToken, User
from models.base import utcnow
from review.db import db_session
from review.services import accounts


def make_token(app, user, name: str = "ci", **kwargs):
    with app.app_context():
        session = db_session()
        token, _ = accounts.create_token(session, session.get(User, user.id), name=name, **kwargs)
        session.commit()
        session.expunge(token)
        return token


def revoke(app, token, admin) -> None:
    with app.app_context():
        session = db_session()
        accounts.revoke_token(session, token.id, session.get(User, admin.id))
        session.commit()


def user_row(html: str, email: str) -> str:
    match = re.search(rf'<tr data-user="{re.escape(email)}".*?</tr>', html, re.S)
    assert match, f"no row for {email}"
    return match.group(0)


def test_the_people_page_lists_live_tokens_and_counts_ended_ones(app, client, factory, admin):
    rita = factory.user("reviewer", email="rita@example.com")
    live = make_token(app, rita, name="<b>ci</b>", scopes=["read"])
    revoked = make_token(app, rita, name="old")
    expired = make_token(app, rita, name="stale", expires_at=utcnow() + timedelta(seconds=1))
    revoke(app, revoked, admin)
    with app.app_context():  # expired without waiting: move its expiry into the past
        session = db_session()
        row = session.get(ApiToken, expired.id)
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.commit()

    page = client.get("/admin/people/")

    assert page.status_code == 200
    row = user_row(page.text, "rita@example.com")
    assert f'data-token="{live.prefix}"' in row
    assert "&lt;b&gt;ci&lt;/b&gt;" in row and "<b>ci</b>" not in row
    assert "read;" in row and "last used never" in row
    assert revoked.prefix not in row and expired.prefix not in row
    assert "2 revoked or expired" in row
    assert 'href="/admin/tokens/"' in row
    assert "none" in user_row(page.text, "admin@example.com")


def test_the_people_page_reads_all_tokens_in_one_query(app, client, factory, admin):
    for n in range(4):
        make_token(app, factory.user("reviewer", email=f"r{n}@example.com"))
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine = app.extensions["db"].engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        page = client.get("/admin/people/")
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert page.status_code == 200
    assert page.text.count("data-token=") == 4
    token_reads = [s for s in statements if re.search(r"FROM api_tokens\b", s)]
    assert len(token_reads) == 1, token_reads
