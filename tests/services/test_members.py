"""Queue membership: who sees which queue."""

import pytest

from models import AuditEvent, Queue, User
from review.db import db_session
from review.services import members
from review.services.errors import ValidationFailed


def test_reviewers_see_only_their_queues_admins_and_ml_see_all(app, factory):
    mine, other = factory.queue(name="Mine"), factory.queue(name="Other")
    reviewer, admin, ml = factory.user("reviewer"), factory.user("admin"), factory.user("ml")
    with app.app_context():
        session = db_session()
        members.add_member(
            session, session.get(Queue, mine.id), session.get(User, reviewer.id), None
        )
        session.commit()

        def slugs(user):
            found = members.queues_for_user(session, session.get(User, user.id))
            return [q.slug for q in found]

        assert slugs(reviewer) == [mine.slug]
        assert sorted(slugs(admin)) == sorted([mine.slug, other.slug])
        assert sorted(slugs(ml)) == sorted([mine.slug, other.slug])
        assert members.is_member(
            session, session.get(Queue, mine.id), session.get(User, reviewer.id)
        )
        assert not members.is_member(
            session, session.get(Queue, other.id), session.get(User, reviewer.id)
        )


def test_set_members_reports_and_audits_the_change(app, factory):
    queue = factory.queue()
    a, b, c = factory.user(), factory.user(), factory.user()
    with app.app_context():
        session = db_session()
        q = session.get(Queue, queue.id)
        assert members.set_members(session, q, [a.id, b.id], None) == ({a.id, b.id}, set())
        assert members.set_members(session, q, [b.id, c.id], None) == ({c.id}, {a.id})
        assert members.set_members(session, q, [b.id, c.id], None) == (set(), set())
        session.commit()
        events = session.query(AuditEvent).filter_by(action="queue.members_changed").all()
        assert len(events) == 2  # the no-op change is not logged


def test_unknown_user_is_refused_and_nothing_changes(app, factory):
    queue = factory.queue()
    with app.app_context():
        session = db_session()
        q = session.get(Queue, queue.id)
        with pytest.raises(ValidationFailed) as error:
            members.set_members(session, q, [999999], None)
        assert "members" in error.value.fields
        assert members.member_ids(session, q) == set()
