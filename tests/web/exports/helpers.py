"""Helpers for the dataset snapshot tests: decided items, snapshots, and reading them back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models import DatasetSnapshot, User
from models.base import utcnow
from review.db import db_session
from review.services import datasets, ingest, queues, reviewing
from review.services.dataset_writers import read_rows
from workers import dataset_jobs


def use_export_dir(app, path: Path) -> Path:
    app.config["EXPORT_DIR"] = str(path)
    app.config["EXPORT_RETENTION_DAYS"] = 30
    return path


def add_reviewable(app, slug: str, count: int, *, prefix: str, label: str = "approve") -> list[int]:
    """Ingest items bringing a low-confidence recommendation (all go to review); their ids."""
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        body = {
            "items": [
                {
                    "external_id": f"{prefix}-{n}",
                    "payload": {"text": f"ticket {prefix} {n}", "tier": n % 3, "tags": ["a", "é"]},
                    "recommendation": {
                        "label": label,
                        "confidence": round(0.3 + (n % 5) / 10, 2),
                        "model": "upstream",
                        "model_version": "2.1",
                    },
                }
                for n in range(count)
            ]
        }
        parsed, _ = ingest.parse_ingest_body(body, queue)
        ids = [result.item.id for result in ingest.ingest(session, queue, parsed)]
        session.commit()
        return ids


def decide(app, reviewer: User, item_ids: list[int], *, override_every: int = 3) -> None:
    """Decide the items: every `override_every`-th is overridden to `escalate`."""
    with app.app_context():
        session = db_session()
        user = session.merge(reviewer)
        for n, item_id in enumerate(item_ids):
            if n % override_every == 0:
                data = {
                    "action": "override",
                    "label": "escalate",
                    "reason_code": "wrong_label",
                    "comment": f"needs a senior, case {n}",
                }
            else:
                data = {"action": "approve"}
            reviewing.decide(session, item_id, user, data)
        session.commit()


def decided(app, slug: str, reviewer: User, count: int, *, prefix: str, **kw: Any) -> list[int]:
    ids = add_reviewable(app, slug, count, prefix=prefix)
    decide(app, reviewer, ids, **kw)
    return ids


def create(app, slug: str, user: User, **request: Any) -> int:
    """Create a snapshot through the service, commit, return its id (not built yet)."""
    request.setdefault("format", "jsonl")
    with app.app_context():
        session = db_session()
        queue = queues.get_queue(session, slug)
        actor = session.merge(user)
        parsed = datasets.parse_request(session, queue, actor, request, utcnow())
        snapshot = datasets.create_snapshot(session, queue, actor, parsed, utcnow())
        session.commit()
        return snapshot.id


def build(app, snapshot_id: int) -> str:
    """Run the build job in this process, as a worker would (inside the app context)."""
    with app.app_context():
        return dataset_jobs.build_snapshot(snapshot_id)


def snapshot(app, snapshot_id: int) -> DatasetSnapshot:
    with app.app_context():
        session = db_session()
        found = session.get(DatasetSnapshot, snapshot_id)
        _ = found.queue, found.since_snapshot
        session.expunge_all()
        return found


def rows_of(app, snapshot_id: int) -> list[dict[str, Any]]:
    """Every row of a built snapshot, read back from its data files, in review-id order."""
    found = snapshot(app, snapshot_id)
    directory = Path(app.config["EXPORT_DIR"]) / found.storage_dir
    rows = []
    for file in found.files:
        rows.extend(read_rows(directory / file["path"], found.format))
    return sorted(rows, key=lambda row: row["review_id"])
