"""The decision round trip stays a fixed, small number of SQL statements, whatever the
item's story: each statement is a round trip a reviewer waits for, sixteen reviewers at
once (bench/review.py measures the time; this guards the count, which does not wobble)."""

from __future__ import annotations

from sqlalchemy import event

from tests.conftest import login
from tests.web.test_review_workbench import open_review, post
from tests.web.ui_helpers import add_items, idempotency_key, reviewer_in, shown_item

# Statements of one decision with the next item shown and another prefetched: the user,
# the queue with the membership check, the item and whether the queue has a webhook, the
# decision's update (which also checks the idempotency key) and its three rows (review,
# event, audit), the held leases with their recommendations, the shown item's lease start,
# the top priorities, the prefetch claim with the prefetched item's recommendation, and
# the shown item's history (routings and events in one): eleven. SQLite cannot claim and
# join in one statement (no UPDATE in a WITH clause), so there the recommendation is a
# twelfth.
MOST_STATEMENTS = {"postgresql": 11, "sqlite": 12}


def test_a_decision_with_the_next_item_takes_at_most_eleven_statements(app, client, factory):
    support = factory.queue("support")
    add_items(app, "support", 6)  # recommended and routed: each has a routing record
    login(client, reviewer_in(factory, support).email)
    html, token = open_review(client, "support")
    statements: list[str] = []
    engine = app.extensions["db"].engine
    most = MOST_STATEMENTS[engine.dialect.name]
    event.listen(
        engine, "before_cursor_execute", lambda *args: statements.append(args[2].split()[0])
    )
    for _ in range(3):
        item_id, external_id = shown_item(html)
        statements.clear()
        key = idempotency_key(html)
        answer = post(
            client,
            f"/queues/support/items/{item_id}/decision",
            token,
            action="approve",
            idempotency_key=key,
        )
        assert f"Saved {external_id}" in answer.text
        assert len(statements) <= most, statements
        html = answer.text
