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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn.pipeline import Pipeline
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import DatasetSnapshot, ModelVersion
from models.base import utcnow
from review.domain.datasets import ClassificationReport, classification_report
from review.domain.promotion import promotion_verdict
from review.services import audit
from review.services.dataset_writers import read_rows
from review.services.datasets import ExportSettings, snapshot_dir
from review.services.errors import Conflict, ValidationFailed
from review.services.model_versions import version_name
from workers.recommenders.local import (
    CALIBRATE_MIN_PER_LABEL,
    build_pipeline,
    evaluate_pipeline,
    store_version,
    untrainable_reason,
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
    return model, pickle.loads(model.artifact)  # noqa: S301 - written by local.store_version


def _scores(report: ClassificationReport, label: str) -> dict[str, Any] | None:
    for scores in report.per_label:
        if scores.label == label:
            return {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}
    return None


@dataclass
class Retrained:
    """A model trained on a snapshot's train split, with its evaluation report and the
    figures the promotion gate compared (kept for activating it)."""

    snapshot_id: int
    pipeline: Pipeline
    report: dict[str, Any]
    metrics: dict[str, Any]


def _gate_scores(pipeline: Pipeline | None, held: SplitData) -> dict[str, float] | None:
    """Accuracy, Brier and ECE on the eval split; None when the model cannot run."""
    if pipeline is None:
        return None
    try:
        return evaluate_pipeline(pipeline, held.documents, held.labels)
    except Exception:  # an old model that cannot run is no bar to clear (as local.py does)
        return None


def retrain_on_snapshot(
    session: Session,
    snapshot: DatasetSnapshot,
    settings: ExportSettings,
    on_step: Callable[[str], None] = lambda step: None,
) -> Retrained:
    """Train on the train split, score old and new models on the eval split (per label,
    plus accuracy, ECE and the promotion gate's verdict), store the report on the snapshot
    (the ML page shows it). `on_step` hears each stage begin. Does not commit and does not
    change which model is active."""
    on_step("reading the snapshot's rows")
    splits = load_splits(snapshot, settings)
    train, held = splits["train"], splits["eval"]
    if (reason := untrainable_reason(Counter(train.labels))) is not None:
        raise ValidationFailed(
            f"the train split cannot train a model: {reason}", {"snapshot": reason}
        )
    if not held.labels:
        raise ValidationFailed("the eval split is empty", {"snapshot": "no eval rows"})
    calibrated = min(Counter(train.labels).values()) >= CALIBRATE_MIN_PER_LABEL
    on_step(f"training on {len(train.labels)} rows")
    pipeline = build_pipeline(calibrated)
    pipeline.fit(train.documents, train.labels)
    on_step(f"scoring the old and new models on {len(held.labels)} eval rows")
    labels = snapshot.queue.labels
    new = classification_report(held.labels, list(pipeline.predict(held.documents)), labels)
    old_model, old_pipeline = _active_model(session, snapshot.queue_id)
    old_scores = _gate_scores(old_pipeline, held)
    old = None
    if old_pipeline is not None and old_scores is not None:
        old = classification_report(held.labels, list(old_pipeline.predict(held.documents)), labels)
    new_scores = evaluate_pipeline(pipeline, held.documents, held.labels)
    verdict = promotion_verdict(old_scores, new_scores)
    report = {
        "snapshot_id": snapshot.id,
        "evaluated_at": utcnow().isoformat(),
        "n_train": len(train.labels),
        "n_eval": len(held.labels),
        "calibrated": calibrated,
        "old": (
            {"model": version_name(old_model.version), **_summary(old_scores)}
            if old is not None and old_model is not None and old_scores is not None
            else None
        ),
        "new": {"model": "retrained on this snapshot", **_summary(new_scores)},
        "gate": {"passes": verdict.promote, "reason": verdict.reason},
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
        gate_passes=verdict.promote,
    )
    metrics: dict[str, Any] = {
        **new_scores,
        "n_train": len(train.labels),
        "n_eval": len(held.labels),
        "holdout": f"eval split of dataset snapshot v{snapshot.version} (id {snapshot.id})",
        "label_counts": dict(sorted(Counter(train.labels).items())),
        "labels": [str(label) for label in pipeline.classes_],
        "snapshot_id": snapshot.id,
        "promotion": {
            "promoted": verdict.promote,
            "reason": verdict.reason,
            "against_version": old_model.version if old_model and old_scores else None,
            "current_on_slice": old_scores,
        },
    }
    return Retrained(snapshot.id, pipeline, report, metrics)


def _summary(scores: dict[str, float]) -> dict[str, float]:
    return {key: scores[key] for key in ("accuracy", "ece", "brier")}


def evaluate_snapshot(
    session: Session, snapshot: DatasetSnapshot, settings: ExportSettings
) -> dict[str, Any]:
    """retrain_on_snapshot's report alone (nothing is activated)."""
    return retrain_on_snapshot(session, snapshot, settings).report


def store_candidate(
    session: Session, snapshot: DatasetSnapshot, retrained: Retrained
) -> ModelVersion:
    """Keep the retrained model as the queue's next version, not in force, and name it in
    the snapshot's report so that it can be activated later (activate_candidate)."""
    model = store_version(
        session,
        snapshot.queue,
        retrained.pipeline,
        retrained.metrics,
        retrained.metrics["n_train"],
        False,
    )
    retrained.report = {
        **retrained.report,
        "candidate": {"model_id": model.id, "version": version_name(model.version)},
    }
    snapshot.evaluation = retrained.report
    return model


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
    if "ece" in report["new"]:  # reports stored before the gate was added lack these
        old_ece = report["old"]["ece"] if report["old"] else None
        lines.append(
            (f"ECE: old {old_ece:.3f}" if old_ece is not None else "ECE: old -")
            + f", new {report['new']['ece']:.3f}"
        )
    if gate := report.get("gate"):
        verdict = "passes" if gate["passes"] else "held back"
        lines.append(f"promotion gate: {verdict} ({gate['reason']})")
    lines.append(report["note"])
    return "\n".join(lines)
