"""Marking the AI's evidence quotes where they occur in the item's text, safely escaped."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from markupsafe import Markup, escape

from review.web.queue import bp

# Quotes shorter than this would light up half the text ("a", "the").
MIN_QUOTE = 3


def _pattern(quotes: Iterable[str]) -> re.Pattern[str] | None:
    return _compiled(tuple(quotes))


# The screen asks for the same quotes' pattern once per text field of the item, twice per
# answer (the item shown and the one prefetched): building and compiling it each time cost
# more than matching. Keyed by the quotes themselves, so a cache hit is the same pattern.
@lru_cache(maxsize=256)
def _compiled(quotes: tuple[str, ...]) -> re.Pattern[str] | None:
    usable = sorted(
        {q.strip() for q in quotes if len(q.strip()) >= MIN_QUOTE}, key=len, reverse=True
    )
    if not usable:
        return None
    # Whitespace in a quote matches any run of whitespace in the text (line breaks differ).
    parts = [r"\s+".join(re.escape(word) for word in quote.split()) for quote in usable]
    return re.compile("|".join(parts), re.IGNORECASE)


@bp.app_template_filter("highlight")
def highlight(text: str, quotes: Iterable[str] | None) -> Markup:
    """The text, HTML-escaped, with each quote wrapped in <mark>; plain escaped text without."""
    pattern = _pattern(quotes or ())
    if pattern is None:
        return escape(text)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(escape(text[last : match.start()]))
        out.append(Markup('<mark class="evidence">%s</mark>') % match.group(0))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def quotes_found(texts: Iterable[str], quotes: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split quotes into those that occur in some text and those that do not."""
    found: list[str] = []
    missing: list[str] = []
    joined = "\n".join(texts)
    for quote in quotes:
        pattern = _pattern([quote])
        (found if pattern is not None and pattern.search(joined) else missing).append(quote)
    return found, missing


def evidence_of(recommendation: object) -> list[str]:
    """The recommendation's evidence quotes, if the recommender stored any (strings only)."""
    evidence = getattr(recommendation, "evidence", None) if recommendation is not None else None
    if not isinstance(evidence, list):
        return []
    return [quote for quote in evidence if isinstance(quote, str) and quote.strip()]
