"""A queue's AI settings: which model, the daily budget, PII redaction and batch mode.

They travel in the queue's `recommender` object:
`{"kind": "claude", "model": "claude-haiku-5-5", "daily_budget_usd": 5, "redact": true,
"redact_patterns": ["ACCT-\\\\d{6}"], "batch": false}`.
"""

from __future__ import annotations

from typing import Any

from models import Queue
from review.domain.pricing import price_of
from review.domain.redaction import PatternError, compile_patterns

# The current Haiku (its overview page says "Latest"; Haiku 4.5 is legacy since Haiku 5.5
# came out) and priced in review/domain/pricing.py: fast and cheap enough to read every item.
DEFAULT_CLAUDE_MODEL = "claude-haiku-5-5"
MAX_PATTERNS = 20
MAX_PATTERN_CHARS = 500


def model_for(queue: Queue) -> str:
    """The model the queue's Claude recommender calls."""
    return queue.recommender_model or DEFAULT_CLAUDE_MODEL


def parse_ai_settings(
    recommender: dict[str, Any], kind: str, errors: dict[str, str]
) -> dict[str, Any]:
    """Queue column values for the AI settings in `recommender`; bad fields go in `errors`
    as "recommender.<field>"."""
    fields: dict[str, Any] = {}
    budget = recommender.get("daily_budget_usd")
    if budget is not None and (
        isinstance(budget, bool) or not isinstance(budget, int | float) or budget < 0
    ):
        errors["recommender.daily_budget_usd"] = "must be a number >= 0, or null for no cap"
    elif budget is not None and kind == "claude":
        model = recommender.get("model") or DEFAULT_CLAUDE_MODEL
        if isinstance(model, str) and price_of(model) is None:
            errors["recommender.daily_budget_usd"] = (
                f"model {model} has no known price, so a budget cannot be enforced"
            )
    fields["ai_daily_budget_usd"] = float(budget) if budget is not None else None
    redact = recommender.get("redact", True)
    if not isinstance(redact, bool):
        errors["recommender.redact"] = "must be true or false"
    fields["ai_redact"] = redact is not False
    patterns = recommender.get("redact_patterns") or []
    if (
        not isinstance(patterns, list)
        or len(patterns) > MAX_PATTERNS
        or not all(isinstance(p, str) and 0 < len(p) <= MAX_PATTERN_CHARS for p in patterns)
    ):
        errors["recommender.redact_patterns"] = (
            f"must be a list of at most {MAX_PATTERNS} regular expressions"
        )
        patterns = []
    else:
        try:
            compile_patterns(patterns)
        except PatternError as exc:
            errors["recommender.redact_patterns"] = f"invalid regular expression {exc}"
    fields["ai_redact_patterns"] = patterns or None
    batch = recommender.get("batch", False)
    if not isinstance(batch, bool):
        errors["recommender.batch"] = "must be true or false"
    fields["ai_batch"] = batch is True
    return fields


def ai_settings_as_dict(queue: Queue) -> dict[str, Any]:
    return {
        "daily_budget_usd": queue.ai_daily_budget_usd,
        "redact": queue.ai_redact,
        "redact_patterns": list(queue.ai_redact_patterns or []),
        "batch": queue.ai_batch,
    }
