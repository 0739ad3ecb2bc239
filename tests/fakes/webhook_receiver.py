"""A real HTTP webhook receiver on 127.0.0.1, in a thread, for the webhook tests.

It checks every delivery's signature the way a downstream system would (its own HMAC, not
the app's helper), records it, and answers from a script: `then(500, 500)` answers the
next two deliveries with 500, `then("hang")` holds the next one open, and anything past
the script gets `default` (200).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Delivery:
    event_id: str
    timestamp: str
    signature_ok: bool
    body: dict[str, Any]
    answered: int | str


class WebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.default: int = 200
        self.hang_seconds = 60.0
        self._script: list[int | str] = []
        self._lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/decisions"

    def then(self, *answers: int | str) -> WebhookReceiver:
        with self._lock:
            self._script.extend(answers)
        return self

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def ids(self) -> list[str]:
        with self._lock:
            return [d.event_id for d in self.deliveries]

    def accepted(self) -> list[Delivery]:
        """Deliveries answered 2xx, i.e. the ones the downstream system took in."""
        with self._lock:
            return [d for d in self.deliveries if isinstance(d.answered, int) and d.answered < 300]

    def _verify(self, timestamp: str, raw: bytes, header: str) -> bool:
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(f"sha256={expected}", header)

    def _handler(self):  # type: ignore[no-untyped-def]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                timestamp = self.headers.get("X-Webhook-Timestamp", "")
                with receiver._lock:
                    answer = receiver._script.pop(0) if receiver._script else receiver.default
                    receiver.deliveries.append(
                        Delivery(
                            event_id=self.headers.get("X-Webhook-Id", ""),
                            timestamp=timestamp,
                            signature_ok=receiver._verify(
                                timestamp, raw, self.headers.get("X-Webhook-Signature", "")
                            ),
                            body=json.loads(raw),
                            answered=answer,
                        )
                    )
                if answer == "hang":
                    receiver._release.wait(receiver.hang_seconds)
                    return
                self.send_response(int(answer))
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if int(answer) < 300 else b"receiver says no")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep the test output clean

        return Handler


SECRET = "test-webhook-secret-0123456789"


def running_receiver() -> Iterator[WebhookReceiver]:
    """For a test module's `receiver` fixture: `yield from running_receiver()`."""
    server = WebhookReceiver(SECRET).start()
    yield server
    server.stop()
