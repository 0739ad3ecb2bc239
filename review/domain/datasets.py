"""Feedback datasets: the row schema, the stable train/eval split, reviewer pseudonyms,
the counts a datasheet reports and the per-label evaluation of a model on a snapshot.

Pure Python: the exporters (review/services/dataset_*.py) feed rows in, these functions
say what the rows mean.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Share of items whose split is "eval". Derived from the item id alone, so an item keeps
# its split in every snapshot, incremental or full, today or in a year.
EVAL_FRACTION = 0.2
SPLITS = ("train", "eval")
_SPLIT_BUCKETS = 10_000


@dataclass(frozen=True)
class Field:
    """One column of a dataset: its name, type and what it means."""

    name: str
    type: str  # int64 | float64 | bool | string | json | timestamp
    nullable: bool
    meaning: str


SCHEMA: tuple[Field, ...] = (
    Field(
        "review_id",
        "int64",
        False,
        "Id of the human review. Rows are ordered by it; "
        "snapshots are cut at a review id (the watermark).",
    ),
    Field("item_id", "int64", False, "Id of the item in the Review Workbench."),
    Field("external_id", "string", False, "The id the sending system gave the item."),
    Field("queue", "string", False, "Slug of the queue the item was reviewed in."),
    Field("payload", "json", False, "The item as it was sent, as a JSON-encoded object."),
    Field("ai_label", "string", True, "The label the AI recommended (null: no recommendation)."),
    Field("confidence", "float64", True, "The AI's confidence in ai_label, 0 to 1."),
    Field(
        "ai_source", "string", True, "Where the recommendation came from: local, claude, external."
    ),
    Field("model", "string", True, "Name of the model that recommended."),
    Field("model_version", "string", True, "Version of that model."),
    Field("final_label", "string", False, "The label the reviewer settled on: the ground truth."),
    Field("overridden", "bool", False, "True when the reviewer replaced the AI's label."),
    Field("reason_code", "string", True, "Why the reviewer overrode (from the queue's list)."),
    Field("comment", "string", False, "The reviewer's free-text comment (may be empty)."),
    Field(
        "reviewer",
        "string",
        False,
        "Who decided: a stable pseudonym (rv-...) per reviewer, "
        "or the email when the exporter was allowed to see names.",
    ),
    Field("seconds_on_item", "float64", True, "Time from opening the item to deciding it."),
    Field("policy_version", "int64", True, "Version of the threshold policy that routed the item."),
    Field("route", "string", True, "Where that policy sent the item: review or auto_approve."),
    Field("threshold", "float64", True, "The confidence threshold the policy applied."),
    Field(
        "audit",
        "bool",
        False,
        "True when the item was drawn by audit sampling although "
        "the policy would have auto-approved it.",
    ),
    Field(
        "inclusion_probability",
        "float64",
        False,
        "Probability that the item reached a "
        "person under the policy; weight rows by its inverse for unbiased estimates.",
    ),
    Field("item_created_at", "timestamp", False, "When the item arrived (UTC)."),
    Field("routed_at", "timestamp", True, "When the policy routed the item (UTC)."),
    Field("decided_at", "timestamp", False, "When the reviewer decided (UTC)."),
    Field(
        "split",
        "string",
        False,
        "train or eval: a stable function of item_id "
        f"({EVAL_FRACTION:.0%} eval), the same in every snapshot.",
    ),
)
FIELD_NAMES = tuple(f.name for f in SCHEMA)
FIELD_INDEX = {name: index for index, name in enumerate(FIELD_NAMES)}
# Positions read for every row while counting; looked up once, not per row.
_REVIEW_ID, _AI_LABEL, _MODEL, _MODEL_VERSION, _FINAL_LABEL, _OVERRIDDEN = (
    FIELD_INDEX[name]
    for name in ("review_id", "ai_label", "model", "model_version", "final_label", "overridden")
)
_REVIEWER, _POLICY_VERSION, _AUDIT, _DECIDED_AT, _SPLIT = (
    FIELD_INDEX[name] for name in ("reviewer", "policy_version", "audit", "decided_at", "split")
)


_EVAL_BUCKETS = int(EVAL_FRACTION * _SPLIT_BUCKETS)


def split_for(item_id: int) -> str:
    """`eval` for about EVAL_FRACTION of item ids, `train` for the rest; never changes."""
    digest = hashlib.sha256(b"split:%d" % item_id).digest()  # bytes %: no str to encode
    bucket = int.from_bytes(digest[:8], "big") % _SPLIT_BUCKETS
    return "eval" if bucket < _EVAL_BUCKETS else "train"


def splits_for(item_ids: Iterable[int]) -> list[str]:
    """split_for of each id. The same computation written out in one comprehension: the
    exporter runs it for every row, and a call per id cost nearly half of its time."""
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    return [
        "eval" if from_bytes(sha256(b"split:%d" % i).digest()[:8], "big") % _SPLIT_BUCKETS
        < _EVAL_BUCKETS else "train"
        for i in item_ids
    ]  # fmt: skip


def reviewer_pseudonym(secret: str, user_id: int) -> str:
    """A stable, non-reversible id for a reviewer: HMAC-SHA256 of the user id under `secret`.

    The same reviewer gets the same pseudonym in every snapshot while the secret stays the
    same; without the secret, nobody can tell who it is.
    """
    mac = hmac.new(secret.encode(), f"reviewer:{user_id}".encode(), hashlib.sha256)
    return "rv-" + mac.hexdigest()[:16]


@dataclass
class DatasheetStats:
    """Counts over a snapshot's rows, accumulated one row at a time while it is written.
    Timestamps may be datetimes or their ISO 8601 text (the exporter's form), not mixed:
    that text, all in UTC, sorts in time order."""

    rows: int = 0
    overrides: int = 0
    audits: int = 0
    ai_labels: Counter[str] = field(default_factory=Counter)
    final_labels: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)
    policy_versions: Counter[int] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    reviewers: set[str] = field(default_factory=set)
    first_decided_at: datetime | None = None
    last_decided_at: datetime | None = None
    first_review_id: int | None = None
    last_review_id: int | None = None

    def add(self, row: Sequence[Any]) -> None:
        """Count one row (a tuple in SCHEMA order)."""
        self.rows += 1
        self.overrides += bool(row[_OVERRIDDEN])
        self.audits += bool(row[_AUDIT])
        ai_label = row[_AI_LABEL]
        self.ai_labels[ai_label if ai_label is not None else "(none)"] += 1
        self.final_labels[row[_FINAL_LABEL]] += 1
        self.splits[row[_SPLIT]] += 1
        if row[_POLICY_VERSION] is not None:
            self.policy_versions[row[_POLICY_VERSION]] += 1
        if (model := row[_MODEL]) is not None:
            version = row[_MODEL_VERSION]
            self.models[f"{model} {version}" if version else model] += 1
        self.reviewers.add(row[_REVIEWER])
        decided = row[_DECIDED_AT]
        if self.first_decided_at is None or decided < self.first_decided_at:
            self.first_decided_at = decided
        if self.last_decided_at is None or decided > self.last_decided_at:
            self.last_decided_at = decided
        if self.first_review_id is None:
            self.first_review_id = row[_REVIEW_ID]
        self.last_review_id = row[_REVIEW_ID]

    def add_columns(self, columns: Sequence[Sequence[Any]]) -> None:
        """Count a batch of rows given as columns in SCHEMA order (same result as `add` on
        each row). Every column is counted by Counter in C, then the few distinct keys are
        renamed: this runs for every row of a million-row export."""
        review_ids = columns[_REVIEW_ID]
        if not review_ids:
            return
        self.rows += len(review_ids)
        self.overrides += sum(map(bool, columns[_OVERRIDDEN]))
        self.audits += sum(map(bool, columns[_AUDIT]))
        ai_labels = Counter(columns[_AI_LABEL])
        if None in ai_labels:
            ai_labels["(none)"] += ai_labels.pop(None)
        self.ai_labels.update(ai_labels)
        self.final_labels.update(columns[_FINAL_LABEL])
        self.splits.update(columns[_SPLIT])
        policy_versions = Counter(columns[_POLICY_VERSION])
        policy_versions.pop(None, None)
        self.policy_versions.update(policy_versions)
        models = Counter(zip(columns[_MODEL], columns[_MODEL_VERSION], strict=True))
        for (model, version), n in models.items():
            if model is not None:
                self.models[f"{model} {version}" if version else model] += n
        self.reviewers.update(columns[_REVIEWER])
        first, last = min(columns[_DECIDED_AT]), max(columns[_DECIDED_AT])
        if self.first_decided_at is None or first < self.first_decided_at:
            self.first_decided_at = first
        if self.last_decided_at is None or last > self.last_decided_at:
            self.last_decided_at = last
        if self.first_review_id is None:
            self.first_review_id = review_ids[0]
        self.last_review_id = review_ids[-1]

    @property
    def override_rate(self) -> float | None:
        return self.overrides / self.rows if self.rows else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts, every mapping sorted so the datasheet reads the same each time."""
        return {
            "row_count": self.rows,
            "override_count": self.overrides,
            "override_rate": self.override_rate,
            "audit_rows": self.audits,
            "counts_per_ai_label": dict(sorted(self.ai_labels.items())),
            "counts_per_final_label": dict(sorted(self.final_labels.items())),
            "counts_per_split": {split: self.splits.get(split, 0) for split in SPLITS},
            "policy_versions": {str(v): n for v, n in sorted(self.policy_versions.items())},
            "model_versions": dict(sorted(self.models.items())),
            "reviewer_count": len(self.reviewers),
            "decided_from": _iso(self.first_decided_at),
            "decided_to": _iso(self.last_decided_at),
            "review_ids": [self.first_review_id, self.last_review_id],
        }


def _iso(value: datetime | str | None) -> str | None:
    """ISO 8601 text of a timestamp given as a datetime or already as that text."""
    return value.isoformat() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class LabelScores:
    label: str
    support: int
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class ClassificationReport:
    """How well predictions match the human labels, overall and per label."""

    n: int
    accuracy: float | None
    per_label: tuple[LabelScores, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "per_label": [vars(scores) for scores in self.per_label],
        }


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def classification_report(
    truth: Sequence[str], predicted: Sequence[str | None], labels: Iterable[str] = ()
) -> ClassificationReport:
    """Accuracy and per-label precision, recall and F1 of `predicted` against `truth`.

    A None prediction (the model abstained) counts as wrong. Labels are those in `labels`,
    `truth` and `predicted`, sorted. Precision is None for a label never predicted, recall
    None for a label absent from the truth.
    """
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    true_positive: Counter[str] = Counter()
    predicted_count: Counter[str] = Counter(p for p in predicted if p is not None)
    actual_count: Counter[str] = Counter(truth)
    for actual, guess in zip(truth, predicted, strict=True):
        if actual == guess:
            true_positive[actual] += 1
    names = sorted(set(labels) | set(actual_count) | set(predicted_count))
    scores = []
    for label in names:
        precision = _ratio(true_positive[label], predicted_count[label])
        recall = _ratio(true_positive[label], actual_count[label])
        f1 = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(LabelScores(label, actual_count[label], precision, recall, f1))
    accuracy = _ratio(sum(true_positive.values()), len(truth))
    return ClassificationReport(len(truth), accuracy, tuple(scores))
