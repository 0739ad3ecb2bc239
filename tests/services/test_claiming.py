"""Claiming the next item while other reviewers are claiming at the same instant."""

import pytest
from sqlalchemy import create_engine, text, update

from models import Item
from review.db import db_session
from tests.services.test_reviewing import add_items, claim


def test_a_top_item_being_claimed_by_someone_else_does_not_empty_the_queue(app, factory):
    """Another reviewer's claim in flight holds the row lock on the only top-priority item:
    the next reviewer gets the best of the rest instead of an empty screen."""
    queue = factory.queue()
    ids = add_items(app, queue.slug, 3)
    with app.app_context():
        session = db_session()
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's")
        session.execute(update(Item).where(Item.id == ids[1]).values(priority=5))
        session.commit()
        url = session.get_bind().url

    other = create_engine(url)
    try:
        with other.connect() as in_flight:
            in_flight.execute(
                text("SELECT id FROM items WHERE id = :id FOR UPDATE"), {"id": ids[1]}
            )
            assert claim(app, queue.slug, factory.user().id) == ids[0]
            in_flight.rollback()
        # Once the other claim is gone, the top item goes to the next reviewer as usual.
        assert claim(app, queue.slug, factory.user().id) == ids[1]
    finally:
        other.dispose()
