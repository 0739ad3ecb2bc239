"""/healthz and /metrics.

/healthz needs no login (a load balancer has none) and so names only which part is down.

/metrics is protected: it reveals queue names, volumes and spend. A scraper sends
`Authorization: Bearer <secret>` with either the METRICS_TOKEN from the configuration (a
secret for the Prometheus job, kept out of the user tables), or an API token of an admin
with the `read` scope. Anything else gets the API's JSON 401/403.
"""

from __future__ import annotations

import hmac

from flask import Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from models.base import utcnow
from review.db import db_session, get_database
from review.redis_conn import get_redis, get_rq_queue
from review.services import health, metrics
from review.web.api.auth import token_required
from review.web.ops import bp


@bp.get("/healthz")
def healthz() -> Response:
    """200 with every check when all is well, 503 naming what is down otherwise."""
    report = health.health(db_session(), get_redis(), get_rq_queue(), utcnow())
    response = jsonify(report.as_dict())
    response.status_code = 200 if report.ok else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _scrape_token_given() -> bool:
    """True when the request carries the configured METRICS_TOKEN as its bearer token."""
    configured = current_app.config.get("METRICS_TOKEN")
    credentials = request.authorization
    if not configured or credentials is None or credentials.type != "bearer":
        return False
    return hmac.compare_digest((credentials.token or "").encode(), configured.encode())


def _exposition() -> Response:
    # A registry per scrape: the collector reads this app's database and queue, and tests
    # run many apps in one process, so nothing is registered globally.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.WorkbenchCollector(get_database().session_factory, get_rq_queue()))
    response = Response(generate_latest(registry), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


@token_required("admin", scope="read")
def _exposition_for_api_token() -> Response:
    return _exposition()


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """The Prometheus text exposition of the workbench's metrics (services.metrics)."""
    if _scrape_token_given():
        return _exposition()
    return _exposition_for_api_token()
