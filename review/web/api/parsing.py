"""Reading API input: the JSON body, ids and slugs in paths, flags in query strings.

Everything here turns bad input into a ServiceError (a 4xx) before it can reach the
database, where it would otherwise fail as a 500 (e.g. NUL characters in PostgreSQL text,
integers too big for SQLite).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask import request

from review.services.errors import NotFound, ServiceError, ValidationFailed
from review.web.converters import MAX_ROW_ID

# Integers beyond 64 bits cannot be stored and overflow float conversion in validators.
MAX_JSON_INT = 2**63 - 1
ID_RE = re.compile(r"[0-9]{1,19}")
TRUE_VALUES, FALSE_VALUES = ("1", "true"), ("0", "false")


class _NotStrictJson(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotStrictJson(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NotStrictJson(f"number {text[:40]} is too large")
    return number


def _bounded_int(text: str) -> int:
    number = int(text)  # Python refuses absurdly long digit strings with a ValueError
    if abs(number) > MAX_JSON_INT:
        raise _NotStrictJson(f"integer {text[:40]}... is outside the 64-bit range")
    return number


def _bad_text(text: str) -> bool:
    """NUL (refused by PostgreSQL) or a lone surrogate (not encodable as UTF-8)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_bad_string(value: Any) -> str | None:
    """The path (e.g. `items[3].payload.text`) of the first unusable string, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str) and _bad_text(node):
            return path or "body"
        if isinstance(node, dict):
            for key, child in node.items():
                if _bad_text(key):
                    return path or "body"
                stack.append((child, f"{path}.{key}" if path else key))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node))
    return None


def json_body() -> Any:
    """The request body as strict JSON (no NaN or Infinity, numbers that fit 64 bits).

    Raises ServiceError (400) naming `body` when it is not JSON, and ValidationFailed
    (422) naming the field when a string holds NUL or a lone surrogate. Werkzeug raises
    413 past MAX_CONTENT_LENGTH.
    """
    raw = request.get_data(cache=False)
    try:
        body = json.loads(
            raw,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise ServiceError(
            f"the body is not valid JSON: {reason}", {"body": "must be valid JSON"}
        ) from exc
    if (bad := _first_bad_string(body)) is not None:
        raise ValidationFailed(
            f"{bad} contains a NUL character or invalid Unicode",
            {bad: "must not contain NUL characters or invalid Unicode"},
        )
    return body


def path_id(raw: str, what: str) -> int:
    """A database id from a URL segment; anything that cannot be one is simply not found."""
    # An id beyond the 32-bit column names nothing, and comparing with it fails inside
    # PostgreSQL (a 500 found by tests/web/api/test_fuzz.py).
    if not ID_RE.fullmatch(raw) or int(raw) > MAX_ROW_ID:
        raise NotFound(f"no {what} {raw[:40]!r}", {f"{what}_id": "must be a positive integer"})
    return int(raw)


def query_flag(name: str) -> bool:
    """A boolean query parameter: 1/true/0/false (any case), absent meaning false."""
    raw = request.args.get(name)
    if raw is None:
        return False
    if raw.lower() in TRUE_VALUES:
        return True
    if raw.lower() in FALSE_VALUES:
        return False
    raise ServiceError(
        f"query parameter {name} must be 1, true, 0 or false", {name: "must be 1, true, 0 or false"}
    )
