"""Validating the model's answer: the schema's shape is not enough."""

import json

import pytest

from review.domain.ai_answer import InvalidAnswer, parse_answer

LABELS = ["refund", "spam"]
SOURCE = '{"body": "I was charged twice.  Please refund me."}'


def answer(**changes):
    data = {
        "label": "refund",
        "confidence": 0.8,
        "rationale": "Double charge.",
        "evidence": ["charged   TWICE", "invented quote"],
    }
    data.update(changes)
    return json.dumps(data)


def test_a_valid_answer_keeps_only_quotes_found_in_the_item():
    parsed = parse_answer(answer(), LABELS, SOURCE)
    assert (parsed.label, parsed.confidence, parsed.evidence) == (
        "refund",
        0.8,
        ("charged   TWICE",),
    )


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        (answer(label="other"), "unknown_label"),
        (answer(confidence=1.2), "bad_confidence"),
        (answer(confidence=-0.1), "bad_confidence"),
        (answer(confidence="0.9"), "bad_confidence"),
        (answer(confidence=True), "bad_confidence"),
        (answer(rationale="  "), "missing_rationale"),
        (answer(evidence="charged twice"), "invalid_json"),
    ],
)
def test_invalid_answers_are_refused_with_their_kind(raw, kind):
    with pytest.raises(InvalidAnswer) as info:
        parse_answer(raw, LABELS, SOURCE)
    assert info.value.kind == kind
