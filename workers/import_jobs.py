"""RQ jobs for bulk imports: validate a file, then write its rows. Thin: they take the
import's id, drive the service's batches, and commit after each one so the page's progress
bar moves and memory stays flat. Both are idempotent: rerunning a finished job does nothing,
and rerunning an interrupted import skips the rows it already wrote."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from models import DataImport
from review.db import get_database
from review.redis_conn import get_rq_queue
from review.services import imports, pipeline

log = logging.getLogger(__name__)


def validate_import(import_id: int) -> str | None:
    """Check every row of the import and store the report. Returns the final status."""
    session = get_database().session_factory()
    try:
        for _ in imports.validate_batches(session, import_id):
            session.commit()
        return _finish(session, import_id)
    except Exception as exc:
        _mark_failed(session, import_id, exc)
        raise
    finally:
        session.close()


def run_import(import_id: int) -> str | None:
    """Write the valid rows of a confirmed import; new pending items go to the workers."""
    session = get_database().session_factory()
    try:
        for pending in imports.import_batches(session, import_id):
            session.commit()  # workers must see the rows before they get their ids
            if pending:
                pipeline.enqueue_recommendations(get_rq_queue(), pending)
        return _finish(session, import_id)
    except Exception as exc:
        _mark_failed(session, import_id, exc)
        raise
    finally:
        session.close()


def _finish(session: Session, import_id: int) -> str | None:
    session.commit()
    data_import = session.get(DataImport, import_id)
    status = data_import.status if data_import else None
    log.info("import %d: %s", import_id, status)
    return status


def _mark_failed(session: Session, import_id: int, exc: Exception) -> None:
    """Record why the job died, so the page stops polling and says so."""
    log.exception("import %d failed", import_id)
    session.rollback()
    data_import = session.get(DataImport, import_id)
    if data_import is not None:
        data_import.status = "failed"
        data_import.error_message = f"the job stopped: {exc}"
        session.commit()
