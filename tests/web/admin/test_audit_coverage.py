"""Everything issue #7 says the audit log must hold is in it, and the chain seals it all:
logins and failed logins, decisions by people and by the policy, policy versions and
their activation, token creation and revocation, export downloads, queue and user changes."""

from __future__ import annotations

from sqlalchemy import select

from models import AuditEvent, User
from review.db import db_session
from review.services import accounts, audit_chain, ingest, people, queue_patching, queues, reviewing
from tests.conftest import login
from workers.audit_jobs import seal_pending


def actions(app) -> set[str]:
    with app.app_context():
        return set(db_session().scalars(select(AuditEvent.action)))


def test_every_kind_of_change_the_issue_names_is_audited_and_sealed(app, client, factory):
    boss = factory.user("admin", email="boss@example.com")
    rita = factory.user("reviewer", email="rita@example.com")
    queue = factory.queue("claims")
    factory.member(queue, rita)
    login(client, "boss@example.com", "wrong-password")
    login(client, "boss@example.com")
    with app.app_context():
        session = db_session()
        admin = session.get(User, boss.id)
        claims = queues.get_queue(session, "claims")
        queues.create_policy_version(
            session, claims, {"default_threshold": 0.9, "note": "trust 0.9"}, admin
        )
        body = {
            "items": [
                {
                    "external_id": "sure",
                    "payload": {"t": 1},
                    "recommendation": {"label": "approve", "confidence": 0.99, "model": "m"},
                },
                {
                    "external_id": "unsure",
                    "payload": {"t": 2},
                    "recommendation": {"label": "approve", "confidence": 0.5, "model": "m"},
                },
            ]
        }
        parsed, _ = ingest.parse_ingest_body(body, claims)
        unsure = ingest.ingest(session, claims, parsed)[1].item
        reviewing.decide(session, unsure.id, session.get(User, rita.id), {"action": "approve"})
        token, _ = accounts.create_token(session, admin, name="ci")
        accounts.revoke_token(session, token.id, admin)
        queue_patching.patch_queue(session, claims, {"instructions": "Be careful."}, admin)
        people.set_role(session, session.get(User, rita.id), "policy_owner", admin)
        session.commit()
    ml = factory.user("ml", email="ml@example.com")
    api = {"Authorization": f"Bearer {factory.token(ml)}"}
    assert client.get("/api/v1/queues/claims/export.jsonl", headers=api).status_code == 200

    assert {
        "auth.login_failed",
        "auth.login",
        "policy.created",
        "policy.activated",
        "item.auto_approved",
        "item.approved",
        "token.created",
        "token.revoked",
        "queue.updated",
        "user.created",
        "user.role_changed",
        "export.downloaded",
    } <= actions(app)
    with app.app_context():
        seal_pending(app.extensions["db"])
        report = audit_chain.verify(db_session())
        assert report.ok and report.unsealed == 0 and report.checked > 12
