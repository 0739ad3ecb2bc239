"""The API's dataset snapshot endpoints (ML users and admins).

POST /queues/<slug>/exports starts a snapshot (202, built by a worker); GET /exports/<id>
reports its status, progress, row count, hash and datasheet; GET /exports/<id>/download
sends the dataset folder as a zip, or one file of it with `?file=`.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request, url_for

from models import DatasetSnapshot, Queue
from models.base import utcnow
from review.db import db_session
from review.redis_conn import get_rq_queue
from review.services import datasets, queues
from review.services.errors import NotFound
from review.web.api import bp
from review.web.api.auth import current_api_user, token_required
from review.web.api.parsing import json_body, path_id
from review.web.exports.downloads import send_target


def _settings() -> datasets.ExportSettings:
    return datasets.ExportSettings.from_config(current_app.config)


def _find_queue(slug: str) -> Queue:
    if not queues.SLUG_RE.match(slug):
        raise NotFound(f"no queue {slug[:64]!r}", {"slug": "no such queue"})
    return queues.get_queue(db_session(), slug)


def _snapshot(raw_id: str) -> DatasetSnapshot:
    return datasets.get_snapshot(db_session(), path_id(raw_id, "snapshot"))


def _as_json(snapshot: DatasetSnapshot) -> dict[str, Any]:
    body = datasets.snapshot_as_dict(snapshot)
    body["links"] = {
        "self": url_for(".get_export", snapshot_id=snapshot.id),
        "download": url_for(".download_export", snapshot_id=snapshot.id),
        "files": {
            f["path"]: url_for(".download_export", snapshot_id=snapshot.id, file=f["path"])
            for f in body["files"]
        },
    }
    return body


@bp.post("/queues/<slug>/exports")
@token_required("ml", scope="export")
def create_export(slug: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Start a snapshot: {"format", "filter"?, "since_snapshot"?, "reviewer_identity"?}."""
    session = db_session()
    queue = _find_queue(slug)
    user = current_api_user()
    parsed = datasets.parse_request(session, queue, user, json_body(), utcnow())
    snapshot = datasets.create_snapshot(session, queue, user, parsed, utcnow())
    session.commit()
    enqueued = datasets.enqueue_build(get_rq_queue(), snapshot.id)
    body = _as_json(snapshot)
    body["enqueued"] = enqueued
    return body, 202, {"Location": body["links"]["self"]}


@bp.get("/queues/<slug>/exports")
@token_required("ml", scope="read")
def list_exports(slug: str) -> dict[str, Any]:
    session = db_session()
    queue = _find_queue(slug)
    return {"exports": [_as_json(s) for s in datasets.list_snapshots(session, queue)]}


@bp.get("/exports/<snapshot_id>")
@token_required("ml", scope="read")
def get_export(snapshot_id: str) -> dict[str, Any]:
    return _as_json(_snapshot(snapshot_id))


@bp.post("/exports/<snapshot_id>/retry")
@token_required("ml", scope="export")
def retry_export(snapshot_id: str) -> tuple[dict[str, Any], int]:
    """Build a failed snapshot again, from the same watermark (same rows, same hash)."""
    session = db_session()
    snapshot = _snapshot(snapshot_id)
    datasets.requeue_snapshot(session, snapshot, current_api_user())
    session.commit()
    body = _as_json(snapshot)
    body["enqueued"] = datasets.enqueue_build(get_rq_queue(), snapshot.id)
    return body, 202


@bp.get("/exports/<snapshot_id>/download")
@token_required("ml", scope="export")
def download_export(snapshot_id: str) -> Response:
    """The dataset folder as a zip; `?file=data/train.parquet` (or README.md ...) for one."""
    session = db_session()
    snapshot = _snapshot(snapshot_id)
    file = request.args.get("file")
    target = datasets.download_target(
        session, snapshot, current_api_user(), _settings(), utcnow(), file=file, via="api"
    )
    session.commit()
    return send_target(target)
