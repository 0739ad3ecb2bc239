"""PII redaction for text that leaves for an external AI provider.

Pure: regular expressions plus checksums, so a random 16-digit order number is not taken
for a card (Luhn) and an upper-case word that looks like an IBAN is kept unless its
mod-97 check holds. Each match is replaced by a typed placeholder such as `[EMAIL]`, so
the model still knows that an e-mail address was there.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped by single spaces or dashes.
CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# Country code, two check digits, then 11-30 letters/digits, optionally in groups of four.
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
# International (+..) or national numbers with separators; _phone() then wants 10-15
# digits (8+ after a "+"), so dates such as 2024-01-15 and short order numbers stay.
PHONE_RE = re.compile(
    r"(?<![\w+])(?<!\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ .-]?\d){6,14}"
    r"(?!\w|[ .-]\d)"
)


class PatternError(ValueError):
    """A queue-defined redaction pattern is not a valid regular expression."""


@dataclass(frozen=True)
class Redacted:
    text: str
    counts: Mapping[str, int] = field(default_factory=dict)


def luhn_valid(digits: str) -> bool:
    """True when the digit string passes the Luhn checksum used by payment cards."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """True when the IBAN (spaces allowed) passes the ISO 13616 mod-97 check."""
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


def compile_patterns(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    """Compile queue-defined patterns; raise PatternError naming the first bad one."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise PatternError(f"{pattern!r}: {exc}") from exc
    return compiled


def _replace(
    text: str,
    regex: re.Pattern[str],
    tag: str,
    counts: Counter[str],
    accept: Callable[[str], bool] = lambda _: True,
) -> str:
    def substitute(match: re.Match[str]) -> str:
        if not accept(match.group(0)):
            return match.group(0)
        counts[tag] += 1
        return f"[{tag}]"

    return regex.sub(substitute, text)


def _card(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _phone(candidate: str) -> bool:
    digits = sum(char.isdigit() for char in candidate)
    return 8 <= digits <= 15 if candidate.startswith("+") else 10 <= digits <= 15


def redact_text(text: str, custom: Iterable[re.Pattern[str]] = ()) -> Redacted:
    """`text` with e-mails, IBANs, card numbers, phone numbers and custom matches replaced.

    Order matters: cards and IBANs before phones, since a card number also looks like a
    long phone number; custom patterns first, so a queue's own rule wins.
    """
    counts: Counter[str] = Counter()
    for regex in custom:
        text = _replace(text, regex, "REDACTED", counts)
    text = _replace(text, EMAIL_RE, "EMAIL", counts)
    text = _replace(text, IBAN_RE, "IBAN", counts, iban_valid)
    text = _replace(text, CARD_RE, "CARD", counts, _card)
    text = _replace(text, PHONE_RE, "PHONE", counts, _phone)
    return Redacted(text, dict(counts))


def redact_value(value: Any, custom: Iterable[re.Pattern[str]] = ()) -> tuple[Any, Counter[str]]:
    """A JSON value with every string in it (keys excepted) redacted, and the counts."""
    patterns = list(custom)
    counts: Counter[str] = Counter()

    def walk(inner: Any) -> Any:
        if isinstance(inner, str):
            result = redact_text(inner, patterns)
            counts.update(result.counts)
            return result.text
        if isinstance(inner, dict):
            return {key: walk(item) for key, item in inner.items()}
        if isinstance(inner, list):
            return [walk(item) for item in inner]
        return inner

    return walk(value), counts
