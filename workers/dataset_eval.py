"""Closing the loop: retrain the local model on a snapshot's train split and compare it
with the queue's active model on the snapshot's eval split, per label.

Training uses the local recommender's own building blocks (workers/recommenders/local.py:
the gate, the pipeline, the payload-to-text step), so a model trained here is the model
the worker would train, only on exactly the snapshot's rows.
"""

from __future__ import annotations

import json
import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import DatasetSnapshot, ModelVersion
from models.base import utcnow
from review.domain.datasets import ClassificationReport, classification_report
from review.services import audit
from review.services.dataset_writers import read_rows
from review.services.datasets import ExportSettings, snapshot_dir
from review.services.errors import Conflict, ValidationFailed
from workers.recommenders.local import (
    CALIBRATE_MIN_PER_LABEL,
    build_pipeline,
    untrainable_reason,
    version_name,
)
from workers.recommenders.text import payload_document


@dataclass
class SplitData:
    documents: list[str]
    labels: list[str]


def load_splits(snapshot: DatasetSnapshot, settings: ExportSettings) -> dict[str, SplitData]:
    """The snapshot's rows as model input (text, final label), per split, from its files."""
    if snapshot.status != "succeeded":
        raise Conflict(
            f"v{snapshot.version} is {snapshot.status}; its files are not available",
            {"status": snapshot.status},
        )
    directory: Path = snapshot_dir(settings, snapshot)
    splits = {"train": SplitData([], []), "eval": SplitData([], [])}
    for file in snapshot.files or []:
        for row in read_rows(directory / file["path"], snapshot.format):
            split = splits[row["split"]]
            split.documents.append(payload_document(json.loads(row["payload"])))
            split.labels.append(row["final_label"])
    return splits


def _active_model(session: Session, queue_id: int) -> tuple[ModelVersion | None, Pipeline | None]:
    model = session.scalar(
        select(ModelVersion).where(
            ModelVersion.queue_id == queue_id, ModelVersion.is_active.is_(True)
        )
    )
    if model is None:
        return None, None
    return model, pickle.loads(model.artifact)  # noqa: S301 - written by local._store


def _scores(report: ClassificationReport, label: str) -> dict[str, Any] | None:
    for scores in report.per_label:
        if scores.label == label:
            return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}
    return None


def evaluate_snapshot(
    session: Session, snapshot: DatasetSnapshot, settings: ExportSettings
) -> dict[str, Any]:
    """Train on the train split, score old and new models on the eval split, store the
    report on the snapshot (the ML page shows it) and return it. Does not commit and does
    not change which model is active."""
    splits = load_splits(snapshot, settings)
    train, held = splits["train"], splits["eval"]
    if (reason := untrainable_reason(Counter(train.labels))) is not None:
        raise ValidationFailed(
            f"the train split cannot train a model: {reason}", {"snapshot": reason}
        )
    if not held.labels:
        raise ValidationFailed("the eval split is empty", {"snapshot": "no eval rows"})
    calibrated = min(Counter(train.labels).values()) >= CALIBRATE_MIN_PER_LABEL
    pipeline = build_pipeline(calibrated)
    pipeline.fit(train.documents, train.labels)
    new = classification_report(
        held.labels, list(pipeline.predict(held.documents)), snapshot.queue.labels
    )
    old_model, old_pipeline = _active_model(session, snapshot.queue_id)
    old = None
    if old_pipeline is not None:
        old = classification_report(
            held.labels, list(old_pipeline.predict(held.documents)), snapshot.queue.labels
        )
    report = {
        "snapshot_id": snapshot.id,
        "evaluated_at": utcnow().isoformat(),
        "n_train": len(train.labels),
        "n_eval": len(held.labels),
        "calibrated": calibrated,
        "old": (
            {"model": version_name(old_model.version), "accuracy": old.accuracy}
            if old is not None and old_model is not None
            else None
        ),
        "new": {"model": "retrained on this snapshot", "accuracy": new.accuracy},
        "per_label": [
            {
                "label": s.label,
                "support": s.support,
                "new": _scores(new, s.label),
                "old": _scores(old, s.label) if old is not None else None,
            }
            for s in new.per_label
        ],
        "note": (
            "The active model was trained on the queue's decisions, which may include these "
            "eval rows, so its scores can be optimistic."
            if old is not None
            else "The queue has no active local model to compare with."
        ),
    }
    snapshot.evaluation = report
    audit.record(
        session,
        "dataset.evaluated",
        queue_id=snapshot.queue_id,
        snapshot_id=snapshot.id,
        version=snapshot.version,
        new_accuracy=new.accuracy,
        old_accuracy=old.accuracy if old else None,
    )
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a plain-text table for the terminal."""

    def cell(scores: dict[str, Any] | None, key: str) -> str:
        value = scores.get(key) if scores else None
        return f"{value:.3f}" if value is not None else "-"

    old_name = report["old"]["model"] if report["old"] else "(none)"
    lines = [
        f"train rows {report['n_train']}, eval rows {report['n_eval']}; "
        f"old = {old_name}, new = retrained on the snapshot's train split",
        f"{'label':<24}{'support':>8}  {'P old':>7}{'P new':>7}  {'R old':>7}{'R new':>7}"
        f"  {'F1 old':>7}{'F1 new':>7}",
    ]
    for row in report["per_label"]:
        lines.append(
            f"{row['label']:<24}{row['support']:>8}  "
            + "  ".join(
                f"{cell(row['old'], k):>7}{cell(row['new'], k):>7}"
                for k in ("precision", "recall", "f1")
            )
        )
    old_accuracy = report["old"]["accuracy"] if report["old"] else None
    lines.append(
        f"accuracy: old {old_accuracy:.3f}" if old_accuracy is not None else "accuracy: old -"
    )
    lines[-1] += f", new {report['new']['accuracy']:.3f}"
    lines.append(report["note"])
    return "\n".join(lines)
