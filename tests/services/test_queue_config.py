"""Queues as code, and label changes that respect past decisions."""

from __future__ import annotations

import tomllib

import pytest
from sqlalchemy import select

from models import AuditEvent
from review.db import db_session
from review.services import queue_config, queue_editing, queues
from review.services.errors import ValidationFailed
from tests.web.ui_helpers import add_items

CONFIG = '''
[[queue]]
slug = "refunds"
name = "Refund requests"
labels = ["approve_refund", "deny_refund", "escalate"]
reason_codes = ["wrong_label", "missing_context"]
instructions = """Approve refunds within policy.

Escalate anything over $500."""
display_fields = ["amount", "reason"]
escalation_queue = "senior-refunds"
members = ["lee@example.com"]

[queue.recommender]
kind = "none"

[[queue]]
slug = "senior-refunds"
name = "Senior refunds"
labels = ["approve_refund", "deny_refund"]
reason_codes = ["policy_exception"]
'''


def apply(app, text: str) -> list[str]:
    with app.app_context():
        session = db_session()
        results = queue_config.apply_config(session, queue_config.parse_config(text), None)
        session.commit()
        return queue_config.describe_changes(results)


def snapshot(app, slug: str) -> dict:
    with app.app_context():
        session = db_session()
        return queue_editing.queue_snapshot(session, queues.get_queue(session, slug))


def test_apply_creates_queues_and_a_second_apply_is_a_no_op(app, factory):
    factory.user("reviewer", email="lee@example.com")
    first = apply(app, CONFIG)
    assert first[0] == "+ refunds (created)"
    assert '    escalation_queue: "senior-refunds"' in first
    assert "+ senior-refunds (created)" in first

    refunds = snapshot(app, "refunds")
    assert refunds["labels"] == ["approve_refund", "deny_refund", "escalate"]
    assert refunds["escalation_queue"] == "senior-refunds"
    assert refunds["members"] == ["lee@example.com"]
    assert refunds["display_fields"] == ["amount", "reason"]
    assert refunds["recommender_kind"] == "none"
    assert refunds["instructions"].endswith("over $500.")

    assert apply(app, CONFIG) == ["= refunds (unchanged)", "= senior-refunds (unchanged)"]


def test_apply_prints_the_diff_of_an_edit(app, factory):
    factory.user("reviewer", email="lee@example.com")
    factory.user("reviewer", email="kim@example.com")
    apply(app, CONFIG)
    edited = (
        CONFIG.replace('name = "Refund requests"', 'name = "Refunds"')
        .replace('members = ["lee@example.com"]', 'members = ["kim@example.com"]')
        .replace('"deny_refund", "escalate"]', '"deny_refund", "escalate", "partial"]', 1)
    )
    lines = apply(app, edited)
    assert lines[:4] == [
        "~ refunds",
        '    name: "Refund requests" -> "Refunds"',
        "    labels: + partial",
        "    members: + kim@example.com, - lee@example.com",
    ]
    with app.app_context():
        events = db_session().scalars(
            select(AuditEvent).where(AuditEvent.action == "queue.updated")
        )
        changes = [event.details["changes"] for event in events]
        assert {"name": ["Refund requests", "Refunds"]}.items() <= changes[-1].items()


def test_export_reads_back_as_the_same_configuration(app, factory):
    factory.user("reviewer", email="lee@example.com")
    apply(app, CONFIG)
    factory.queue("plain", instructions='Quotes " and \\ and tabs\tand\x7f')
    with app.app_context():
        exported = queue_config.export_config(db_session())
    parsed = tomllib.loads(exported)
    assert [q["slug"] for q in parsed["queue"]] == ["plain", "refunds", "senior-refunds"]
    assert parsed["queue"][0]["instructions"] == 'Quotes " and \\ and tabs\tand\x7f'
    assert all(line.startswith("=") for line in apply(app, exported))


def test_a_used_label_must_be_retired_explicitly_never_renamed(app, factory):
    apply(app, CONFIG.replace('members = ["lee@example.com"]\n', ""))
    add_items(app, "refunds", 2, label="escalate")  # items recommended "escalate"
    renamed = CONFIG.replace('"deny_refund", "escalate"]', '"deny_refund", "escalate_now"]', 1)
    renamed = renamed.replace('members = ["lee@example.com"]\n', "")

    with pytest.raises(ValidationFailed) as error:
        apply(app, renamed)
    assert list(error.value.fields) == ["queue 'refunds'.labels"]
    assert "“escalate” (2 items) in use: retire it" in error.value.fields["queue 'refunds'.labels"]
    assert snapshot(app, "refunds")["labels"] == ["approve_refund", "deny_refund", "escalate"]

    retired = renamed.replace("display_fields", 'retired_labels = ["escalate"]\ndisplay_fields', 1)
    lines = apply(app, retired)
    assert "    labels: + escalate_now, - escalate" in lines
    assert "    retired_labels: + escalate" in lines
    after = snapshot(app, "refunds")
    assert (after["labels"], after["retired_labels"]) == (
        ["approve_refund", "deny_refund", "escalate_now"],
        ["escalate"],
    )
    assert all(line.startswith("=") for line in apply(app, retired))


def test_an_unused_label_is_simply_removed(app, factory):
    queue = factory.queue("q")
    with app.app_context():
        session = db_session()
        row = queues.get_queue(session, queue.slug)
        data = {"name": row.name, "labels": ["approve", "reject"], "reason_codes": ["x"]}
        changes = queue_editing.update_queue(session, row, data, None)
        session.commit()
    assert changes.fields["labels"] == (["approve", "reject", "escalate"], ["approve", "reject"])
    assert snapshot(app, "q")["retired_labels"] == []


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ('[[queue]]\nslug = "a"\nlabel = []\n', "queue[0]", "unknown keys label"),
        ("[[queue]\n", "file", "Expected"),
        (
            '[[queue]]\nslug = "BAD slug"\nname = "x"\nlabels = ["a", "b"]\nreason_codes = ["r"]\n',
            "queue 'BAD slug'.slug",
            "lowercase",
        ),
        (
            '[[queue]]\nslug = "a"\nname = "x"\nlabels = ["a", "b"]\nreason_codes = ["r"]\n'
            'members = ["ghost@example.com"]\n',
            "queue 'a'.members",
            "no users ghost@",
        ),
        (
            '[[queue]]\nslug = "a"\nname = "x"\nlabels = ["a", "b"]\nreason_codes = ["r"]\n'
            'escalation_queue = "nowhere"\n',
            "queue 'a'.escalation_queue",
            "no queue",
        ),
    ],
)
def test_bad_files_name_the_queue_and_field_and_apply_nothing(app, text, field, expected):
    with pytest.raises(ValidationFailed) as error:
        apply(app, text)
    assert expected in error.value.fields[field]
    with app.app_context():
        assert queues.list_queues(db_session()) == []
