"""Past human decisions that look like a new item, for the prompt's examples.

Similarity is TF-IDF cosine over the payload text. Among the most similar decisions,
overrides come first: they show the model exactly where an earlier answer was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Item, Review
from review.domain.text import payload_document

# The newest decisions searched; older ones rarely beat them and cost time per item.
POOL_SIZE = 2000
MAX_EXAMPLES = 5
MAX_EXAMPLE_TOKENS = 1500
MAX_EXAMPLE_CHARS = 800
CHARS_PER_TOKEN = 4
MIN_RELATIVE_SIMILARITY = 0.5  # a conservative rule of thumb for English text


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    overridden: bool
    ai_label: str | None
    similarity: float


def similar_decisions(
    session: Session,
    queue_id: int,
    document: str,
    *,
    exclude_item_id: int | None = None,
    max_examples: int = MAX_EXAMPLES,
    max_tokens: int = MAX_EXAMPLE_TOKENS,
) -> list[Example]:
    """Up to `max_examples` decided items of the queue most similar to `document`,
    overrides first, within about `max_tokens` tokens of example text in all."""
    rows = session.execute(
        select(Item.payload, Review.final_label, Review.action, Review.ai_label)
        .join(Review, Review.item_id == Item.id)
        .where(Item.queue_id == queue_id, Item.id != (exclude_item_id or -1))
        .order_by(Review.id.desc())
        .limit(POOL_SIZE)
    ).all()
    if not rows or max_examples <= 0:
        return []
    texts = [payload_document(payload)[:MAX_EXAMPLE_CHARS] for payload, *_ in rows]
    try:
        matrix = TfidfVectorizer(sublinear_tf=True).fit_transform([document, *texts])
    except ValueError:  # no word in any document: nothing is similar
        return []
    scores = linear_kernel(matrix[0:1], matrix[1:]).ravel()
    best = float(scores.max()) if len(scores) else 0.0
    # Only decisions nearly as close as the closest one: an override of an unrelated item
    # teaches nothing, however instructive overrides are in general.
    ranked = sorted(
        (
            i
            for i in range(len(rows))
            if scores[i] > 0 and scores[i] >= best * MIN_RELATIVE_SIMILARITY
        ),
        key=lambda i: -scores[i],
    )[: max_examples * 2]
    ranked.sort(key=lambda i: (rows[i][2] != "overridden", -scores[i]))
    chosen: list[Example] = []
    budget = max_tokens * CHARS_PER_TOKEN
    for i in ranked:
        if len(chosen) == max_examples or len(texts[i]) > budget:
            break
        budget -= len(texts[i])
        _, label, action, ai_label = rows[i]
        chosen.append(Example(texts[i], label, action == "overridden", ai_label, float(scores[i])))
    return chosen
