"""Fault tests run real `flask --app app worker` processes against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workers.claude_helpers import fake_anthropic  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[2]


def worker_env(app, fake, redis_url: str | None = None) -> dict[str, str]:
    """Environment for a worker process on the test app's database and queue, calling
    the fake API with short timeouts and a sweeper that looks every second."""
    return os.environ | {
        "DATABASE_URL": app.config["DATABASE_URL"],
        "REDIS_URL": redis_url or app.config["REDIS_URL"],
        "RQ_QUEUE_NAME": app.config["RQ_QUEUE_NAME"],
        # The app's own key: web and workers share it, as in production (a worker opens
        # the webhook secrets the app sealed with it).
        "SECRET_KEY": app.config["SECRET_KEY"],
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": fake.url,
        "AI_TIMEOUT_SECONDS": "8",
        "AI_RETRY_INTERVALS": "1",
        "AI_SLOT_WAIT_SECONDS": "1",
        "SWEEP_INTERVAL_SECONDS": "1",
        "SWEEP_PENDING_AFTER_SECONDS": "1",
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A worker in its own process group, so a kill reaches its work horse too."""
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "worker"],
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_group(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    if sig == signal.SIGKILL:
        process.wait(timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def workers():
    """Start worker processes with `workers(env)`; all are killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = start_worker(env)
        started.append(process)
        return process

    yield start
    for process in started:
        kill_group(process)
