"""A local fake of the Anthropic Messages API, for tests and for trying Claude queues by hand.

A real HTTP server on 127.0.0.1 that the real `anthropic` SDK talks to via `base_url`.
Each /v1/messages request takes the next scripted behaviour, or the default one:

- "ok": a valid JSON answer (the label from `answer`, else the schema's first label)
- "invalid_json", "bad_confidence", "unknown_label", "refusal", "truncated"
- 429, 500, 529: that HTTP error, as the API shapes it
- "slow": sleeps `slow_seconds`, then answers "ok"

Message Batches: POST /v1/messages/batches stores the requests; the batch ends when
`end_batches()` is called (or at once with `batches_end_immediately`), and its results
answer each request with the behaviour scripted for its custom_id in `batch_outcomes`
("ok", "expired", "canceled", or an error: "errored" (api_error), "overloaded",
"invalid_request"; default "ok"). A list scripts successive batches: each batch that
carries the custom_id takes the next one, and the last one stays.

By hand: `python -m tests.fakes.anthropic_server --port 8765`, then
`ANTHROPIC_BASE_URL=http://127.0.0.1:8765 ANTHROPIC_API_KEY=fake`. Switch behaviour with
`curl -X POST http://127.0.0.1:8765/_control -d '{"default": 529}'`; end the batches sent
so far with `-d '{"end_batches": true}'`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ERRORS = {
    429: ("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    500: ("api_error", "Internal server error."),
    529: ("overloaded_error", "Overloaded."),
}
BATCH_ERRORS = {
    "errored": ERRORS[500],
    "overloaded": ERRORS[529],
    "invalid_request": ("invalid_request_error", "max_tokens: must be at most 8192."),
}


class FakeAnthropic:
    """The fake's state: its script, the requests it saw, its batches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: deque[Any] = deque()
        self.default: Any = "ok"
        self.answer: dict[str, Any] = {}
        self.slow_seconds = 5.0
        self.requests: list[dict[str, Any]] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_outcomes: dict[str, str | list[str]] = {}
        self.batches_end_immediately = False
        self._ids = itertools.count(1)
        self._cached_systems: set[str] = set()
        self.server: ThreadingHTTPServer | None = None

    # -- scripting -------------------------------------------------------------------
    def then(self, *behaviours: Any) -> FakeAnthropic:
        """Answer the next requests with these behaviours, in order."""
        with self.lock:
            self.script.extend(behaviours)
        return self

    def next_behaviour(self) -> Any:
        with self.lock:
            return self.script.popleft() if self.script else self.default

    def message_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/v1/messages"]

    def end_batches(self) -> None:
        with self.lock:
            for batch in self.batches.values():
                batch["processing_status"] = "ended"

    # -- answers ---------------------------------------------------------------------
    def message(self, body: dict[str, Any], behaviour: Any) -> tuple[int, dict[str, Any]]:
        if behaviour == "slow":
            time.sleep(self.slow_seconds)
            behaviour = "ok"
        if isinstance(behaviour, int):
            kind, text = ERRORS.get(behaviour, ("api_error", "error"))
            return behaviour, {"type": "error", "error": {"type": kind, "message": text}}
        labels = body["output_config"]["format"]["schema"]["properties"]["label"]["enum"]
        answer = {
            "label": labels[0],
            "confidence": 0.93,
            "rationale": "The customer describes the problem plainly.",
            "evidence": [],
        }
        answer.update(self.answer)
        stop_reason = "end_turn"
        if behaviour == "invalid_json":
            text = '{"label": "' + answer["label"] + '", "confidence": 0.9, "rationale": "cut'
        else:
            if behaviour == "bad_confidence":
                answer["confidence"] = 1.7
            elif behaviour == "unknown_label":
                answer["label"] = "definitely_not_a_label"
            text = json.dumps(answer)
            if behaviour == "refusal":
                stop_reason, text = "refusal", ""
            elif behaviour == "truncated":
                stop_reason, text = "max_tokens", text[: len(text) // 2]
        return 200, self._message_body(body, text, stop_reason)

    def _message_body(self, body: dict[str, Any], text: str, stop_reason: str) -> dict[str, Any]:
        system = json.dumps(body.get("system", ""))
        user = json.dumps(body.get("messages", []))
        system_tokens, user_tokens = len(system) // 4, len(user) // 4
        with self.lock:
            cached = system in self._cached_systems
            self._cached_systems.add(system)
        return {
            "id": f"msg_fake_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": user_tokens,
                "output_tokens": max(1, len(text) // 4),
                "cache_creation_input_tokens": 0 if cached else system_tokens,
                "cache_read_input_tokens": system_tokens if cached else 0,
            },
        }

    def _take_outcome(self, custom_id: str) -> str:
        """The scripted outcome for this custom_id in a new batch (called under the lock)."""
        scripted = self.batch_outcomes.get(custom_id, "ok")
        if isinstance(scripted, list):
            return scripted.pop(0) if len(scripted) > 1 else scripted[0]
        return scripted

    def create_batch(self, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        batch_id = f"msgbatch_fake_{next(self._ids)}"
        batch = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "ended" if self.batches_end_immediately else "in_progress",
            "requests": body["requests"],
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z",
        }
        with self.lock:
            batch["outcomes"] = {
                r["custom_id"]: self._take_outcome(r["custom_id"]) for r in body["requests"]
            }
            self.batches[batch_id] = batch
        return self.batch_view(batch_id, base_url)

    def batch_view(self, batch_id: str, base_url: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        ended = batch["processing_status"] == "ended"
        n = len(batch["requests"])
        counts = {
            "processing": 0 if ended else n,
            "succeeded": 0,
            "errored": 0,
            "canceled": 0,
            "expired": 0,
        }
        if ended:
            for outcome in batch["outcomes"].values():
                if outcome in BATCH_ERRORS:
                    outcome = "errored"
                counts["succeeded" if outcome == "ok" else outcome] += 1
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": batch["processing_status"],
            "request_counts": counts,
            "created_at": batch["created_at"],
            "expires_at": batch["expires_at"],
            "ended_at": "2026-01-01T01:00:00Z" if ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def batch_results(self, batch_id: str) -> str:
        lines = []
        batch = self.batches[batch_id]
        for request in batch["requests"]:
            outcome = batch["outcomes"][request["custom_id"]]
            if outcome == "ok":
                _, message = self.message(request["params"], "ok")
                result: dict[str, Any] = {"type": "succeeded", "message": message}
            elif outcome in BATCH_ERRORS:
                error_type, error_message = BATCH_ERRORS[outcome]
                result = {
                    "type": "errored",
                    "error": {
                        "type": "error",
                        "error": {"type": error_type, "message": error_message},
                    },
                }
            else:
                result = {"type": outcome}
            lines.append(json.dumps({"custom_id": request["custom_id"], "result": result}))
        return "\n".join(lines) + "\n"

    # -- serving ---------------------------------------------------------------------
    def start(self, port: int = 0) -> FakeAnthropic:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: Any, content_type: str = "application/json"):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                if status in (429, 529):
                    self.send_header("retry-after", "1")
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self._body()
                fake.requests.append(
                    {"path": self.path, "body": body, "headers": dict(self.headers)}
                )
                if self.path == "/_control":
                    for key in (
                        "default",
                        "answer",
                        "slow_seconds",
                        "batch_outcomes",
                        "batches_end_immediately",
                    ):
                        if key in body:
                            setattr(fake, key, body[key])
                    if body.get("end_batches"):
                        fake.end_batches()
                    self._send(200, {"ok": True})
                elif self.path == "/v1/messages":
                    self._send(*fake.message(body, fake.next_behaviour()))
                elif self.path == "/v1/messages/batches":
                    self._send(200, fake.create_batch(body, fake.url))
                else:
                    self._send(
                        404,
                        {
                            "type": "error",
                            "error": {"type": "not_found_error", "message": self.path},
                        },
                    )

            def do_GET(self) -> None:  # noqa: N802
                parts = self.path.strip("/").split("/")
                if (
                    parts[:3] == ["v1", "messages", "batches"]
                    and len(parts) >= 4
                    and parts[3] in fake.batches
                ):
                    if len(parts) == 5 and parts[4] == "results":
                        self._send(200, fake.batch_results(parts[3]).encode(), "application/binary")
                    else:
                        self._send(200, fake.batch_view(parts[3], fake.url))
                else:
                    self._send(
                        404,
                        {
                            "type": "error",
                            "error": {"type": "not_found_error", "message": self.path},
                        },
                    )

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is what "slow" is for

        self.server = Server(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--default",
        default="ok",
        help="behaviour for every request: ok, 429, 529, 500, slow, refusal ...",
    )
    args = parser.parse_args()
    fake = FakeAnthropic()
    fake.default = int(args.default) if args.default.isdigit() else args.default
    fake.start(args.port)
    print(f"fake Anthropic API at {fake.url} (ANTHROPIC_BASE_URL); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
