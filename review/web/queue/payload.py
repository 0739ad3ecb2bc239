"""Turning an item's JSON payload into something a person can read.

The template does the rendering (and so the escaping); this module only sorts values into
kinds. Long strings become paragraphs, scalars and short strings a key-value list, and
objects and lists nested definition lists down to MAX_DEPTH, below which the rest is shown
as compact JSON text so a hostile, deeply nested payload cannot exhaust the renderer.
The queue's `display_fields` lead, in their order, before all of that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from review.web.queue import bp
from review.web.queue.highlight import quotes_found

# Strings at most this long, without line breaks, read better in the key-value list.
SHORT_TEXT = 80
MAX_DEPTH = 8
# Text longer than this starts collapsed to an excerpt, unless the AI's evidence is in it.
LONG_TEXT = 1500
EXCERPT = 400


@dataclass(frozen=True)
class PayloadView:
    texts: list[tuple[str, str]]
    fields: list[tuple[str, Any]]
    nested: list[tuple[str, Any]]
    # The queue's display fields present in the payload, in that order, each with the group
    # ("texts", "fields" or "nested") that says how it is drawn. Shown before the rest.
    leading: list[tuple[str, Any, str]] = field(default_factory=list)


def _is_short_text(value: str) -> bool:
    return len(value) <= SHORT_TEXT and "\n" not in value


def _group(value: Any) -> str:
    if isinstance(value, str) and not _is_short_text(value):
        return "texts"
    if isinstance(value, dict | list):
        return "nested"
    return "fields"


def ordered_payload(payload: dict[str, Any], first: Sequence[str]) -> dict[str, Any]:
    """The payload with the `first` keys leading, in that order, then the rest as they come."""
    leading = {key: payload[key] for key in first if key in payload}
    return {**leading, **{k: v for k, v in payload.items() if k not in leading}}


def payload_view(payload: dict[str, Any], first: Sequence[str] = ()) -> PayloadView:
    """Sort the payload's top-level fields into paragraphs, key-value pairs and nested data,
    after the `first` fields (the queue's display fields), which lead in their own order."""
    view = PayloadView([], [], [], [])
    leading = set(first)
    for key, value in ordered_payload(payload, first).items():
        group = _group(value)
        if key in leading:
            view.leading.append((key, value, group))
        else:
            getattr(view, group).append((key, value))
    return view


@bp.app_template_filter("payload_kind")
def payload_kind(value: Any) -> str:
    """ "object", "list", "text", "empty" or "scalar": which way the template draws the
    value. "empty" is null or blank text, which reads as nothing at all (or as the word
    "null") unless it is said to have no value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "empty"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "text"
    return "scalar"


@bp.app_template_filter("paragraphs")
def paragraphs(text: str) -> list[str]:
    """Split text on blank lines; single line breaks stay inside a paragraph."""
    return [part for part in re.split(r"\n\s*\n", text.strip()) if part.strip()] or [""]


@bp.app_template_filter("scalar_text")
def scalar_text(value: Any) -> str:
    """Numbers as written, booleans as JSON spells them (null is drawn as "empty")."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return str(value)


@bp.app_template_filter("compact_json")
def compact_json(value: Any) -> str:
    """JSON text for data nested too deep to draw; the template escapes it like any text."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


@bp.app_template_filter("collapses")
def collapses(text: str, evidence: list[str] | None) -> bool:
    """True if the text is long and holds none of the evidence quotes (which must show)."""
    return len(text) > LONG_TEXT and not quotes_found([text], evidence or [])[0]


@bp.app_template_filter("excerpt")
def excerpt(text: str) -> str:
    """The start of a long text, cut at a word boundary where there is one."""
    cut = text[:EXCERPT]
    space = cut.rfind(" ")
    return (cut[:space] if space > EXCERPT // 2 else cut).rstrip() + " …"
