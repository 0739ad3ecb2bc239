"""Why the local model chose its label: the words in the item that pushed hardest for it.

The model is TF-IDF features into a (possibly calibrated) logistic regression, so each
feature's push towards a label is its TF-IDF value times the label's weight for it,
measured against the average label (softmax only cares about differences). Calibration
rescales the scores but does not reorder a document's features, so the weights are
averaged over the calibration folds' classifiers. The words found become the
recommendation's evidence: the review screen highlights them where they occur, as it does
an external model's quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.pipeline import Pipeline

# At most this many words or phrases are named; shorter ones would light up half the text.
MAX_TERMS = 3
MIN_TERM_CHARS = 3
# A word is named only if it pushed at least this share of the strongest one: the tail
# of weak pushes says little and mostly names filler.
MIN_SHARE_OF_TOP = 0.2


def relative_weights(pipeline: Pipeline) -> np.ndarray:
    """(labels × features): each label's weight for each feature, less the labels' mean.
    Rows follow pipeline.classes_."""
    classifier = pipeline.named_steps["classifier"]
    if isinstance(classifier, CalibratedClassifierCV):
        fitted = [c.estimator for c in classifier.calibrated_classifiers_]
    else:
        fitted = [classifier]
    coef = np.mean([np.asarray(c.coef_, dtype=np.float64) for c in fitted], axis=0)
    if coef.shape[0] == 1:  # two labels: one row of weights, for the second label
        coef = np.vstack([-coef[0], coef[0]])
    result: np.ndarray = coef - coef.mean(axis=0)
    return result


def _occurs(term: str, texts: str) -> re.Match[str] | None:
    """The term as the text writes it. TF-IDF lowercases, splits on anything but word
    characters and drops one-letter tokens: its "hasn" comes from "hasn't" and its
    "message please" from "message. Please". Neither reads as a quote, so a word must
    stand whole (not before an apostrophe and a letter) and a phrase's words be separated
    by spaces only; a term found only like that is not named."""
    words = term.split()
    pattern = (
        r"(?<![\w'’])" + r"[ \t]+".join(re.escape(word) for word in words) + r"(?![\w]|['’]\w)"
    )
    return re.search(pattern, texts, re.IGNORECASE)


def pushing_terms(
    features: Any,
    label_index: int,
    weights: np.ndarray,
    vocabulary: Sequence[str],
    texts: str,
) -> list[str]:
    """The item's words that pushed most for the label, as written in `texts` (the
    payload's values, not its keys: a quote must be something the screen can show).
    `features`: the item's TF-IDF row (sparse, 1 × features)."""
    row = features.tocsr()
    indices = row.indices
    push = row.data * weights[label_index, indices]
    chosen: list[str] = []
    taken_words: set[str] = set()
    order = np.argsort(-push)
    floor = push[order[0]] * MIN_SHARE_OF_TOP if len(order) else 0.0
    for position in order:
        if push[position] <= 0 or push[position] < floor or len(chosen) >= MAX_TERMS:
            break
        term = vocabulary[indices[position]]
        words = set(term.split())
        if len(term) < MIN_TERM_CHARS or words & taken_words or words <= ENGLISH_STOP_WORDS:
            # Too short; covered by a phrase already named (or the other way round); or
            # only filler ("in the", "your"), which no reviewer can check a label against.
            continue
        match = _occurs(term, texts)
        if match is None:
            continue  # a word of a field's name, not of its text
        chosen.append(match.group(0))
        taken_words |= words
    return chosen


def rationale(label: str, terms: Sequence[str], runner_up: tuple[str, float] | None) -> str:
    """The recommendation's rationale in words a reviewer can check against the text."""
    if terms:
        quoted = ", ".join(f"“{term}”" for term in terms)
        text = f"Words that point to “{label}”: {quoted}."
    else:
        text = f"No single word points to “{label}”; the wording as a whole does."
    if runner_up is not None:
        text += f" Next most likely: “{runner_up[0]}” at {runner_up[1]:.0%}."
    return text
