"""The local recommender: TF-IDF + logistic regression trained on a queue's human decisions.

Training (`train_for_queue`) stores the fitted scikit-learn pipeline, pickled, as the
queue's active ModelVersion; recommending (`local_recommender_for`) loads the active one,
keeping loaded pipelines in a small per-process cache keyed by ModelVersion.id. The
artifact is a pickle we wrote ourselves, so loading it is safe.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Item, ModelVersion, Queue, Review
from review.domain.calibration import reliability
from review.domain.promotion import promotion_verdict
from review.services import audit

# Putting a stored version in force, and naming it, live with the services (the ML page
# activates models without loading scikit-learn).
from review.services.model_versions import deactivate_all, version_name
from review.services.routing import RecommendationInput
from workers.recommenders import local_explain
from workers.recommenders.base import NoRecommendation, Recommender, RecommenderUnavailable
from workers.recommenders.text import payload_document, payload_values_text

log = logging.getLogger(__name__)

MODEL_KIND = "tfidf-logreg"
MIN_DECISIONS = 20
MIN_LABELS = 2
MIN_PER_LABEL = 5
HOLDOUT_FRACTION = 0.2
# Sigmoid calibration with 3-fold CV needs every fold to see each label a few times.
CALIBRATION_FOLDS = 3
CALIBRATE_MIN_PER_LABEL = 15
RETRAIN_EVERY = 25
# Fewer held-out decisions than this say too little to compare two models on.
MIN_HELD_OUT = 5
MAX_TRAINING_DECISIONS = 50_000
_CACHE_SIZE = 8
# Keyed by (ModelVersion.id, created_at): SQLite may reuse the id of a deleted row.
_model_cache: OrderedDict[tuple[int, str], LoadedModel] = OrderedDict()


def label_counts(session: Session, queue_id: int) -> Counter[str]:
    """How many human decisions the queue has, per final label."""
    rows = session.execute(
        select(Review.final_label, func.count())
        .join(Item, Item.id == Review.item_id)
        .where(Item.queue_id == queue_id)
        .group_by(Review.final_label)
    )
    return Counter({label: count for label, count in rows})


def untrainable_reason(counts: Counter[str]) -> str | None:
    """Why these decisions cannot train a model, or None if they can."""
    total = sum(counts.values())
    if total < MIN_DECISIONS:
        return f"needs at least {MIN_DECISIONS} decisions, has {total}"
    well_covered = [label for label, count in counts.items() if count >= MIN_PER_LABEL]
    if len(well_covered) < MIN_LABELS:
        return f"needs at least {MIN_LABELS} labels with {MIN_PER_LABEL}+ decisions each"
    return None


def training_due(session: Session, queue_id: int) -> bool:
    """True when the queue can be trained and has RETRAIN_EVERY new decisions since its
    active model (or has no model yet)."""
    counts = label_counts(session, queue_id)
    if untrainable_reason(counts) is not None:
        return False
    # The latest version, promoted or not: a candidate held back by the gate must not make
    # every later job retrain on the same decisions.
    trained_on = session.scalar(
        select(ModelVersion.trained_on)
        .where(ModelVersion.queue_id == queue_id)
        .order_by(ModelVersion.version.desc())
        .limit(1)
    )
    return trained_on is None or sum(counts.values()) - trained_on >= RETRAIN_EVERY


def held_out(item_id: int, fraction: float = HOLDOUT_FRACTION) -> bool:
    """Whether a decided item belongs to the held-out slice, for good.

    Fixed per item (a hash of its id), so no model version ever trains on a held-out
    item, and a candidate and the model in force are compared on decisions neither saw.
    """
    digest = hashlib.sha256(f"holdout:{item_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < fraction * 2**32


def stratified_holdout(
    labels: Sequence[str], fraction: float, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Indices (train, eval): about `fraction` of each label held out, at least one for a
    label with MIN_PER_LABEL+ examples, none for rarer labels (they are too few to spare)."""
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    rng = random.Random(seed)
    train: list[int] = []
    held: list[int] = []
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        n_held = max(1, round(len(indices) * fraction)) if len(indices) >= MIN_PER_LABEL else 0
        held.extend(indices[:n_held])
        train.extend(indices[n_held:])
    return sorted(train), sorted(held)


def build_pipeline(calibrated: bool) -> Pipeline:
    classifier: Any = LogisticRegression(C=10.0, max_iter=2000)
    if calibrated:
        classifier = CalibratedClassifierCV(classifier, method="sigmoid", cv=CALIBRATION_FOLDS)
    return Pipeline(
        [
            ("tfidf", TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)),
            ("classifier", classifier),
        ]
    )


def evaluate_pipeline(
    pipeline: Pipeline, documents: list[str], labels: list[str]
) -> dict[str, float]:
    """Accuracy, Brier score and calibration (ECE) of the pipeline on these decisions: the
    figures the promotion gate compares (also used to score a model retrained on a snapshot)."""
    probabilities = pipeline.predict_proba(documents)
    classes = [str(c) for c in pipeline.classes_]
    confidences = [min(1.0, float(row.max())) for row in probabilities]
    predicted = [classes[int(row.argmax())] for row in probabilities]
    correct = [guess == label for guess, label in zip(predicted, labels, strict=True)]
    calibration = reliability((c, ok, 1.0) for c, ok in zip(confidences, correct, strict=True))
    # Multi-class Brier score; a label the model never learned counts as probability 0.
    brier = sum(
        sum((float(p) - (c == label)) ** 2 for c, p in zip(classes, row, strict=True))
        + (label not in classes)
        for row, label in zip(probabilities, labels, strict=True)
    ) / len(labels)
    ece = calibration.expected_calibration_error
    assert ece is not None  # labels is not empty: the Brier score divided by its length
    return {
        "accuracy": sum(correct) / len(correct),
        "brier": brier,
        "ece": ece,
        "mean_confidence": sum(confidences) / len(confidences),
    }


def _decisions(session: Session, queue_id: int) -> list[tuple[int, dict[str, Any], str]]:
    rows = session.execute(
        select(Item.id, Item.payload, Review.final_label)
        .join(Review, Review.item_id == Item.id)
        .where(Item.queue_id == queue_id)
        .order_by(Review.id.desc())
        .limit(MAX_TRAINING_DECISIONS)
    )
    return [(item_id, payload, label) for item_id, payload, label in rows]


def train_for_queue(session: Session, queue: Queue) -> ModelVersion | None:
    """Train on the queue's human decisions and store the result as a new version.

    Returns None, storing nothing, when the decisions do not pass the training gate (at
    least MIN_DECISIONS decisions, MIN_LABELS labels with MIN_PER_LABEL+ each). The model
    is fitted on the decisions outside the fixed held-out slice (`held_out`) and scored on
    the slice, so the metrics describe the stored model. It becomes the active model only
    if it is not worse on that slice than the model in force (review/domain/promotion.py);
    otherwise it is stored inactive, its metrics saying why. Does not commit.
    """
    decisions = _decisions(session, queue.id)
    counts = Counter(label for _, _, label in decisions)
    if (reason := untrainable_reason(counts)) is not None:
        log.info("queue %s not trained: %s", queue.slug, reason)
        return None
    documents = [payload_document(payload) for _, payload, _ in decisions]
    labels = [label for _, _, label in decisions]
    held = [i for i, (item_id, _, _) in enumerate(decisions) if held_out(item_id)]
    train = [i for i in range(len(decisions)) if i not in set(held)]
    if len(held) < MIN_HELD_OUT or len(set(labels[i] for i in train)) < MIN_LABELS:
        # Too few decisions for the fixed slice: a one-off stratified split, and no
        # comparison with the model in force (it may have trained on this slice).
        train, held = stratified_holdout(labels, HOLDOUT_FRACTION)
        comparable = False
    else:
        comparable = True
    train_counts = Counter(labels[i] for i in train)
    calibrated = min(train_counts.values()) >= CALIBRATE_MIN_PER_LABEL
    pipeline = build_pipeline(calibrated)
    pipeline.fit([documents[i] for i in train], [labels[i] for i in train])
    held_documents, held_labels = [documents[i] for i in held], [labels[i] for i in held]
    metrics: dict[str, Any] = evaluate_pipeline(pipeline, held_documents, held_labels)
    metrics.update(
        n_train=len(train),
        n_eval=len(held),
        holdout="fixed slice by item id" if comparable else "one-off stratified split",
        label_counts=dict(sorted(counts.items())),
        labels=[str(label) for label in pipeline.classes_],
        calibration=(
            f"sigmoid, {CALIBRATION_FOLDS}-fold CalibratedClassifierCV"
            if calibrated
            else "none: plain logistic regression probabilities (a label has fewer than "
            f"{CALIBRATE_MIN_PER_LABEL} training decisions)"
        ),
    )
    current = _current_on_slice(session, queue, held_documents, held_labels, comparable)
    verdict = promotion_verdict(current[1] if current else None, metrics)
    metrics["promotion"] = {
        "promoted": verdict.promote,
        "reason": verdict.reason,
        "against_version": current[0] if current else None,
        "current_on_slice": current[1] if current else None,
    }
    return store_version(session, queue, pipeline, metrics, sum(counts.values()), verdict.promote)


def _current_on_slice(
    session: Session, queue: Queue, documents: list[str], labels: list[str], comparable: bool
) -> tuple[int, dict[str, float]] | None:
    """(version, metrics) of the model in force scored on the candidate's held-out slice;
    None when there is none, or it cannot be loaded or fairly compared (then the
    candidate is promoted: a model that cannot run is no bar to clear)."""
    active = session.execute(
        select(ModelVersion.id, ModelVersion.version, ModelVersion.created_at)
        .where(ModelVersion.queue_id == queue.id, ModelVersion.is_active.is_(True))
        .limit(1)
    ).first()
    if active is None or not comparable:
        return None
    try:
        model = _load_model(session, active.id, active.created_at)
        return active.version, evaluate_pipeline(model.pipeline, documents, labels)
    except Exception:
        log.exception("queue %s: the model in force could not be scored", queue.slug)
        return None


def store_version(
    session: Session,
    queue: Queue,
    pipeline: Pipeline,
    metrics: dict[str, Any],
    trained_on: int,
    promote: bool,
) -> ModelVersion:
    """Store a trained pipeline as the queue's next model version; with `promote` it
    becomes the active model (the one in force is deactivated). The caller decides
    `promote` by the gate (review/domain/promotion.py). `metrics` needs accuracy, ece,
    brier, n_train, n_eval and promotion.reason (they go to the audit log). No commit."""
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.queue_id == queue.id)
    )
    if promote:
        deactivate_all(session, queue.id)
    model = ModelVersion(
        queue_id=queue.id,
        version=(latest or 0) + 1,
        kind=MODEL_KIND,
        trained_on=trained_on,
        metrics=metrics,
        artifact=pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL),
        is_active=promote,
    )
    session.add(model)
    session.flush()
    audit.record(
        session,
        "model.trained",
        queue_id=queue.id,
        version=version_name(model.version),
        accuracy=metrics["accuracy"],
        ece=metrics["ece"],
        brier=metrics["brier"],
        promoted=promote,
        promotion=metrics["promotion"]["reason"],
        n_train=metrics["n_train"],
        n_eval=metrics["n_eval"],
    )
    log.info(
        "queue %s: trained %s on %d decisions (accuracy %.3f, ECE %.3f); %s: %s",
        queue.slug,
        version_name(model.version),
        trained_on,
        metrics["accuracy"],
        metrics["ece"],
        "promoted" if promote else "held back",
        metrics["promotion"]["reason"],
    )
    return model


class LocalRecommender:
    """Scores items with one fitted pipeline; all items in a single predict call. Each
    recommendation names the item's words that pushed most for its label (local_explain)."""

    def __init__(self, model: LoadedModel, version: int, labels: Sequence[str]) -> None:
        self.model = model
        self.pipeline = model.pipeline
        self.version = version_name(version)
        self.labels = set(labels)

    def recommend(self, items: Sequence[Item]) -> list[RecommendationInput | None]:
        if not items:
            return []
        started = time.perf_counter()
        tfidf = self.pipeline.named_steps["tfidf"]
        features = tfidf.transform([payload_document(i.payload) for i in items])
        probabilities = self.pipeline.named_steps["classifier"].predict_proba(features)
        classes = [str(label) for label in self.pipeline.classes_]
        rankings = [[int(i) for i in row.argsort()[::-1]] for row in probabilities]
        terms = [
            local_explain.pushing_terms(
                features[index],
                ranked[0],
                self.model.weights,
                self.model.vocabulary,
                payload_values_text(item.payload),
            )
            for index, (item, ranked) in enumerate(zip(items, rankings, strict=True))
        ]
        latency_ms = (time.perf_counter() - started) * 1000 / len(items)
        return [
            self._advice(row, ranked, classes, item_terms, latency_ms)
            for row, ranked, item_terms in zip(probabilities, rankings, terms, strict=True)
        ]

    def _advice(
        self, row: Any, ranked: list[int], classes: list[str], terms: list[str], latency_ms: float
    ) -> RecommendationInput | None:
        label = classes[ranked[0]]
        if label not in self.labels:  # the queue dropped a label the model still knows
            return None
        runner_up = None
        if len(ranked) > 1:
            runner_up = (classes[ranked[1]], float(row[ranked[1]]))
        return RecommendationInput(
            source="local",
            model=MODEL_KIND,
            model_version=self.version,
            label=label,
            confidence=min(1.0, max(0.0, float(row[ranked[0]]))),
            rationale=local_explain.rationale(label, terms, runner_up),
            evidence=tuple(terms),
            latency_ms=latency_ms,
        )


class LoadedModel:
    """A stored model version's pipeline as loaded, and what explaining it needs (worked
    out on first use and kept with it in the cache: a dense labels × features array and
    the features' names)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @cached_property
    def weights(self) -> Any:
        return local_explain.relative_weights(self.pipeline)

    @cached_property
    def vocabulary(self) -> Any:
        # Built anew by every call of get_feature_names_out: an array of every feature.
        return self.pipeline.named_steps["tfidf"].get_feature_names_out()


def _load_model(session: Session, model_id: int, created_at: datetime) -> LoadedModel:
    key = (model_id, created_at.isoformat())
    if key in _model_cache:
        _model_cache.move_to_end(key)
        return _model_cache[key]
    artifact = session.scalar(select(ModelVersion.artifact).where(ModelVersion.id == model_id))
    if artifact is None:  # deleted since the caller found it active; callers catch this
        raise LookupError(f"model version {model_id} no longer exists")
    model = LoadedModel(pickle.loads(artifact))  # noqa: S301 - our own, from store_version
    _model_cache[key] = model
    while len(_model_cache) > _CACHE_SIZE:
        _model_cache.popitem(last=False)
    return model


def local_recommender_for(session: Session, queue: Queue) -> Recommender:
    """The queue's active local model, or a recommender with nothing to say if untrained.

    Raises RecommenderUnavailable if the stored artifact cannot be loaded.
    """
    active = session.execute(
        select(ModelVersion.id, ModelVersion.version, ModelVersion.created_at)
        .where(ModelVersion.queue_id == queue.id, ModelVersion.is_active.is_(True))
        .order_by(ModelVersion.id.desc())
        .limit(1)
    ).first()
    if active is None:
        return NoRecommendation()
    try:
        model = _load_model(session, active.id, active.created_at)
    except Exception as exc:  # a corrupt or incompatible pickle must not strand items
        raise RecommenderUnavailable(
            f"{version_name(active.version)} could not be loaded: {exc}"
        ) from exc
    return LocalRecommender(model, active.version, queue.labels)
