"""A per-queue circuit breaker for calls to an AI provider, shared by every worker via Redis.

Closed: calls go through; each failure adds one to a counter that a success resets.
After FAILURES_TO_OPEN failures in a row the circuit opens for `cooldown` seconds, and
items go straight to people instead of waiting on a provider that keeps failing. When
the cooldown is over the circuit is half-open: exactly one caller (the probe) may call;
its success closes the circuit, its failure opens it for another cooldown.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from redis import Redis

FAILURES_TO_OPEN = 5
COOLDOWN_SECONDS = 60.0


@dataclass(frozen=True)
class Permit:
    """Leave to call the provider; `probe` when this call decides whether to close."""

    allowed: bool
    probe: bool = False
    reason: str = ""


class CircuitBreaker:
    def __init__(
        self,
        redis: Redis,
        name: str,
        failures_to_open: int = FAILURES_TO_OPEN,
        cooldown_seconds: float = COOLDOWN_SECONDS,
    ) -> None:
        self.redis = redis
        self.failures_key = f"{name}:failures"
        self.open_until_key = f"{name}:open-until"
        self.probe_key = f"{name}:probe"
        self.failures_to_open = failures_to_open
        self.cooldown = cooldown_seconds

    def state(self) -> str:
        """ "closed", "open" or "half_open"."""
        open_until = self.redis.get(self.open_until_key)
        if open_until is None:
            return "closed"
        return "open" if float(open_until) > time.time() else "half_open"

    def permit(self) -> Permit:
        """May the caller call now? Half-open, only the one caller that wins the probe may."""
        state = self.state()
        if state == "closed":
            return Permit(True)
        if state == "open":
            return Permit(False, reason="the provider kept failing; calls are paused")
        # The probe lock outlives a slow call, then frees itself if the prober died.
        ttl = max(1, int(self.cooldown))
        if self.redis.set(self.probe_key, secrets.token_hex(4), nx=True, ex=ttl):
            return Permit(True, probe=True)
        return Permit(False, reason="the provider kept failing; a probe call is checking it")

    def record_success(self) -> None:
        with self.redis.pipeline() as pipe:
            pipe.delete(self.failures_key, self.open_until_key, self.probe_key)
            pipe.execute()

    def record_failure(self, probe: bool = False) -> bool:
        """Count a failure; open the circuit at the threshold or when a probe failed.

        Returns True if this failure opened (or re-opened) the circuit.
        """
        with self.redis.pipeline() as pipe:
            pipe.incr(self.failures_key)
            pipe.expire(self.failures_key, int(self.cooldown * 10) + 60)
            failures = int(pipe.execute()[0])
        if probe or failures >= self.failures_to_open:
            with self.redis.pipeline() as pipe:
                pipe.set(self.open_until_key, time.time() + self.cooldown)
                pipe.delete(self.probe_key)
                pipe.execute()
            return True
        return False
