"""Hostile strings in queue settings, payloads, reason codes and comments come back
escaped on every page that shows them: nothing a client sends can run in a browser."""

from __future__ import annotations

import pytest
from markupsafe import escape
from sqlalchemy import select

from models import Queue
from review.db import db_session
from tests.conftest import login
from tests.web.api.helpers import put_policy

NAME = 'Queue <script>alert("name")</script>'
LABEL = 'refund"><img src=x onerror=alert(1)>'
REASON = "rc'><svg onload=alert(2)>"
COMMENT = "</textarea><script>alert(3)</script>"
INSTRUCTIONS = "<img src=x onerror=alert(4)> & read <b>carefully</b>"
PAYLOAD_TEXT = "<iframe src=javascript:alert(5)></iframe>"
PAYLOAD_KEY = 'k" onmouseover="alert(6)'
# Unicode tricks: a right-to-left override and a zero-width space, shown as they are.
UNICODE = "invoice\u202egnp.exe\u200b"
HOSTILE = [NAME, LABEL, REASON, COMMENT, INSTRUCTIONS, PAYLOAD_TEXT, PAYLOAD_KEY]
# What would mean a string reached the page as markup.
LIVE_MARKUP = ["<script>alert", "<img src=x", "<svg onload", "<iframe src", '" onmouseover="']


@pytest.fixture
def hostile_queue(app, client, factory):
    """A queue configured with hostile strings, one decided and one waiting item."""
    admin = factory.user("admin", email="admin@example.com")
    headers = {"Authorization": f"Bearer {factory.token(admin)}"}
    queue = {
        "slug": "hostile",
        "name": NAME,
        "labels": [LABEL, "deny"],
        "reason_codes": [REASON],
        "instructions": INSTRUCTIONS,
        "display_fields": [PAYLOAD_KEY],
    }
    assert client.post("/api/v1/queues", json=queue, headers=headers).status_code == 201
    assert put_policy(client, headers, "hostile", 1.0, note=COMMENT).status_code == 201
    payload = {PAYLOAD_KEY: PAYLOAD_TEXT, "file": UNICODE, "body": COMMENT}
    items = [
        {
            "external_id": f"<b>X-{n}</b>",
            "payload": payload | {"n": n},
            "recommendation": {"label": LABEL, "confidence": 0.5, "model": "<i>m</i>"},
        }
        for n in range(2)
    ]
    created = client.post(
        "/api/v1/queues/hostile/items", json={"items": items}, headers=headers
    ).get_json()["items"]
    decided = client.post(
        f"/api/v1/items/{created[0]['id']}/decision",
        json={"action": "override", "label": "deny", "reason_code": REASON, "comment": COMMENT},
        headers=headers,
    )
    assert decided.status_code == 200, decided.get_json()
    with app.app_context():
        factory.member(db_session().scalar(select(Queue).where(Queue.slug == "hostile")), admin)
    assert login(client, admin.email).status_code == 302
    return {"decided_id": created[0]["id"]}


PAGES = [
    "/",
    "/queues/hostile",
    "/queues/hostile/review",
    "/admin/",
    "/admin/queues/hostile/edit",
    "/admin/ops",
    "/admin/audit/",
    "/policy/",
    "/policy/queues/hostile/",
    "/policy/queues/hostile/versions",
    "/policy/queues/hostile/dashboard",
    "/policy/queues/hostile/calibration",
    "/ml/",
    "/ml/queues/hostile/datasets",
]


def test_every_page_escapes_what_clients_sent(client, hostile_queue):
    pages = {
        url: client.get(url)
        for url in [*PAGES, f"/admin/audit/items/{hostile_queue['decided_id']}"]
    }
    shown: set[str] = set()
    for url, response in pages.items():
        assert response.status_code == 200, url
        for marker in LIVE_MARKUP:
            assert marker not in response.text, f"{url} shows {marker!r} as markup"
        shown |= {s for s in HOSTILE if str(escape(s)) in response.text}
    # Every hostile string was shown somewhere (escaped), so the checks above mean something.
    assert shown == set(HOSTILE)
    assert any(UNICODE in r.text for r in pages.values())
