"""Turning an item payload into one text document for the local model."""

from __future__ import annotations

from typing import Any


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            out.append(str(key))
            _strings(inner, out)
    elif isinstance(value, list | tuple):
        for inner in value:
            _strings(inner, out)


def payload_document(payload: dict[str, Any]) -> str:
    """Every key and string value of the payload, depth first, joined by spaces.

    Keys are kept because they say which field a word came from ("refund" in a subject
    differs from "refund" in a signature only by its neighbours, but a key such as
    "chargeback_reason" is informative on its own). Numbers and booleans are left out.
    """
    parts: list[str] = []
    _strings(payload, parts)
    return " ".join(parts)


def payload_strings(payload: dict[str, Any]) -> list[str]:
    """Every string value of the payload (no keys), at any depth: the text a reviewer sees,
    where a quote from a model must be found to be highlighted."""
    found: list[str] = []
    stack: list[Any] = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return found


def payload_values_text(payload: dict[str, Any]) -> str:
    """payload_strings as one text, a line each (a quote never spans two of them)."""
    return "\n".join(payload_strings(payload))
