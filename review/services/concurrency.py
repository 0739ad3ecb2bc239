"""A counting semaphore in Redis: at most N concurrent provider calls across all workers.

Holders are members of a sorted set scored by when their hold expires, so a worker that
dies holding a slot frees it after `hold_seconds` without anyone's help.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

# Drop expired holders, then take a slot if fewer than the limit are held. Atomic in Redis.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
"""


class SlotUnavailable(Exception):
    """No slot freed up within the wait: every allowed call is in flight."""


class Semaphore:
    def __init__(self, redis: Redis, key: str, limit: int, hold_seconds: float) -> None:
        self.redis = redis
        self.key = key
        self.limit = limit
        self.hold_seconds = hold_seconds
        self._acquire = redis.register_script(_ACQUIRE)

    def try_acquire(self) -> str | None:
        """A token for a slot, or None if all `limit` slots are held."""
        token = secrets.token_hex(8)
        now = time.time()
        taken = self._acquire(
            keys=[self.key],
            args=[now, self.limit, now + self.hold_seconds, token, int(self.hold_seconds) + 60],
        )
        return token if taken else None

    def release(self, token: str) -> None:
        self.redis.zrem(self.key, token)

    def held(self) -> int:
        return int(self.redis.zcount(self.key, time.time(), "+inf"))

    @contextmanager
    def slot(self, wait_seconds: float, poll_seconds: float = 0.05) -> Iterator[str]:
        """Hold a slot for the block; raise SlotUnavailable after `wait_seconds` without one."""
        deadline = time.monotonic() + wait_seconds
        while (token := self.try_acquire()) is None:
            if time.monotonic() >= deadline:
                raise SlotUnavailable(f"all {self.limit} provider call slots are busy")
            time.sleep(poll_seconds)
        try:
            yield token
        finally:
            self.release(token)
