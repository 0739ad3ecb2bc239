"""Plain text written by admins (a queue's instructions) drawn as paragraphs and lists.

Admins write instructions in a textarea, usually as a sentence or two and a list of
labels ("- refund: ..."). Drawn as one paragraph, such a list ran together into a wall of
text. Blank lines separate paragraphs; lines starting with "- " or "* " form a bulleted
list and lines starting with "1. ", "2) " ... a numbered one; other line breaks are kept.
Only the structure is read: the text itself is escaped by the template like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import Flask

_BULLET = re.compile(r"^\s*[-*]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+(.*)$")


@dataclass
class Block:
    kind: str  # "p" (lines joined by line breaks), "ul" or "ol" (one entry per item)
    lines: list[str] = field(default_factory=list)


def text_blocks(text: str | None) -> list[Block]:
    """The text's paragraphs and lists, in order."""
    blocks: list[Block] = []
    for raw_line in (text or "").strip().splitlines():
        line = raw_line.strip()
        if not line:
            blocks.append(Block("break"))
            continue
        kind, content = "p", line
        for list_kind, pattern in (("ul", _BULLET), ("ol", _NUMBERED)):
            if match := pattern.match(line):
                kind, content = list_kind, match.group(1)
        if blocks and blocks[-1].kind == kind:
            blocks[-1].lines.append(content)
        else:
            blocks.append(Block(kind, [content]))
    return [block for block in blocks if block.kind != "break"]


def init_app(app: Flask) -> None:
    app.add_template_filter(text_blocks, "text_blocks")
