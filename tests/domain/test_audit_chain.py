"""The audit chain's canonical form is fixed: anyone re-checking an export relies on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from review.domain.audit_chain import (
    GENESIS_HASH,
    ChainChecker,
    ChainedEvent,
    canonical_bytes,
    event_hash,
    seal,
)

EVENT = ChainedEvent(
    id=7,
    created_at=datetime(2026, 11, 26, 21, 8, 17, 123456, tzinfo=UTC),
    actor="user:zoë@example.com",
    actor_user_id=3,
    action="item.overridden",
    queue_id=2,
    item_id=41,
    details={"final_label": "reject", "ai_label": "approve", "confidence": 0.5},
)


def test_canonical_form_is_sorted_compact_ascii_json_with_utc_microseconds():
    assert canonical_bytes(EVENT, 1, GENESIS_HASH) == (
        b'{"action":"item.overridden","actor":"user:zo\\u00eb@example.com","actor_user_id":3,'
        b'"created_at":"2026-11-26T21:08:17.123456Z","details":{"ai_label":"approve",'
        b'"confidence":0.5,"final_label":"reject"},"id":7,"item_id":41,"prev_hash":"'
        + GENESIS_HASH.encode()
        + b'","queue_id":2,"seq":1,"v":1}'
    )


def test_the_same_instant_in_another_zone_hashes_the_same():
    paris = timezone(timedelta(hours=1))
    shifted = ChainedEvent(**{**EVENT.__dict__, "created_at": EVENT.created_at.astimezone(paris)})
    assert event_hash(shifted, 1, GENESIS_HASH) == event_hash(EVENT, 1, GENESIS_HASH)


def test_naive_timestamps_are_refused():
    naive = ChainedEvent(**{**EVENT.__dict__, "created_at": datetime(2026, 1, 1)})
    with pytest.raises(ValueError):
        canonical_bytes(naive, 1, GENESIS_HASH)


def sealed_chain(count: int) -> list[ChainedEvent]:
    events = [ChainedEvent(**{**EVENT.__dict__, "id": n}) for n in range(1, count + 1)]
    seals = {s.event_id: s for s in seal(events, 0, GENESIS_HASH)}
    return [
        ChainedEvent(
            **{
                **e.__dict__,
                "seq": seals[e.id].seq,
                "prev_hash": seals[e.id].prev_hash,
                "hash": seals[e.id].hash,
            }
        )
        for e in events
    ]


def test_checker_accepts_a_sealed_chain_and_its_head():
    chain = sealed_chain(4)
    checker = ChainChecker()
    for event in chain:
        checker.feed(event)
    checker.check_head(4, chain[-1].hash)
    assert checker.problem is None and checker.checked == 4


def test_checker_reports_only_the_first_problem():
    chain = sealed_chain(5)
    chain[1] = ChainedEvent(**{**chain[1].__dict__, "details": {"edited": True}})
    del chain[3]
    checker = ChainChecker()
    for event in chain:
        checker.feed(event)
    checker.check_head(5, "x")
    assert checker.problem is not None
    assert (checker.problem.kind, checker.problem.event_id) == ("edited", 2)
