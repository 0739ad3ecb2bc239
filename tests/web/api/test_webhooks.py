"""PUT/GET/DELETE /api/v1/queues/<slug>/webhook: who may, what is checked, what is shown."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEvent, QueueWebhook
from review.db import db_session
from review.sealed_secrets import SecretBox, is_sealed
from tests.web.api.helpers import error_fields

GOOD = {"url": "https://hooks.example.com/decisions", "secret": "s3cret-long-enough-0001"}


def _headers(factory, role: str, queue=None) -> dict[str, str]:
    user = factory.user(role)
    if queue is not None:
        factory.member(queue, user)
    return {"Authorization": f"Bearer {factory.token(user)}"}


def _url(queue) -> str:
    return f"/api/v1/queues/{queue.slug}/webhook"


def _webhook_audit(app, column) -> list:
    """`column` of every webhook.* audit event, oldest first."""
    with app.app_context():
        query = select(column).where(AuditEvent.action.like("webhook.%"))
        return list(db_session().scalars(query.order_by(AuditEvent.id)))


def _stored(app, queue) -> QueueWebhook | None:
    with app.app_context():
        return db_session().scalar(select(QueueWebhook).where(QueueWebhook.queue_id == queue.id))


def test_a_policy_owner_of_the_queue_sets_reads_and_removes_the_webhook(app, client, factory):
    queue = factory.queue()
    owner = _headers(factory, "policy_owner", queue)

    created = client.put(_url(queue), json=GOOD, headers=owner)
    assert created.status_code == 201
    assert created.get_json()["url"] == GOOD["url"]
    assert created.get_json()["secret_set"] is True

    read = client.get(_url(queue), headers=owner)
    assert read.status_code == 200
    assert read.get_json()["url"] == GOOD["url"]
    assert read.get_json()["events"]["pending"] == 0
    for response in (created, read):  # the secret never comes back
        assert GOOD["secret"] not in response.get_data(as_text=True)

    changed = client.put(
        _url(queue), json={**GOOD, "url": "http://10.0.0.5:8080/hook"}, headers=owner
    )
    assert changed.status_code == 200
    assert _stored(app, queue).url == "http://10.0.0.5:8080/hook"

    assert client.delete(_url(queue), headers=owner).status_code == 204
    assert _stored(app, queue) is None
    gone = client.get(_url(queue), headers=owner)
    assert gone.status_code == 200
    assert (gone.get_json()["url"], gone.get_json()["secret_set"]) == (None, False)
    assert client.delete(_url(queue), headers=owner).status_code == 204  # idempotent

    assert not any(GOOD["secret"] in str(d) for d in _webhook_audit(app, AuditEvent.details))
    assert _webhook_audit(app, AuditEvent.action) == [
        "webhook.created",
        "webhook.changed",
        "webhook.deleted",
    ]


def test_an_admin_may_set_any_queues_webhook(app, client, factory):
    queue = factory.queue()
    response = client.put(_url(queue), json=GOOD, headers=_headers(factory, "admin"))
    assert response.status_code == 201


@pytest.mark.parametrize("role", ["reviewer", "ml"])
def test_other_roles_may_not_touch_the_webhook(app, client, factory, role):
    queue = factory.queue()
    headers = _headers(factory, role, queue)
    assert client.put(_url(queue), json=GOOD, headers=headers).status_code == 403
    assert client.get(_url(queue), headers=headers).status_code == 403
    assert client.delete(_url(queue), headers=headers).status_code == 403
    assert _stored(app, queue) is None


def test_a_policy_owner_of_another_queue_may_not(app, client, factory):
    queue, other = factory.queue(), factory.queue()
    headers = _headers(factory, "policy_owner", other)
    response = client.put(_url(queue), json=GOOD, headers=headers)
    assert response.status_code == 403
    assert "slug" in error_fields(response)
    assert _stored(app, queue) is None


def test_anonymous_requests_are_refused(client, factory):
    queue = factory.queue()
    assert client.put(_url(queue), json=GOOD).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"secret": GOOD["secret"]}, "url"),
        ({**GOOD, "url": "ftp://hooks.example.com/x"}, "url"),
        ({**GOOD, "url": "https:///no-host"}, "url"),
        ({**GOOD, "url": "https://hooks.example.com:99999/x"}, "url"),
        ({**GOOD, "url": "https://hooks.example.com/a b"}, "url"),
        ({**GOOD, "url": "https://x.example/" + "a" * 2000}, "url"),
        ({**GOOD, "url": 42}, "url"),
        ({"url": GOOD["url"]}, "secret"),
        ({**GOOD, "secret": "short"}, "secret"),
        ({**GOOD, "secret": "x" * 257}, "secret"),
        ({**GOOD, "secret": "has spaces in it, sixteen+"}, "secret"),
        ({**GOOD, "events": ["all"]}, "events"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(app, client, factory, body, field):
    queue = factory.queue()
    owner = _headers(factory, "policy_owner", queue)
    assert client.put(_url(queue), json=GOOD, headers=owner).status_code == 201

    response = client.put(_url(queue), json=body, headers=owner)

    assert response.status_code == 422
    assert field in error_fields(response)
    stored = _stored(app, queue)
    assert stored.url == GOOD["url"]
    assert SecretBox.from_config(app.config).open(stored.secret) == GOOD["secret"]


def test_a_body_that_is_not_an_object_is_refused(client, factory):
    queue = factory.queue()
    owner = _headers(factory, "policy_owner", queue)
    response = client.put(_url(queue), json=["https://x.example"], headers=owner)
    assert response.status_code == 422
    assert "body" in error_fields(response)


def test_the_secret_is_stored_sealed_and_only_a_new_one_counts_as_changed(app, client, factory):
    """A copy of the database alone does not give the signing secret away."""
    queue = factory.queue()
    owner = _headers(factory, "policy_owner", queue)
    assert client.put(_url(queue), json=GOOD, headers=owner).status_code == 201
    first = _stored(app, queue).secret
    assert GOOD["secret"] not in first and is_sealed(first)

    assert client.put(_url(queue), json=GOOD, headers=owner).status_code == 200
    again = _stored(app, queue).secret
    assert again != first  # sealed afresh (a new IV), the same secret inside
    new_secret = {**GOOD, "secret": "another-secret-long-enough-2"}
    assert client.put(_url(queue), json=new_secret, headers=owner).status_code == 200
    assert (
        SecretBox.from_config(app.config).open(_stored(app, queue).secret) == (new_secret["secret"])
    )

    changed = _webhook_audit(app, AuditEvent.details)
    assert [d["secret_changed"] for d in changed] == [True, False, True]
