"""Checking a language model's classification answer before it may become a recommendation.

The provider's JSON schema constrains the shape, not the values: the confidence bounds,
the label being one of the queue's, and the quotes really coming from the item are
checked here, and anything wrong makes the answer a failure, never a recommendation.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_RATIONALE_CHARS = 2000
MAX_EVIDENCE = 5
MAX_QUOTE_CHARS = 300


class InvalidAnswer(ValueError):
    """The answer cannot be used. `kind` is a short machine-readable reason."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    label: str
    confidence: float
    rationale: str
    evidence: tuple[str, ...]


def answer_schema(labels: list[str]) -> dict[str, Any]:
    """The JSON schema asked of the model: a label of the queue's, a confidence, a
    rationale and verbatim quotes."""
    return {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": list(labels)},
            "confidence": {"type": "number"},
            "rationale": {"type": "string"},
            "evidence": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["label", "confidence", "rationale", "evidence"],
        "additionalProperties": False,
    }


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def parse_answer(raw: str, labels: list[str], source_text: str) -> Answer:
    """The validated answer in `raw` (the model's JSON text).

    Raises InvalidAnswer for text that is not a JSON object of the schema's shape, a label
    not among `labels`, a confidence that is not a finite number in [0, 1], or an empty
    rationale. Quotes not found verbatim (ignoring case and whitespace) in `source_text`
    are dropped rather than shown: a reviewer must never see invented evidence.
    """
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise InvalidAnswer("invalid_json", f"answer is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidAnswer("invalid_json", "answer is not a JSON object")
    label = data.get("label")
    if not isinstance(label, str) or label not in labels:
        raise InvalidAnswer("unknown_label", f"label {label!r} is not one of the queue's labels")
    confidence = data.get("confidence")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not math.isfinite(confidence)
        or not 0.0 <= confidence <= 1.0
    ):
        raise InvalidAnswer("bad_confidence", f"confidence {confidence!r} is not in [0, 1]")
    rationale = data.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        raise InvalidAnswer("missing_rationale", "answer has no rationale")
    evidence = data.get("evidence", [])
    if not isinstance(evidence, list) or not all(isinstance(q, str) for q in evidence):
        raise InvalidAnswer("invalid_json", "evidence is not a list of strings")
    haystack = _normalise(source_text)
    quotes = tuple(
        q.strip()[:MAX_QUOTE_CHARS] for q in evidence if q.strip() and _normalise(q) in haystack
    )[:MAX_EVIDENCE]
    return Answer(label, float(confidence), rationale.strip()[:MAX_RATIONALE_CHARS], quotes)
