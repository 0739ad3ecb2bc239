"""The Claude recommender: one Messages API call per item, through the `anthropic` SDK.

The prompt is the queue's instructions and labels (static, behind prompt caching), the
most similar past human decisions as examples, and the item's payload, all PII-redacted
unless the queue turned redaction off. The answer is asked for as JSON matching a schema
and then validated in code (review/domain/ai_answer.py): a refusal, a truncated answer or
an invalid one is a failure, never a recommendation.

The SDK's own retries are off: the RQ job retries with growing intervals instead, so a
waiting retry holds no worker. Errors are sorted into retryable (rate limits, overload,
5xx, timeouts, connection errors) and final (any other 4xx).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import anthropic
from sqlalchemy.orm import Session

from models import Item, Queue
from review.domain.ai_answer import Answer, InvalidAnswer, answer_schema, parse_answer
from review.domain.pricing import Usage, cost_usd, max_cost_usd
from review.domain.redaction import compile_patterns, redact_text, redact_value
from review.domain.text import payload_document
from review.services.ai_settings import model_for
from review.services.few_shot import Example, similar_decisions
from review.services.routing import RecommendationInput

PROMPT_VERSION = "claude-prompt-v1"
# Room for the answer (a few hundred tokens) plus adaptive thinking, which Claude Haiku 5.5
# and later do by default: a tighter cap would cut answers off (stop_reason max_tokens,
# a failure). Only the tokens produced are billed, so the headroom costs nothing.
MAX_OUTPUT_TOKENS = 4096
RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504, 529}
# Room for what the API adds around a prompt before billing it (role markers, the
# instructions that come with an output schema) on top of the request's own size.
PROMPT_OVERHEAD_TOKENS = 1024


class ProviderError(Exception):
    """The provider did not answer. `kind` names the error, `retryable` says whether a
    later attempt may succeed."""

    def __init__(self, kind: str, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


@dataclass(frozen=True)
class ClaudeRequest:
    """Everything one call sends, plus what is needed to check and store its answer."""

    model: str
    prompt_version: str
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    labels: list[str]
    source_text: str  # the item as the model saw it (redacted), for checking quotes
    redactions: dict[str, int] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """Keyword arguments for messages.create (also a batch request's `params`)."""
        return {
            "model": self.model,
            "max_tokens": MAX_OUTPUT_TOKENS,
            "system": self.system,
            "messages": self.messages,
            "output_config": {
                "format": {"type": "json_schema", "schema": answer_schema(self.labels)}
            },
        }

    def max_prompt_tokens(self) -> int:
        """An upper bound on the prompt tokens the call is billed for, without asking the
        API: a token stands for at least one byte of text, so the UTF-8 size of everything
        sent (system, messages, output schema, with their JSON syntax) bounds them."""
        sent = json.dumps(self.params(), ensure_ascii=False).encode()
        return len(sent) + PROMPT_OVERHEAD_TOKENS

    def max_cost_usd(self, *, batch: bool = False) -> float | None:
        """The most this call can cost: the prompt bound and a full `max_tokens` answer
        (thinking included), each token at its dearest price. None without a known price."""
        return max_cost_usd(self.model, self.max_prompt_tokens(), MAX_OUTPUT_TOKENS, batch=batch)

    def audit_text(self) -> str:
        """The prompt exactly as it left, for the recommendation's audit record."""
        return json.dumps({"system": self.system, "messages": self.messages}, ensure_ascii=False)


@dataclass(frozen=True)
class ClaudeOutcome:
    """A call that was answered (and billed): an answer, or why it is unusable."""

    usage: Usage
    latency_ms: float
    answer: Answer | None = None
    failure_kind: str | None = None
    failure: str | None = None


def static_prompt(queue: Queue) -> str:
    labels = "\n".join(f"- {label}" for label in queue.labels)
    return (
        f'You recommend a label for items in the review queue "{queue.name}". A person '
        "reviews every answer that is not confident enough, so be honest about doubt.\n\n"
        f"Instructions from the queue's owners:\n{queue.instructions or '(none)'}\n\n"
        f"Labels (answer with exactly one):\n{labels}\n\n"
        "Answer as JSON with: label; confidence, the probability from 0 to 1 that a "
        "careful human reviewer would choose the same label; rationale, one to three "
        "sentences; evidence, up to three short quotes copied verbatim from the item that "
        "support the label. Parts shown as [EMAIL], [PHONE], [CARD], [IBAN] or [REDACTED] "
        "were removed for privacy."
    )


def prompt_version(queue: Queue) -> str:
    """Names the prompt: the template version and a hash of the queue's static part."""
    digest = hashlib.sha256(static_prompt(queue).encode()).hexdigest()[:10]
    return f"{PROMPT_VERSION}+{digest}"


def _examples_text(examples: list[Example]) -> str:
    if not examples:
        return "There are no past decisions similar to this item."
    parts = ["Past decisions by people on similar items of this queue:"]
    for n, ex in enumerate(examples, 1):
        note = f" (the AI said {ex.ai_label}; a person corrected it)" if ex.overridden else ""
        parts.append(f"Example {n}: {ex.text}\nLabel: {ex.label}{note}")
    return "\n\n".join(parts)


def build_request(session: Session, queue: Queue, item: Item) -> ClaudeRequest:
    """The call for this item: static prompt (cached), similar decisions, redacted payload."""
    patterns = compile_patterns(queue.ai_redact_patterns or []) if queue.ai_redact else []
    examples = similar_decisions(
        session, queue.id, payload_document(item.payload), exclude_item_id=item.id
    )
    payload, counts = (
        redact_value(item.payload, patterns) if queue.ai_redact else (item.payload, {})
    )
    examples_text = _examples_text(examples)
    if queue.ai_redact:
        redacted = redact_text(examples_text, patterns)
        examples_text = redacted.text
    payload_json = json.dumps(payload, ensure_ascii=False, indent=1)
    return ClaudeRequest(
        model=model_for(queue),
        prompt_version=prompt_version(queue),
        system=[
            {"type": "text", "text": static_prompt(queue), "cache_control": {"type": "ephemeral"}}
        ],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": examples_text},
                    {"type": "text", "text": f"The item to label:\n{payload_json}"},
                ],
            }
        ],
        labels=list(queue.labels),
        source_text=payload_json,
        redactions=dict(counts),
    )


# One client per configuration and process: it keeps its connections alive between calls.
_clients: dict[tuple[str, str | None, float], anthropic.Anthropic] = {}


def make_client(
    api_key: str | None, base_url: str | None, timeout_seconds: float
) -> anthropic.Anthropic:
    """An SDK client with retries off and an explicit timeout, shared within the process."""
    if not api_key:
        raise ProviderError("not_configured", "ANTHROPIC_API_KEY is not set", retryable=False)
    key = (api_key, base_url, timeout_seconds)
    if key not in _clients:
        _clients[key] = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout_seconds
        )
    return _clients[key]


def classify_error(exc: Exception) -> ProviderError:
    """The ProviderError for an SDK exception: retryable for transient trouble only."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderError("timeout", f"no answer in time: {exc}", True)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError("connection", f"could not reach the provider: {exc}", True)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        kind = {429: "rate_limited", 529: "overloaded"}.get(
            status, "server_error" if status >= 500 else f"http_{status}"
        )
        return ProviderError(kind, f"HTTP {status}: {exc.message}", status in RETRYABLE_STATUS)
    return ProviderError("client_error", f"{type(exc).__name__}: {exc}", False)


def usage_of(message_usage: Any) -> Usage:
    return Usage(
        input_tokens=int(message_usage.input_tokens or 0),
        output_tokens=int(message_usage.output_tokens or 0),
        cache_read_tokens=int(getattr(message_usage, "cache_read_input_tokens", 0) or 0),
        cache_write_tokens=int(getattr(message_usage, "cache_creation_input_tokens", 0) or 0),
    )


def read_message(request: ClaudeRequest, message: Any, latency_ms: float) -> ClaudeOutcome:
    """Check an answered message: refusal, truncation or invalid JSON make it a failure."""
    usage = usage_of(message.usage)
    if message.stop_reason == "refusal":
        return ClaudeOutcome(
            usage, latency_ms, failure_kind="refusal", failure="the model refused to answer"
        )
    if message.stop_reason in ("max_tokens", "model_context_window_exceeded"):
        return ClaudeOutcome(
            usage,
            latency_ms,
            failure_kind="truncated",
            failure=f"the answer was cut off ({message.stop_reason})",
        )
    text = "".join(block.text for block in message.content if block.type == "text")
    try:
        answer = parse_answer(text, request.labels, request.source_text)
    except InvalidAnswer as exc:
        return ClaudeOutcome(usage, latency_ms, failure_kind=exc.kind, failure=str(exc))
    return ClaudeOutcome(usage, latency_ms, answer=answer)


def call(client: Any, request: ClaudeRequest) -> ClaudeOutcome:
    """One Messages API call. Raises ProviderError when no answer came back."""
    started = time.perf_counter()
    try:
        message = client.messages.create(**request.params())
    except anthropic.APIError as exc:
        raise classify_error(exc) from exc
    return read_message(request, message, (time.perf_counter() - started) * 1000)


def as_recommendation(
    request: ClaudeRequest, outcome: ClaudeOutcome, *, batch: bool = False
) -> RecommendationInput:
    """The recommendation to store for a valid answer, with tokens and cost."""
    assert outcome.answer is not None
    return RecommendationInput(
        source="claude",
        model=request.model,
        model_version=request.prompt_version,
        label=outcome.answer.label,
        confidence=outcome.answer.confidence,
        rationale=outcome.answer.rationale,
        latency_ms=outcome.latency_ms,
        input_tokens=outcome.usage.input_tokens + outcome.usage.cache_write_tokens,
        output_tokens=outcome.usage.output_tokens,
        cache_read_tokens=outcome.usage.cache_read_tokens,
        cost_usd=cost_usd(request.model, outcome.usage, batch=batch),
    )


# -- Message Batches -----------------------------------------------------------------


def batch_entry(
    request: ClaudeRequest, item_id: int, attempt: int = 1, reserved_usd: float | None = None
) -> dict[str, Any]:
    """What the poll job needs to check and store this request's answer later: the item,
    which attempt for it this is, its labels, the item text as sent (for quotes) and the
    prompt as it left (for audit); and the most it can cost, held against the queue's
    daily budget until the batch ends (review/services/ai_batches.py)."""
    return {
        "item_id": item_id,
        "attempt": attempt,
        "reserved_usd": reserved_usd,
        "labels": request.labels,
        "source_text": request.source_text,
        "prompt": request.audit_text(),
    }


def request_from_entry(entry: dict[str, Any], model: str, prompt_version: str) -> ClaudeRequest:
    """A stand-in for the request a batch entry was made from, enough to read its answer."""
    return ClaudeRequest(
        model=model,
        prompt_version=prompt_version,
        system=[],
        messages=[],
        labels=list(entry["labels"]),
        source_text=entry["source_text"],
    )


def create_batch(client: Any, requests: dict[str, ClaudeRequest]) -> str:
    """Submit one Message Batch (custom_id -> request). Returns the provider's batch id."""
    try:
        batch = client.messages.batches.create(
            requests=[
                {"custom_id": custom_id, "params": request.params()}
                for custom_id, request in requests.items()
            ]
        )
    except anthropic.APIError as exc:
        raise classify_error(exc) from exc
    return str(batch.id)


def batch_status(client: Any, batch_id: str) -> str:
    """The batch's processing_status: in_progress, canceling or ended."""
    try:
        return str(client.messages.batches.retrieve(batch_id).processing_status)
    except anthropic.APIError as exc:
        raise classify_error(exc) from exc


def batch_results(client: Any, batch_id: str) -> dict[str, Any]:
    """An ended batch's results by custom_id (each a succeeded, errored, canceled or
    expired result object). Results come in any order, so they are matched by id."""
    try:
        return {line.custom_id: line.result for line in client.messages.batches.results(batch_id)}
    except anthropic.APIError as exc:
        raise classify_error(exc) from exc


def _batch_error(result: Any) -> Any:
    return getattr(getattr(result, "error", None), "error", None)


def batch_error_text(result: Any) -> str:
    """Why an errored batch request failed, as "<error type>: <message>"."""
    error = _batch_error(result)
    if error is None:
        return "the provider gave no reason"
    return f"{getattr(error, 'type', 'error')}: {getattr(error, 'message', '')}"


# Errors of the provider's side that another attempt may not meet; the rest (invalid
# request, authentication, permission, too large...) would fail the same way again.
TRANSIENT_BATCH_ERRORS = frozenset(
    {"api_error", "overloaded_error", "rate_limit_error", "timeout_error"}
)


def batch_error_is_transient(result: Any) -> bool:
    """True if an errored batch request failed for a reason a later attempt may not meet."""
    return getattr(_batch_error(result), "type", None) in TRANSIENT_BATCH_ERRORS
