"""Which local model version is in force for a queue, and putting another one in force.

The models themselves are trained by workers/recommenders/local.py (and, from a dataset
snapshot, by workers/dataset_eval.py); this module only reads and flips `is_active`, so
the web layer can activate a model without loading scikit-learn.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import DatasetSnapshot, ModelVersion, User
from review.services import audit
from review.services.errors import Conflict


def version_name(version: int) -> str:
    """How a local model version is named everywhere: local-v3."""
    return f"local-v{version}"


def active_version(session: Session, queue_id: int) -> ModelVersion | None:
    """The queue's model in force, if any."""
    return session.scalar(
        select(ModelVersion).where(
            ModelVersion.queue_id == queue_id, ModelVersion.is_active.is_(True)
        )
    )


def deactivate_all(session: Session, queue_id: int) -> None:
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.queue_id == queue_id, ModelVersion.is_active.is_(True))
        .values(is_active=False)
    )


def activate_version(session: Session, model: ModelVersion) -> None:
    """Put a stored version in force (the one in force, if another, stops being). The
    caller has applied the promotion gate, or was allowed to override it, and audits that.
    Workers pick the new model up on their next recommendation. No commit."""
    deactivate_all(session, model.queue_id)
    session.flush()
    model.is_active = True
    session.flush()


def candidate_of(session: Session, snapshot: DatasetSnapshot) -> ModelVersion | None:
    """The model last retrained on this snapshot, as its evaluation report names it."""
    candidate = (snapshot.evaluation or {}).get("candidate")
    model = session.get(ModelVersion, candidate["model_id"]) if candidate else None
    return model if model is not None and model.queue_id == snapshot.queue_id else None


def activate_candidate(
    session: Session,
    snapshot: DatasetSnapshot,
    *,
    user: User | None,
    actor: str | None = None,
    force: bool = False,
) -> ModelVersion:
    """Put the model retrained on this snapshot in force.

    Only when the promotion gate passed (not worse than the model in force on the eval
    split) and that model is still the one in force; otherwise Conflict, unless `force`,
    which activates it anyway and records so, and who did it, in the audit log. No commit.
    """
    model = candidate_of(session, snapshot)
    if model is None:
        raise Conflict(
            f"v{snapshot.version} has no retrained model; retrain from it first",
            {"snapshot": "no retrained model"},
        )
    if model.is_active:
        raise Conflict(f"{version_name(model.version)} is already active", {"model": "active"})
    promotion = (model.metrics or {}).get("promotion", {})
    in_force = active_version(session, snapshot.queue_id)
    refusal = None
    if not promotion.get("promoted"):
        refusal = f"held back by the promotion gate: {promotion.get('reason')}"
    elif in_force is not None and in_force.version != promotion.get("against_version"):
        refusal = (
            f"the model in force is now {version_name(in_force.version)}, not the one this "
            "model was compared with; retrain to compare again"
        )
    if refusal is not None and not force:
        raise Conflict(f"not activated: {refusal}", {"gate": refusal})
    if refusal is not None:  # the model says why it is in force, as the gate would have
        model.metrics = {
            **model.metrics,
            "promotion": {**promotion, "forced": True, "reason": f"activated anyway: {refusal}"},
        }
    activate_version(session, model)
    audit.record(
        session,
        "model.activated_from_snapshot",
        user=user,
        actor=actor,
        queue_id=snapshot.queue_id,
        snapshot_id=snapshot.id,
        snapshot_version=snapshot.version,
        model_version=version_name(model.version),
        replaced=version_name(in_force.version) if in_force else None,
        forced=refusal is not None,
        gate=refusal or promotion.get("reason"),
    )
    return model
