"""The audit log's hash chain: the canonical form of an event and the checks on a chain.

Canonical form (version 1) of an event, the bytes its `hash` is the SHA-256 of:

    UTF-8 bytes of a JSON object with exactly these keys
      "v"             1 (the format version, so a later format can coexist)
      "seq"           the event's position in the chain, 1, 2, 3 ... without gaps
      "id"            the row id
      "created_at"    ISO 8601 UTC with microseconds and a "Z": "2026-11-26T21:08:17.123456Z"
      "actor"         the actor label ("user:a@b.c", "token:ab12:a@b.c", "system")
      "actor_user_id" integer or null
      "action"        e.g. "item.overridden"
      "queue_id"      integer or null
      "item_id"       integer or null
      "details"       the event's details object as stored
      "prev_hash"     the previous event's hash (64 hex digits), or 64 zeros for seq 1
    serialised with keys sorted at every level, separators "," and ":" (no whitespace),
    non-ASCII characters escaped as \\uXXXX, floats in Python's shortest round-trip form
    (NaN and infinities, which `record` never stores, would appear as NaN and Infinity).

Any change to a field, to the order (seq) or to the link (prev_hash) changes the hash, and
every later event's prev_hash then no longer matches. Anyone can re-check a chain from an
export with this description and sha256 alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainedEvent:
    """An audit event as the chain sees it: its content and its seal (None if unsealed)."""

    id: int
    created_at: datetime
    actor: str
    actor_user_id: int | None
    action: str
    queue_id: int | None
    item_id: int | None
    details: Mapping[str, Any]
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None


def _timestamp(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(event: ChainedEvent, seq: int, prev_hash: str) -> bytes:
    """The event's canonical serialisation at position `seq` after `prev_hash`."""
    content = {
        "v": FORMAT_VERSION,
        "seq": seq,
        "id": event.id,
        "created_at": _timestamp(event.created_at),
        "actor": event.actor,
        "actor_user_id": event.actor_user_id,
        "action": event.action,
        "queue_id": event.queue_id,
        "item_id": event.item_id,
        "details": event.details,
        "prev_hash": prev_hash,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("utf-8")


def event_hash(event: ChainedEvent, seq: int, prev_hash: str) -> str:
    return hashlib.sha256(canonical_bytes(event, seq, prev_hash)).hexdigest()


@dataclass(frozen=True)
class Seal:
    event_id: int
    seq: int
    prev_hash: str
    hash: str


def seal(events: Iterable[ChainedEvent], last_seq: int, last_hash: str) -> Iterator[Seal]:
    """Seals for unsealed events, in the order given, continuing a chain at its head."""
    seq, prev = last_seq, last_hash
    for event in events:
        seq += 1
        digest = event_hash(event, seq, prev)
        yield Seal(event.id, seq, prev, digest)
        prev = digest


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a chain, naming the row (event id) and position."""

    kind: str  # edited | missing | relinked | out_of_order | head_mismatch | unsealed
    seq: int | None
    event_id: int | None
    message: str


class ChainChecker:
    """Walks sealed events in seq order and reports the first break.

    Fed event by event (so a chain of millions is checked in bounded memory); `problem`
    holds the first break found, after which further events are ignored.
    """

    def __init__(self) -> None:
        self.last_seq = 0
        self.last_hash = GENESIS_HASH
        self.last_id: int | None = None
        self.checked = 0
        self.problem: Problem | None = None

    def feed(self, event: ChainedEvent) -> None:
        if self.problem is not None:
            return
        self.problem = self._check(event)
        if self.problem is None:
            self.checked += 1
            self.last_seq = event.seq or 0
            self.last_hash = event.hash or ""
            self.last_id = event.id

    def _check(self, event: ChainedEvent) -> Problem | None:
        expected = self.last_seq + 1
        assert event.seq is not None
        if event.seq != expected:
            after = f"after event {self.last_id}" if self.last_id else "at the start"
            return Problem(
                "missing",
                expected,
                event.id,
                f"seq {expected} is missing ({after}, before event {event.id} at seq "
                f"{event.seq}): an event was deleted",
            )
        if event.prev_hash != self.last_hash:
            return Problem(
                "relinked",
                event.seq,
                event.id,
                f"event {event.id} (seq {event.seq}) does not link to event {self.last_id} "
                "before it: an event was deleted, replaced, re-hashed or inserted out of order",
            )
        if event.hash != event_hash(event, event.seq, self.last_hash):
            return Problem(
                "edited",
                event.seq,
                event.id,
                f"event {event.id} (seq {event.seq}) does not match its hash: "
                "its content was edited",
            )
        return None

    def check_head(self, head_seq: int | None, head_hash: str | None) -> None:
        """Compare the end of the walk with the recorded chain head (catches a cut tail).

        `head_seq` None means there is no head row: fine for an empty chain only.
        """
        if self.problem is not None or (head_seq is None and self.last_seq == 0):
            return
        if head_seq is None:
            message = f"the chain head is missing although {self.last_seq} events are sealed"
        elif head_seq != self.last_seq or head_hash != self.last_hash:
            message = (
                f"the chain ends at seq {self.last_seq} (event {self.last_id}) but its head "
                f"records seq {head_seq}: later events were deleted, or the head was edited"
            )
        else:
            return
        self.problem = Problem("head_mismatch", head_seq, None, message)
