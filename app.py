"""The Flask application factory. Nothing runs at import time.

flask --app app run        # the web app
flask --app app worker     # an RQ worker (see workers/cli.py)
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_htmx import HTMX
from flask_wtf.csrf import CSRFProtect

from review import db, redis_conn, structured_logging
from review.config import settings_from_env
from review.services import webhook_outbox

csrf = CSRFProtect()
htmx = HTMX()

DEFAULTS: dict[str, Any] = {
    "RQ_QUEUE_NAME": "workbench",
    "LEASE_SECONDS": 300,
    "SWEEP_INTERVAL_SECONDS": 30,
    "SWEEP_PENDING_AFTER_SECONDS": 60,
    # Seconds a process reuses a queue's live counts (review/web/queue/count_cache.py).
    "COUNTS_CACHE_SECONDS": 2.0,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
    # Decision webhooks: seconds to connect and to wait for an answer, and the growing
    # pauses between attempts (one retry per entry; then the event is a dead letter).
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    "WEBHOOK_RETRY_INTERVALS": [10, 60, 300, 1800, 7200],
    "LOG_FORMAT": "json",  # json | text | off (leave logging alone)
    "LOG_LEVEL": "INFO",
    "METRICS_TOKEN": None,  # a bearer secret for the Prometheus scraper (review/web/ops)
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. `config` replaces the environment (tests pass theirs in)."""
    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.config.update(DEFAULTS)
    app.config.update(settings_from_env() if config is None else config)

    db.init_app(app)
    redis_conn.init_app(app)
    # Outbox events a transaction wrote are enqueued for delivery once it commits.
    webhook_outbox.enqueue_after_commit(
        app.extensions["db"].session_factory, app.extensions["rq_queue"]
    )
    csrf.init_app(app)
    htmx.init_app(app)

    from review.web import security, text_blocks
    from review.web.converters import RowIdConverter

    # Before any route is registered, so every `<int:...>` is bounded (review/web/converters).
    app.url_map.converters["int"] = RowIdConverter
    security.init_app(app)
    structured_logging.init_app(app)
    text_blocks.init_app(app)
    _register_blueprints(app)
    _register_cli(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from review.web.admin import bp as admin_bp
    from review.web.admin import onboarding_bp
    from review.web.api import bp as api_bp
    from review.web.auth import bp as auth_bp
    from review.web.exports import bp as exports_bp
    from review.web.ops import bp as ops_bp
    from review.web.policy import bp as policy_bp
    from review.web.queue import bp as queue_bp

    csrf.exempt(api_bp)  # the API authenticates with bearer tokens, never cookies
    app.register_blueprint(auth_bp)
    app.register_blueprint(queue_bp)
    app.register_blueprint(exports_bp, url_prefix="/ml")
    app.register_blueprint(policy_bp, url_prefix="/policy")
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    app.register_blueprint(admin_bp, url_prefix="/admin")
    app.register_blueprint(onboarding_bp, url_prefix="/account")
    app.register_blueprint(ops_bp)  # /healthz and /metrics


def _register_cli(app: Flask) -> None:
    from review.cli import seed_cli, tokens_cli, users_cli
    from review.cli_admin import items_cli, queues_cli
    from review.cli_audit import audit_cli
    from review.cli_datasets import datasets_cli
    from workers.cli import worker_command

    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(items_cli)
    app.cli.add_command(queues_cli)
    app.cli.add_command(seed_cli)
    app.cli.add_command(datasets_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(worker_command)
