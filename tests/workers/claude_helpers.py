"""Fixtures for Claude tests: the fake Messages API and apps whose config points at it."""

from __future__ import annotations

import pytest

from tests.fakes.anthropic_server import FakeAnthropic


@pytest.fixture
def fake_anthropic():
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


@pytest.fixture
def claude_app(app, fake_anthropic):
    """The test app with a Claude key pointing at the fake, short timeouts and no waits
    between retries (RQ then re-enqueues at once, so a burst worker runs every attempt)."""
    app.config.update(
        ANTHROPIC_API_KEY="test-key",
        ANTHROPIC_BASE_URL=fake_anthropic.url,
        AI_TIMEOUT_SECONDS=1.0,
        AI_RETRY_INTERVALS=[0, 0, 0],
        AI_BREAKER_FAILURES=50,
        AI_BREAKER_COOLDOWN_SECONDS=60,
        AI_SLOT_WAIT_SECONDS=2,
    )
    return app


def claude_queue(factory, **recommender):
    return factory.queue(
        labels=["refund", "bug_report", "spam"],
        instructions="Refunds for double charges; bugs for broken features; spam for ads.",
        recommender={"kind": "claude", **recommender},
    )
