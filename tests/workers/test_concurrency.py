"""The cross-worker cap on provider calls, on a real Redis."""

import threading
import time

import pytest
from redis import Redis

from review.services.concurrency import Semaphore, SlotUnavailable


def test_at_most_limit_holders_at_once(redis_url):
    redis = Redis.from_url(redis_url)
    redis.delete("test:slots")
    peak, current, lock = [0], [0], threading.Lock()

    def call():
        with Semaphore(redis, "test:slots", 3, hold_seconds=30).slot(wait_seconds=10):
            with lock:
                current[0] += 1
                peak[0] = max(peak[0], current[0])
            time.sleep(0.05)
            with lock:
                current[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 3
    assert Semaphore(redis, "test:slots", 3, 30).held() == 0


def test_a_full_semaphore_times_out_and_a_dead_holder_frees_its_slot(redis_url):
    redis = Redis.from_url(redis_url)
    redis.delete("test:slots2")
    sem = Semaphore(redis, "test:slots2", 1, hold_seconds=0.3)
    assert sem.try_acquire() is not None  # a holder that never releases (a dead worker)
    with pytest.raises(SlotUnavailable):
        with sem.slot(wait_seconds=0.1):
            pass
    with sem.slot(wait_seconds=2):  # its hold expires
        assert sem.held() == 1
