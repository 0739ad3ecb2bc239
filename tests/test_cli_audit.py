"""`flask audit seal` and `flask audit verify`: exit 1 naming the first bad row."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from models import AuditEvent
from review.db import db_session
from review.services import audit


def record_events(app, count: int) -> list[int]:
    with app.app_context():
        session = db_session()
        events = [audit.record(session, "test.cli", n=n) for n in range(count)]
        session.commit()
        return [event.id for event in events]


def tamper(app, statement) -> None:
    with app.app_context():
        session = db_session()
        session.execute(statement)
        session.commit()


def test_seal_then_verify_reports_an_intact_chain(app, runner):
    assert (
        "audit chain OK: 0 events verified; head empty."
        in runner.invoke(args=["audit", "verify"]).output
    )
    record_events(app, 3)
    assert runner.invoke(args=["audit", "seal"]).output == "sealed 3 audit event(s)\n"
    assert runner.invoke(args=["audit", "seal"]).output == "sealed 0 audit event(s)\n"
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit chain OK: 3 events verified; head seq 3, hash " in result.output


def test_verify_fails_naming_an_edited_row(app, runner):
    ids = record_events(app, 4)
    runner.invoke(args=["audit", "seal"])
    tamper(app, update(AuditEvent).where(AuditEvent.id == ids[1]).values(details={"n": 99}))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"audit chain BROKEN: event {ids[1]} (seq 2) does not match its hash" in result.output


def test_verify_fails_naming_a_deleted_row(app, runner):
    ids = record_events(app, 4)
    runner.invoke(args=["audit", "seal"])
    tamper(app, delete(AuditEvent).where(AuditEvent.id == ids[2]))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"seq 3 is missing (after event {ids[1]}, before event {ids[3]}" in result.output


def test_verify_fails_on_events_left_unsealed_past_the_grace_period(app, runner):
    ids = record_events(app, 2)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0
    assert "2 newer events wait to be sealed (within the 300s grace period)." in result.output
    result = runner.invoke(args=["audit", "verify", "--grace", "0"])
    assert result.exit_code == 1
    assert f"event {ids[0]} (created " in result.output and "still unsealed" in result.output


def test_workers_seal_on_every_sweep(app):
    from workers.audit_jobs import seal_in_app

    record_events(app, 2)
    assert seal_in_app(app) == 2
    with app.app_context():
        assert db_session().scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all() == [1, 2]
