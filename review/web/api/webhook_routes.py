"""A queue's decision webhook over the API: set, read (never the secret) and remove.

Policy owners who are members of the queue, and admins, may manage it.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from review.db import db_session
from review.sealed_secrets import SecretBox
from review.services import webhooks
from review.web.api import bp
from review.web.api.access import member_queue
from review.web.api.auth import current_api_user, token_required
from review.web.api.parsing import json_body


@bp.get("/queues/<slug>/webhook")
@token_required("policy_owner", scope="read")
def get_webhook(slug: str) -> dict[str, Any]:
    """The webhook's URL (null when none is set), whether a secret is set (never the
    secret), and the queue's events by status."""
    session = db_session()
    queue = member_queue(session, slug)
    return webhooks.as_dict(session, queue, webhooks.webhook_for(session, queue))


@bp.put("/queues/<slug>/webhook")
@token_required("policy_owner", scope="decide")
def put_webhook(slug: str) -> tuple[dict[str, Any], int]:
    """`{"url": "https://...", "secret": "..."}`: final decisions from now on go there."""
    session = db_session()
    queue = member_queue(session, slug)
    created = webhooks.webhook_for(session, queue) is None
    secrets = SecretBox.from_config(current_app.config)
    webhook = webhooks.set_webhook(session, queue, json_body(), current_api_user(), secrets)
    session.commit()
    return webhooks.as_dict(session, queue, webhook), 201 if created else 200


@bp.delete("/queues/<slug>/webhook")
@token_required("policy_owner", scope="decide")
def delete_webhook(slug: str) -> tuple[str, int]:
    """Stop sending decisions. Idempotent: 204 whether or not a webhook was set."""
    session = db_session()
    queue = member_queue(session, slug)
    webhooks.delete_webhook(session, queue, current_api_user())
    session.commit()
    return "", 204
