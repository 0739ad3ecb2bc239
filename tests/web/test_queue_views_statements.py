"""The queue page and its live counts stay a small, fixed number of SQL statements, built
once and bound to each request's values: a queue's page never shows another queue's items
or another filter's, whichever request built the statement first."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event, update

from models import Item, User
from models.base import utcnow
from review.db import db_session
from review.web.queue.count_cache import TtlCache
from tests.conftest import login
from tests.web.test_count_cache import FakeClock, waiting
from tests.web.ui_helpers import add_items, reviewer_in

# The user, the queue with the membership check, the highest priority, its group of items
# (lease holders' names joined in), the next priority down (there is none: the one group
# does not fill the page), and on PostgreSQL the read-only check at the end.
MOST_PAGE_STATEMENTS = 6
# The user, the queue with the membership check, the four counts in one statement, and on
# PostgreSQL the read-only check at the end (no estimate: the counts stay under the cap).
MOST_COUNTS_STATEMENTS = 4


def statements_of(app, client, url: str) -> list[str]:
    statements: list[str] = []

    def record(*args) -> None:  # noqa: ANN002
        statements.append(args[2])

    engine = app.extensions["db"].engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return statements


def listed(html: str) -> list[str]:
    return re.findall(r'<th scope="row" class="mono"><a href="[^"]+">([^<]+)</a></th>', html)


def test_the_page_and_its_counts_take_a_few_statements(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 4)
    login(client, reviewer_in(factory, support).email)
    client.get("/queues/support/review")  # a held lease: its holder's name is on the page
    for url in ("/queues/support", "/queues/support?label=approve&sort=oldest"):
        statements = statements_of(app, client, url)
        assert len(statements) <= MOST_PAGE_STATEMENTS, statements
    for url in ("/queues/support/counts", "/queues/support/counts?label=approve&age=lt1h"):
        statements = statements_of(app, client, url)
        assert len(statements) <= MOST_COUNTS_STATEMENTS, statements


def test_statements_built_once_serve_each_queue_and_filter_on_its_own(app, client, factory):
    support, billing = factory.queue("support"), factory.queue("billing")
    add_items(app, "support", 2, prefix="s-approve")
    add_items(app, "support", 1, prefix="s-reject", label="reject")
    add_items(app, "billing", 1, prefix="b-approve")
    login(client, reviewer_in(factory, support, billing).email)
    for sort in ("", "&sort=oldest", "&sort=newest", "&sort=confidence"):
        assert listed(client.get(f"/queues/support?label=approve{sort}").text) in (
            ["s-approve-1", "s-approve-2"],
            ["s-approve-2", "s-approve-1"],
        )
        assert listed(client.get(f"/queues/support?label=reject{sort}").text) == ["s-reject-1"]
        assert listed(client.get(f"/queues/billing?label=approve{sort}").text) == ["b-approve-1"]
    counts = client.get("/queues/billing/counts?label=reject").text
    assert re.search(r'data-count="needs_review">1<', counts)
    assert re.search(r'data-count="matching">0<', counts)


def test_the_page_names_who_holds_each_live_lease(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 3)
    named = factory.user(email="named@example.com")
    plain = factory.user(email="plain@example.com")
    login(client, reviewer_in(factory, support).email)
    now = utcnow()
    with app.app_context():
        session = db_session()
        session.execute(update(User).where(User.id == named.id).values(display_name="Nadia"))
        leases = {
            "item-1": (named.id, now + timedelta(minutes=5)),
            "item-2": (plain.id, now + timedelta(minutes=5)),
            "item-3": (named.id, now - timedelta(minutes=5)),  # expired: nobody holds it
        }
        for external_id, (user_id, expires) in leases.items():
            session.execute(
                update(Item)
                .where(Item.external_id == external_id)
                .values(leased_by_id=user_id, lease_started_at=now, lease_expires_at=expires)
            )
        session.commit()
    html = client.get("/queues/support").text
    holders = re.findall(r'class="preview">[^<]*</td>\s*<td>([^<]*)</td>', html)
    assert holders == ["Nadia", "plain@example.com", ""]


def test_pages_sorted_differently_share_their_counts(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 3)
    login(client, reviewer_in(factory, support).email)
    clock = FakeClock()
    app.extensions["queue_counts_cache"] = TtlCache(2.0, clock)
    assert waiting(client) == 3
    add_items(app, "support", 2, prefix="more")
    # The sort changes no count, so the oldest-first page's poll reuses the entry.
    oldest = client.get("/queues/support/counts?sort=oldest").text
    assert re.search(r'data-count="needs_review">3<', oldest)
    clock.now += 2.5
    assert waiting(client) == 5
