"""Sealing the audit log (every worker's sweeper thread, `flask audit seal`) and verifying
it in the background for the admin page.

Each batch is its own transaction, so the chain head's lock is held for one batch only
and writers of audit events never wait on it (see review/services/audit_chain.py).
"""

from __future__ import annotations

import logging

from flask import Flask, current_app

from models.base import utcnow
from review.db import Database, get_database
from review.redis_conn import get_rq_queue
from review.services import audit_chain, audit_verification

log = logging.getLogger(__name__)


def seal_pending(database: Database, max_batches: int = 1000) -> int:
    """Seal every committed, unsealed event (up to `max_batches` batches). Idempotent."""
    total = 0
    for _ in range(max_batches):
        with database.session() as session:
            sealed = audit_chain.seal_batch(session)
        total += sealed
        if sealed < audit_chain.SEAL_BATCH:
            break
    if total:
        log.info("sealed %d audit events", total)
    return total


def seal_in_app(app: Flask) -> int:
    """One sealing run for the sweeper thread; an error is logged, never raised."""
    try:
        with app.app_context():
            return seal_pending(get_database())
    except Exception:
        log.exception("sealing the audit log failed; the next sweep tries again")
        return 0


def verify_chain_job() -> bool:
    """The RQ job: verify the whole chain and keep the report for the admin page.

    Idempotent (it only reads the chain). Returns whether the chain is intact.
    """
    rq_queue = get_rq_queue()
    audit_verification.mark_running(rq_queue, utcnow())
    grace = current_app.config.get("AUDIT_SEAL_GRACE_SECONDS", audit_chain.DEFAULT_GRACE_SECONDS)
    report = audit_chain.verify_snapshot(get_database(), int(grace))
    audit_verification.save_report(rq_queue, report, utcnow())
    if report.problem is not None:
        log.error("audit chain broken: %s", report.problem.message)
    return report.ok
