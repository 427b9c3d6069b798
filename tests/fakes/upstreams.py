"""Fake provider upstreams that speak the published wire formats.

`FakeUpstream` is a real HTTP/1.1 server on 127.0.0.1 (ephemeral port) that
answers like Anthropic Messages, OpenAI Chat Completions, the OpenAI
Responses API (public and Codex backend), Gemini generateContent and Gemini
Code Assist, non-stream and SSE, so the gateway (a separate `mitmdump`
process) and the official SDKs can talk to it over a socket.

Routes (anything else is a 404 in OpenAI's error shape):

* POST /v1/messages, POST /v1/messages/count_tokens            (Anthropic)
* POST /v1/chat/completions, GET /v1/models                    (OpenAI)
* POST /v1/responses                                           (OpenAI
  Responses: stream or not; errors in OpenAI's shape)
* POST /backend-api/codex/responses                            (Codex backend:
  same answers, but like chatgpt.com it demands `stream: true`, `store:
  false` and an `instructions` field, else 400 {"detail": …}; injected errors
  use {"error": {"type", "code", "message", …}}, a 429 being
  `usage_limit_reached` with `resets_in_seconds`)
* POST /v1beta/models/{model}:generateContent | :streamGenerateContent
  | :countTokens                                               (Gemini; the
  same under /v1/, which google-genai uses by default)
* POST /v1internal:loadCodeAssist | :onboardUser                (Code Assist
  project discovery: `code_assist_project`, `code_assist_onboarded`,
  `onboard_polls_left` drive it)
* POST /v1internal:generateContent | :streamGenerateContent
  | :countTokens                                               (Code Assist:
  the Gemini request sits under `request` next to `model` and `project`; every
  answer, each SSE event included, is {"response": …, "traceId": …}; a
  generate body without `project` is a 400)

What the model "says" is programmable (attributes, changeable while running):

* `reply_text`  – the text answer ("" allowed, e.g. for tool-only answers).
* `thinking`    – when non-empty the answer starts with a reasoning part:
  Anthropic `thinking` block (signature "sig-fake-…"), OpenAI
  `reasoning_content`, Gemini part with `thought: true` and a
  `thoughtSignature`, Responses `reasoning` item (summary + encrypted_content).
* `tool_calls`  – a list of {"name", "arguments": dict, "id"?}; when non-empty
  the answer ends with these calls in each provider's shape (Anthropic
  `tool_use`, OpenAI `tool_calls`, Gemini `functionCall`, Responses
  `function_call`) and the stop reason says so (`tool_use`, `tool_calls`;
  Gemini keeps `STOP`). A given "id" is used as the Anthropic/OpenAI id and
  the Responses `call_id`; otherwise ids are invented ("toolu_…", "call_…").
  Streamed arguments arrive as the JSON text cut at its thirds.

Token counting is deterministic so tests can assert exact numbers:

* prompt tokens  = number of whitespace-separated words in every string under
  a `text` or `content` key (or a bare string) inside the prompt fields:
  Anthropic `system` + `messages`, OpenAI `messages`, Responses
  `instructions` + `input`, Gemini `systemInstruction` + `contents` (Code
  Assist: inside `request`; countTokens also looks inside
  `generateContentRequest`). Roles, ids, tool arguments and media are ignored.
* cached tokens  = min(`cached_tokens` setting, prompt tokens); default 0.
* reasoning tokens = number of words in `thinking`.
* output tokens  = words in `reply_text` + reasoning tokens
  + `TOOL_CALL_TOKENS` (5) per tool call.

Each provider reports these in its own convention, so the total prompt size is
the same number everywhere: Anthropic `input_tokens` = prompt - cached with
`cache_read_input_tokens` = cached; OpenAI `prompt_tokens`, Responses
`input_tokens` and Gemini `promptTokenCount` include the cached part.
Anthropic `output_tokens`, OpenAI `completion_tokens` and Responses
`output_tokens` are the whole output (reasoning included, and broken out in
`completion_tokens_details` / `output_tokens_details.reasoning_tokens`);
Gemini's `candidatesTokenCount` excludes the thoughts, which it reports as
`thoughtsTokenCount` (only when there are any). Anthropic's `message_start`
reports `output_tokens: 1` like the real API; the final count arrives in the
cumulative `message_delta` usage. `count_tokens`/`countTokens` return the
prompt tokens.

Faults (`fault_next(kind, times=1, **params)`, queued FIFO together with
`fail_next`, one queue entry per request):

* "reset" – read the request, then close with SO_LINGER 0 (a TCP RST), no bytes.
* "hang"  – read the request, send nothing for `seconds` (30), then answer
  normally; ends early (closing, no answer) if the server stops or the
  client leaves.
* "stall" – send the head and the first `events` (2) stream frames, then
  nothing for `seconds` (30) without closing, then the rest; ends early like
  "hang". A non-stream answer stalls after its head and half its body.
* "cut"   – send the head and the first `events` (2) frames, then close with no
  terminating chunk (a non-stream answer: half its content-length body).
* "quota" – 429 with the provider's account-wide quota error (not a rate
  limit): Anthropic `rate_limit_error` "usage limit", OpenAI
  `insufficient_quota`, Codex `usage_limit_reached` with `resets_in_seconds`
  (`resets_in`, default 3600), Gemini/Code Assist RESOURCE_EXHAUSTED per-day
  quota with a RetryInfo `retryDelay` of `resets_in`. `headers` adds headers.
* "reset_mid" – like "cut", but the connection ends with a TCP RST.
* "trickle" – a stream whose events come `seconds` (2) apart; a non-stream
  answer waits `seconds` before it is sent.
* "malformed" – after `events` (2) good frames, frames that are not valid SSE
  JSON, then a clean end of the body with no closing event; a non-stream
  answer is a 200 whose body is not JSON at all.
* "truncated" – the answer ends cleanly but early: a stream after `events`
  (2) frames (terminating chunk sent), a JSON answer halfway through its
  text (its content-length matching what is sent).
* "gzip" – the answer is gzip-encoded (`content-encoding: gzip`) whatever the
  request's accept-encoding said; a stream is compressed frame by frame with a
  sync flush after each, so every chunk can be decoded as it arrives.

A refused connection cannot come from a running server: use `closed_port()`.
Counters: `open_connections`, `connections_total` and `cancelled` (answers
whose client left before they were complete: mid-stream, noticed on a failed
write or while pausing, or while a "hang" waited).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import itertools
import json
import re
import select
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_REPLY = "Hello from fake"
DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini")
DEFAULT_RETRY_AFTER = "1"
# Output tokens charged per tool call, so tool-only answers still cost something.
TOOL_CALL_TOKENS = 5

ANTHROPIC = "anthropic"
OPENAI = "openai"
GEMINI = "gemini"
CODEX = "codex"


@dataclass(frozen=True)
class Captured:
    """One request as the fake received it.

    `query` keeps the last value of each parameter; `headers` has lower-cased
    keys (repeated headers joined with ", "); `json` is the parsed body or None.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any

    @classmethod
    def parse(cls, method: str, target: str, header_items: Iterable[tuple[str, str]], body: bytes) -> Captured:
        """A request as an http.server handler sees it (its request target and headers)."""
        url = urlsplit(target)
        headers: dict[str, str] = {}
        for key, value in header_items:
            key = key.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        return cls(method, url.path, query, headers, body, parsed)


@dataclass
class _Failure:
    status: int
    body: bytes | str | dict | list | None
    headers: dict[str, str]
    remaining: int


# Parameters each fault kind accepts, with their defaults.
_FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "reset": {},
    "hang": {"seconds": 30.0},
    "stall": {"events": 2, "seconds": 30.0},
    "cut": {"events": 2},
    "quota": {"resets_in": 3600, "headers": None},
    "reset_mid": {"events": 2},
    "trickle": {"seconds": 2.0},
    "malformed": {"events": 2},
    "truncated": {"events": 2},
    "gzip": {},
}
# What a malformed stream sends after its good frames.
MALFORMED_FRAMES = (b'data: {"type": "content_block_delta", "delta": {"text": "unfinished\n\n', b"not sse at all\n\n")


@dataclass
class _Fault:
    kind: str
    params: dict[str, Any]
    remaining: int


def closed_port() -> int:
    """A loopback port nobody listens on, for "connection refused" tests.

    Bound (never listened on) and closed at once, so the kernel refuses
    connections; another process could grab it meanwhile, which is unlikely.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class _Usage:
    prompt: int
    cached: int
    output: int  # everything generated, reasoning included
    reasoning: int = 0


@dataclass(frozen=True)
class ToolCall:
    """One programmed tool call; `id` None means each provider invents its own."""

    name: str
    arguments: dict
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"))


@dataclass(frozen=True)
class _Answer:
    """What the fake says to one request, fixed when the request arrives."""

    text: str
    thinking: str
    tools: tuple[ToolCall, ...]
    usage: _Usage
    # Anthropic thinking signatures start with this (see `account_signatures`).
    signature_prefix: str = "sig-fake-"

    @property
    def has_text_part(self) -> bool:
        # An empty text part is dropped only when tool calls carry the answer,
        # so a plain answer keeps its single (possibly empty) text part.
        return bool(self.text) or not self.tools


def api_key_check(expected: str) -> Callable[[Captured], bool]:
    """A `require_auth` check accepting `expected` in any provider's auth slot."""

    def check(req: Captured) -> bool:
        bearer = req.headers.get("authorization", "")
        offered = {
            req.headers.get("x-api-key"),
            req.headers.get("x-goog-api-key"),
            req.query.get("key"),
            bearer[7:] if bearer.lower().startswith("bearer ") else None,
        }
        return expected in offered

    return check


class FakeUpstream:
    """A programmable fake of the Anthropic, OpenAI and Gemini HTTP APIs.

    Attributes tests may change while the server runs: `reply_text`,
    `thinking`, `tool_calls` (see the module docstring),
    `stream_delay` (seconds slept between streamed events), `cached_tokens`,
    `require_auth` (None, or a callable taking `Captured` and returning
    whether to accept; a refusal answers 401 in the route's error shape),
    `models` (ids listed by `GET /v1/models`) and `account_signatures`
    (Anthropic thinking signatures name the key or token that made them, and
    a thinking block signed by another gets Anthropic's 400).

    Read-only counters: `open_connections` (client connections open now),
    `connections_total` (ever accepted) and `cancelled` (streamed answers
    whose client went away mid-stream); `wait_connections()` waits for the
    first to settle. They survive `clear()` and restarts.
    """

    def __init__(
        self,
        reply_text: str = DEFAULT_REPLY,
        *,
        stream_delay: float = 0.0,
        cached_tokens: int = 0,
        require_auth: Callable[[Captured], bool] | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
        thinking: str = "",
        tool_calls: Iterable[dict] = (),
    ) -> None:
        self.reply_text = reply_text
        self.thinking = thinking
        self.tool_calls: list[dict] = list(tool_calls)
        self.stream_delay = stream_delay
        self.cached_tokens = cached_tokens
        self.require_auth = require_auth
        self.models = list(models)
        # Like Anthropic: a thinking signature validates only on the account
        # (API key or token) that produced it; others get a 400.
        self.account_signatures = False
        # Code Assist onboarding (loadCodeAssist / onboardUser): a fresh account
        # has no tier until onboarded; onboarding reports "not done" this many times.
        self.code_assist_project = "fake-project-123"
        self.code_assist_onboarded = False
        self.onboard_polls_left = 1
        self._lock = threading.Lock()
        self._requests: list[Captured] = []
        self._failures: list[_Failure | _Fault] = []
        # One condition guards the counters so wait_connections() can sleep on it.
        self._counts = threading.Condition()
        self._open_connections = 0
        self._connections_total = 0
        self._cancelled = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------

    def start(self) -> FakeUpstream:
        if self._server is not None:
            raise RuntimeError("FakeUpstream already started")
        self._server = _Server(self)
        # A short poll interval keeps stop() fast; shutdown() waits for a poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-upstream-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.stopping.set()  # wakes hanging/stalled handlers first
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeUpstream not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- captured traffic -----------------------------------------------

    @property
    def requests(self) -> list[Captured]:
        """A snapshot copy, safe to iterate while handlers keep appending."""
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> Captured | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def clear(self) -> None:
        """Forget captured requests and pending failures."""
        with self._lock:
            self._requests.clear()
            self._failures.clear()

    # -- connection counters ---------------------------------------------

    @property
    def open_connections(self) -> int:
        with self._counts:
            return self._open_connections

    @property
    def connections_total(self) -> int:
        with self._counts:
            return self._connections_total

    @property
    def cancelled(self) -> int:
        with self._counts:
            return self._cancelled

    def wait_connections(self, count: int = 0, timeout: float = 5.0) -> bool:
        """Wait until `open_connections == count`; False on timeout.

        Handlers notice a departed client asynchronously, so tests asserting
        "nothing left open" must wait rather than read the counter once.
        """
        with self._counts:
            return self._counts.wait_for(lambda: self._open_connections == count, timeout)

    def _count_connection(self, delta: int) -> None:
        with self._counts:
            self._open_connections += delta
            self._connections_total += max(delta, 0)
            self._counts.notify_all()

    def _count_cancel(self) -> None:
        with self._counts:
            self._cancelled += 1
            self._counts.notify_all()

    # -- failure injection ------------------------------------------------

    def fail_next(
        self,
        status: int,
        body: bytes | str | dict | list | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests (any route) with `status`.

        Without `body` the error uses the route's provider error shape; a
        given body is sent verbatim (dicts/lists as JSON). A 429 carries
        `retry-after: 1` unless `headers` overrides it (a None value leaves a
        header out). Calls queue up FIFO.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        failure = _Failure(status, body, {k.lower(): v for k, v in (headers or {}).items()}, times)
        with self._lock:
            self._failures.append(failure)

    def fault_next(self, kind: str, times: int = 1, **params: Any) -> None:
        """Misbehave on the next `times` requests; see the module docstring.

        Shares `fail_next`'s FIFO queue, so `fault_next("quota")` then
        `fail_next(503)` answers 429, then 503, then normally.
        """
        if kind == "refuse":
            raise ValueError("a running server cannot refuse; connect to closed_port()")
        if kind not in _FAULT_PARAMS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {sorted(_FAULT_PARAMS)}")
        unknown = set(params) - set(_FAULT_PARAMS[kind])
        if unknown:  # a typo would otherwise silently fall back to a default
            raise TypeError(f"fault {kind!r} takes no {sorted(unknown)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = _Fault(kind, _FAULT_PARAMS[kind] | params, times)
        with self._lock:
            self._failures.append(fault)

    # -- used by the handler --------------------------------------------

    def _record(self, req: Captured) -> None:
        with self._lock:
            self._requests.append(req)

    def _take_failure(self) -> _Failure | _Fault | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.pop(0)
            return failure

    def _prompt_tokens(self, *prompt_nodes: Any) -> int:
        return sum(_prompt_words(node) for node in prompt_nodes)

    def _answer(self, *prompt_nodes: Any) -> _Answer:
        # Each attribute is read once, so a test changing them mid-request
        # cannot produce an answer that is half old and half new.
        text, thinking = self.reply_text, self.thinking
        tools = tuple(_tool_call(spec) for spec in list(self.tool_calls))
        prompt = self._prompt_tokens(*prompt_nodes)
        reasoning = _word_count(thinking)
        output = _word_count(text) + reasoning + TOOL_CALL_TOKENS * len(tools)
        usage = _Usage(prompt, min(self.cached_tokens, prompt), output, reasoning)
        return _Answer(text, thinking, tools, usage)


def _tool_call(spec: dict | ToolCall) -> ToolCall:
    if isinstance(spec, ToolCall):
        return spec
    return ToolCall(spec["name"], dict(spec.get("arguments") or {}), spec.get("id"))


# ---------------------------------------------------------------------------
# token counting and text splitting

_TEXT_KEYS = frozenset({"text", "content"})


def _word_count(text: str) -> int:
    return len(text.split())


def _prompt_words(node: Any) -> int:
    if isinstance(node, str):
        return _word_count(node)
    if isinstance(node, list):
        return sum(_prompt_words(item) for item in node)
    if isinstance(node, dict):
        # Strings only count under text-bearing keys, so roles, ids and
        # base64 data stay out of the total; containers are always walked.
        return sum(
            _prompt_words(value)
            for key, value in node.items()
            if key in _TEXT_KEYS or not isinstance(value, str)
        )
    return 0


def split_reply(text: str) -> list[str]:
    """Stream pieces: one per word, trailing whitespace kept, joining back exactly."""
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]


def split_json(text: str) -> list[str]:
    """Argument stream pieces: the JSON text cut at its thirds, mid-token on purpose."""
    a, b = len(text) // 3, 2 * len(text) // 3
    return [piece for piece in (text[:a], text[a:b], text[b:]) if piece]


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _thought_signature() -> str:
    # google-genai decodes thoughtSignature as base64 bytes, so it must be
    # valid base64; 21 bytes encode without padding.
    return base64.b64encode(b"sig-fake-" + uuid.uuid4().hex[:12].encode()).decode()


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _sse(data: Any, event: str | None = None, eol: str = "\n") -> bytes:
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {_dumps(data).decode()}{eol}{eol}".encode()


# ---------------------------------------------------------------------------
# Anthropic Messages


def _anthropic_usage(usage: _Usage, output_tokens: int) -> dict:
    return {
        "input_tokens": usage.prompt - usage.cached,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached,
    }


def anthropic_content(answer: _Answer) -> list[dict]:
    blocks: list[dict] = []
    if answer.thinking:
        blocks.append({"type": "thinking", "thinking": answer.thinking, "signature": _new_id(answer.signature_prefix)})
    if answer.has_text_part:
        blocks.append({"type": "text", "text": answer.text})
    for call in answer.tools:
        tool_id = call.id or _new_id("toolu_")
        blocks.append(
            {"type": "tool_use", "id": tool_id, "name": call.name, "input": call.arguments}
        )
    return blocks


def _anthropic_stop_reason(answer: _Answer) -> str:
    return "tool_use" if answer.tools else "end_turn"


def anthropic_message(msg_id: str, model: str, answer: _Answer) -> dict:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": anthropic_content(answer),
        "stop_reason": _anthropic_stop_reason(answer),
        "stop_sequence": None,
        "usage": _anthropic_usage(answer.usage, answer.usage.output),
    }


def _anthropic_block_stream(block: dict) -> tuple[dict, list[dict]]:
    """The empty block `content_block_start` announces, and the deltas that fill it."""
    kind = block["type"]
    if kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": p} for p in split_reply(block["thinking"])]
        signature = {"type": "signature_delta", "signature": block["signature"]}
        return {"type": "thinking", "thinking": "", "signature": ""}, [*deltas, signature]
    if kind == "text":
        deltas = [{"type": "text_delta", "text": p} for p in split_reply(block["text"])]
        return {"type": "text", "text": ""}, deltas
    # The real API opens tool input with an empty piece; clients must cope.
    pieces = ["", *split_json(json.dumps(block["input"], separators=(",", ":")))]
    deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    return block | {"input": {}}, deltas


def anthropic_events(msg_id: str, model: str, answer: _Answer) -> Iterator[tuple[str, dict]]:
    usage = answer.usage
    start = anthropic_message(msg_id, model, answer)
    start.update(content=[], stop_reason=None, usage=_anthropic_usage(usage, 1))
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(anthropic_content(answer)):
        empty, deltas = _anthropic_block_stream(block)
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": empty,
            },
        )
        for delta in deltas:
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _anthropic_stop_reason(answer), "stop_sequence": None},
            "usage": {"output_tokens": usage.output},
        },
    )
    yield "message_stop", {"type": "message_stop"}


_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str, request_id: str) -> dict:
    fallback = "invalid_request_error" if status < 500 else "api_error"
    return {
        "type": "error",
        "error": {"type": _ANTHROPIC_ERROR_TYPES.get(status, fallback), "message": message},
        "request_id": request_id,
    }


# ---------------------------------------------------------------------------
# OpenAI Chat Completions


def _openai_usage(usage: _Usage) -> dict:
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.output,
        "total_tokens": usage.prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def _openai_finish_reason(answer: _Answer) -> str:
    return "tool_calls" if answer.tools else "stop"


def _openai_message(answer: _Answer) -> dict:
    # content is null, not "", when tool calls are the whole answer.
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text if answer.has_text_part else None,
    }
    if answer.thinking:
        message["reasoning_content"] = answer.thinking
    if answer.tools:
        message["tool_calls"] = [
            {
                "id": call.id or _new_id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json},
            }
            for call in answer.tools
        ]
    return message


def openai_completion(cmpl_id: str, created: int, model: str, answer: _Answer) -> dict:
    return {
        "id": cmpl_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": _openai_message(answer),
                "finish_reason": _openai_finish_reason(answer),
            }
        ],
        "usage": _openai_usage(answer.usage),
    }


def _openai_deltas(answer: _Answer) -> Iterator[dict]:
    yield {"role": "assistant", "content": ""}
    for piece in split_reply(answer.thinking):
        yield {"reasoning_content": piece}
    for piece in split_reply(answer.text):
        yield {"content": piece}
    for index, call in enumerate(answer.tools):
        # The first piece of each call names it; later pieces only add arguments.
        function = {"name": call.name, "arguments": ""}
        call_id = call.id or _new_id("call_")
        head = {"index": index, "id": call_id, "type": "function", "function": function}
        yield {"tool_calls": [head]}
        for piece in split_json(call.arguments_json):
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def openai_chunks(
    cmpl_id: str, created: int, model: str, answer: _Answer, include_usage: bool
) -> Iterator[dict]:
    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        body = {
            "id": cmpl_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if include_usage:
            body["usage"] = None
        return body

    for delta in _openai_deltas(answer):
        yield chunk(delta)
    yield chunk({}, _openai_finish_reason(answer))
    if include_usage:
        final = chunk({})
        final.update(choices=[], usage=_openai_usage(answer.usage))
        yield final


# (type, code) per status; types other than these two are not documented.
_OPENAI_ERROR_KINDS = {
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
}


def openai_error(status: int, message: str) -> dict:
    fallback = ("invalid_request_error", None) if status < 500 else ("server_error", None)
    err_type, code = _OPENAI_ERROR_KINDS.get(status, fallback)
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


# ---------------------------------------------------------------------------
# Gemini generateContent


def _gemini_usage(usage: _Usage) -> dict:
    meta = {
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": usage.output - usage.reasoning,  # thoughts excluded
        "totalTokenCount": usage.prompt + usage.output,
        "cachedContentTokenCount": usage.cached,
    }
    if usage.reasoning:
        meta["thoughtsTokenCount"] = usage.reasoning
    return meta


def _gemini_call_part(call: ToolCall) -> dict:
    # Gemini usually sends no call id; clients must match results by name.
    return {"functionCall": {"name": call.name, "args": call.arguments}}


def _gemini_thought_part(text: str, signature: str | None) -> dict:
    part: dict[str, Any] = {"text": text, "thought": True}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _gemini_parts(answer: _Answer) -> list[dict]:
    parts = [_gemini_thought_part(answer.thinking, _thought_signature())] if answer.thinking else []
    if answer.has_text_part:
        parts.append({"text": answer.text})
    return parts + [_gemini_call_part(call) for call in answer.tools]


def _gemini_stream_parts(answer: _Answer) -> list[list[dict]]:
    """The parts of each stream chunk: thought and text word by word, calls whole."""
    thoughts = split_reply(answer.thinking)
    chunks = [
        # The signature rides on the last thought piece, once the thought is complete.
        [_gemini_thought_part(piece, _thought_signature() if i == len(thoughts) - 1 else None)]
        for i, piece in enumerate(thoughts)
    ]
    if answer.has_text_part:
        chunks += [[{"text": piece}] for piece in split_reply(answer.text) or [""]]
    if answer.tools:
        chunks.append([_gemini_call_part(call) for call in answer.tools])
    return chunks


def _gemini_candidate(parts: list[dict], final: bool) -> dict:
    content = {"role": "model", "parts": parts}
    candidate: dict[str, Any] = {"content": content, "index": 0}
    if final:
        candidate["finishReason"] = "STOP"  # also after function calls
    return candidate


def gemini_response(response_id: str, model: str, answer: _Answer) -> dict:
    return {
        "candidates": [_gemini_candidate(_gemini_parts(answer), final=True)],
        "usageMetadata": _gemini_usage(answer.usage),
        "modelVersion": model,
        "responseId": response_id,
    }


def gemini_chunks(response_id: str, model: str, answer: _Answer) -> Iterator[dict]:
    chunks = _gemini_stream_parts(answer)
    usage = answer.usage
    # Like the real API, interim chunks report only the prompt side; the last
    # chunk carries finishReason and the final counts.
    interim_usage = {"promptTokenCount": usage.prompt, "totalTokenCount": usage.prompt}
    for i, parts in enumerate(chunks):
        final = i == len(chunks) - 1
        yield {
            "candidates": [_gemini_candidate(parts, final)],
            "usageMetadata": _gemini_usage(usage) if final else interim_usage,
            "modelVersion": model,
            "responseId": response_id,
        }


_GEMINI_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def gemini_error(status: int, message: str, retry_after: str | None = None) -> dict:
    fallback = "FAILED_PRECONDITION" if status < 500 else "INTERNAL"
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _GEMINI_STATUSES.get(status, fallback),
    }
    if retry_after is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}
        ]
    return {"error": error}


# ---------------------------------------------------------------------------
# OpenAI Responses API (public /v1/responses and the Codex backend)


def _responses_usage(usage: _Usage) -> dict:
    return {
        "input_tokens": usage.prompt,
        # cache_write_tokens: required by current SDK models; the fake never writes a cache.
        "input_tokens_details": {"cached_tokens": usage.cached, "cache_write_tokens": 0},
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.prompt + usage.output,
    }


def responses_output(answer: _Answer) -> list[dict]:
    """The completed output items: reasoning, then the message, then function calls."""
    items: list[dict] = []
    if answer.thinking:
        summary = [{"type": "summary_text", "text": answer.thinking}]
        encrypted = _new_id("enc-fake-")
        items.append(
            {
                "type": "reasoning",
                "id": _new_id("rs_"),
                "summary": summary,
                "encrypted_content": encrypted,
            }
        )
    if answer.has_text_part:
        part = {"type": "output_text", "text": answer.text, "annotations": [], "logprobs": []}
        items.append(
            {
                "type": "message",
                "id": _new_id("msg_"),
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for call in answer.tools:
        items.append(
            {
                "type": "function_call",
                "id": _new_id("fc_"),
                "call_id": call.id or _new_id("call_"),
                "name": call.name,
                "arguments": call.arguments_json,
                "status": "completed",
            }
        )
    return items


def responses_object(
    resp_id: str, created: int, request: dict, output: list[dict], usage: _Usage | None
) -> dict:
    """A Response; `usage` None means still in progress (created/in_progress events)."""
    reasoning = request.get("reasoning") or {}
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": "in_progress" if usage is None else "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": request.get("model", ""),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": request.get("store", True),
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None if usage is None else _responses_usage(usage),
        "metadata": {},
    }


def _reasoning_item_events(index: int, item: dict) -> Iterator[dict]:
    ids = {"item_id": item["id"], "output_index": index, "summary_index": 0}
    text = item["summary"][0]["text"]
    added = {"type": "reasoning", "id": item["id"], "summary": []}
    yield {"type": "response.output_item.added", "output_index": index, "item": added}
    empty = {"type": "summary_text", "text": ""}
    yield {"type": "response.reasoning_summary_part.added", **ids, "part": empty}
    for piece in split_reply(text):
        yield {"type": "response.reasoning_summary_text.delta", **ids, "delta": piece}
    yield {"type": "response.reasoning_summary_text.done", **ids, "text": text}
    yield {"type": "response.reasoning_summary_part.done", **ids, "part": item["summary"][0]}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def _message_item_events(index: int, item: dict) -> Iterator[dict]:
    ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
    part = item["content"][0]
    added = item | {"status": "in_progress", "content": []}
    yield {"type": "response.output_item.added", "output_index": index, "item": added}
    empty = {"type": "output_text", "text": "", "annotations": []}
    yield {"type": "response.content_part.added", **ids, "part": empty}
    for piece in split_reply(part["text"]):
        yield {"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []}
    yield {"type": "response.output_text.done", **ids, "text": part["text"], "logprobs": []}
    yield {"type": "response.content_part.done", **ids, "part": part}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def _function_call_item_events(index: int, item: dict) -> Iterator[dict]:
    ids = {"item_id": item["id"], "output_index": index}
    added = item | {"arguments": "", "status": "in_progress"}
    yield {"type": "response.output_item.added", "output_index": index, "item": added}
    for piece in split_json(item["arguments"]):
        yield {"type": "response.function_call_arguments.delta", **ids, "delta": piece}
    yield {"type": "response.function_call_arguments.done", **ids, "arguments": item["arguments"]}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


_ITEM_EVENTS = {
    "reasoning": _reasoning_item_events,
    "message": _message_item_events,
    "function_call": _function_call_item_events,
}


def responses_events(resp_id: str, created: int, request: dict, answer: _Answer) -> Iterator[dict]:
    """The stream events, numbered by `sequence_number` from 0."""
    output = responses_output(answer)

    def events() -> Iterator[dict]:
        pending = responses_object(resp_id, created, request, [], None)
        yield {"type": "response.created", "response": pending}
        yield {"type": "response.in_progress", "response": pending}
        for index, item in enumerate(output):
            yield from _ITEM_EVENTS[item["type"]](index, item)
        done = responses_object(resp_id, created, request, output, answer.usage)
        yield {"type": "response.completed", "response": done}

    for number, event in enumerate(events()):
        yield event | {"sequence_number": number}


def codex_rejection(request: dict) -> str | None:
    """The backend's 400 `detail` for a body chatgpt.com would refuse, else None."""
    if request.get("stream") is not True:
        return "Stream must be set to true"
    if request.get("store") is not False:
        return "Store must be set to false"
    if request.get("instructions") is None:  # "" passes, like the real backend
        return "Instructions are required"
    return None


# (type, code) per status; 429 is the ChatGPT plan's usage limit.
_CODEX_ERROR_KINDS = {
    401: ("invalid_request_error", "token_expired"),
    429: ("usage_limit_reached", "usage_limit_reached"),
}


def codex_error(status: int, message: str, retry_after: str | None) -> dict:
    fallback = ("invalid_request_error", None) if status < 500 else ("server_error", None)
    err_type, code = _CODEX_ERROR_KINDS.get(status, fallback)
    error: dict[str, Any] = {"type": err_type, "code": code, "message": message}
    if status == 429:
        # The backend says when the limit resets; mirror retry-after so both agree.
        seconds = int(retry_after) if retry_after and retry_after.isdigit() else 60
        error.update(
            plan_type="plus", resets_in_seconds=seconds, resets_at=int(time.time()) + seconds
        )
    return {"error": error}


# ---------------------------------------------------------------------------
# account-wide quota errors (the "quota" fault): unlike a rate limit, retrying
# soon does not help, so a gateway should rotate to another account.

ANTHROPIC_QUOTA_MESSAGE = (
    "Your organization's usage limit has been reached. "
    "Please try again later or raise your usage limit in the console."
)
OPENAI_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details."
)
CODEX_QUOTA_MESSAGE = "The usage limit has been reached"
GEMINI_QUOTA_MESSAGE = (
    "You exceeded your current quota: the per-day quota for this model is used up "
    "(quota metric generate_content_requests_per_day, limit per day per project)."
)


def quota_error(dialect: str, resets_in: int, request_id: str) -> dict:
    """The account-wide quota error body in `dialect`'s shape (status 429)."""
    if dialect == ANTHROPIC:
        return anthropic_error(429, ANTHROPIC_QUOTA_MESSAGE, request_id)
    if dialect == CODEX:
        error = {
            "type": "usage_limit_reached",
            "code": "usage_limit_reached",
            "message": CODEX_QUOTA_MESSAGE,
            "plan_type": "plus",
            "resets_in_seconds": resets_in,
            "resets_at": int(time.time()) + resets_in,
        }
        return {"error": error}
    if dialect == GEMINI:
        body = gemini_error(429, GEMINI_QUOTA_MESSAGE, str(resets_in))
        violation = {"quotaMetric": "generate_content_requests_per_day", "quotaId": "PerDay"}
        failure = {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [violation],
        }
        body["error"]["details"].insert(0, failure)
        return body
    kind = "insufficient_quota"
    return {"error": {"message": OPENAI_QUOTA_MESSAGE, "type": kind, "param": None, "code": kind}}


# ---------------------------------------------------------------------------
# HTTP plumbing

# How a fault's pause ended.
_WAITED, _GONE, _STOPPED = "waited", "gone", "stopped"
# How often a pause looks for a departed client or a stopping server.
_POLL_SECONDS = 0.05


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeUpstream) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        # Set by stop() so hanging and stalled handlers give up at once.
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client resetting an idle keep-alive connection is routine in fault
        # tests; only real handler bugs deserve a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        # Idle keep-alive handlers block in readline(); shutting their sockets
        # down lets them exit and tells clients the connection is gone.
        with self._conns_lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Small SSE writes must not wait for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    # The stall/cut fault shaping the current request's answer, if any.
    _shape: _Fault | None = None

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)
        self.server.fake._count_connection(+1)

    def finish(self) -> None:
        try:
            self.server.track(self.connection, alive=False)
            super().finish()
        finally:
            self.server.fake._count_connection(-1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    # -- request side -----------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked_body()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked_body(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            parts.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers are not used by any provider
        return b"".join(parts)

    def _capture(self) -> Captured:
        return Captured.parse(self.command, self.path, self.headers.items(), self._read_body())

    def _dispatch(self) -> None:
        fake = self.server.fake
        req = self._capture()
        fake._record(req)
        route, match = _find_route(req.method, req.path)
        dialect = route.dialect if route else OPENAI
        self._shape = None
        failure = fake._take_failure()
        if isinstance(failure, _Fault):
            if self._apply_fault(failure, dialect):
                return
            failure = None  # a finished hang or a stall/cut: answer as usual
        if failure is not None:
            self._send_failure(dialect, failure)
        elif fake.require_auth is not None and not fake.require_auth(req):
            self._send_error(dialect, 401, "fake upstream: invalid credentials")
        elif route is None:
            self._send_error(OPENAI, 404, f"Invalid URL ({req.method} {req.path})")
        elif route.needs_json and not isinstance(req.json, dict):
            self._send_error(dialect, 400, "fake upstream: body must be a JSON object")
        else:
            route.handle(self, fake, req, match)

    # -- faults -----------------------------------------------------------

    def _apply_fault(self, fault: _Fault, dialect: str) -> bool:
        """Act out `fault`; True when the request is fully dealt with."""
        self._shape_params = fault.params
        if fault.kind == "reset":
            self._reset()
            return True
        if fault.kind == "quota":
            self._send_quota(dialect, fault.params)
            return True
        if fault.kind == "hang":
            outcome = self._pause(fault.params["seconds"])
            if outcome == _WAITED:
                return False
            if outcome == _GONE:
                self.server.fake._count_cancel()
            self.close_connection = True
            return True
        self._shape = fault  # the others act inside the answer's body
        return False

    def _reset(self) -> None:
        # Linger 0 makes close() send RST instead of FIN. The buffered reader
        # holds a reference that would postpone the real close, so drop it too.
        self.close_connection = True
        try:
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def _send_quota(self, dialect: str, params: dict[str, Any]) -> None:
        request_id = _new_id("req_")
        headers = {"request-id": request_id} if dialect == ANTHROPIC else {}
        headers.update(params["headers"] or {})
        body = quota_error(dialect, int(params["resets_in"]), request_id)
        self.send_json(429, body, headers)

    def _client_gone(self, timeout: float) -> bool:
        """Wait up to `timeout` for the client to close; True if it has."""
        try:
            readable, _, _ = select.select([self.connection], [], [], timeout)
            if not readable:
                return False
            if self.connection.recv(1, socket.MSG_PEEK) == b"":
                return True
        except (OSError, ValueError):  # reset by the peer, or closed by stop()
            return True
        # Unread bytes (a pipelined request) keep the socket readable; plain
        # sleep so the loop does not spin.
        self.server.stopping.wait(timeout)
        return False

    def _pause(self, seconds: float) -> str:
        """Send nothing for `seconds`; end early if the server stops or the client leaves."""
        deadline = time.monotonic() + seconds
        stopping = self.server.stopping
        while not stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return _WAITED
            if self._client_gone(min(left, _POLL_SECONDS)):
                return _STOPPED if stopping.is_set() else _GONE
        return _STOPPED

    def _stream_pause(self, seconds: float) -> bool:
        """Pause mid-body; False (connection to be closed) unless the pause ran out."""
        outcome = self._pause(seconds)
        if outcome == _GONE:
            self.server.fake._count_cancel()
        if outcome != _WAITED:
            self.close_connection = True
        return outcome == _WAITED

    def _shape_point(self) -> bool:
        """Apply the stall/cut/reset_mid fault here; False when the body must end now."""
        fault, self._shape = self._shape, None
        if fault is None:
            return True
        if fault.kind == "cut":
            self.close_connection = True  # handle() then closes: FIN mid-body
            return False
        if fault.kind == "reset_mid":
            self.wfile.flush()
            self._reset()
            return False
        return self._stream_pause(fault.params["seconds"])

    def _client_hung_up(self) -> None:
        self.close_connection = True
        # stop() shutting sockets down is not the client's doing.
        if not self.server.stopping.is_set():
            self.server.fake._count_cancel()

    # -- response side ----------------------------------------------------

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_raw(status, _dumps(obj), "application/json", headers)

    def send_raw(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None
    ) -> None:
        shape = self._shape.kind if self._shape else None
        if shape in ("trickle", "malformed", "truncated", "gzip"):
            self._shape = None
            headers = dict(headers or {})
            if shape == "trickle" and not self._stream_pause(self._shape_params["seconds"]):
                return
            if shape == "malformed":
                body = b"<html><body>upstream garbage</body></html>"
            elif shape == "truncated":
                body = body[: len(body) // 2]
            elif shape == "gzip":
                body = gzip.compress(body)
                headers["content-encoding"] = "gzip"
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self._shape is None:
            self.wfile.write(body)
            return
        # A stall/cut on a non-stream answer strikes halfway through the body.
        half = len(body) // 2
        self.wfile.write(body[:half])
        self.wfile.flush()
        if self._shape_point():
            self.wfile.write(body[half:])

    def send_stream(
        self, frames: Iterable[bytes], content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Send each frame as its own HTTP chunk, pausing `stream_delay` between them."""
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        if self._shape is not None and self._shape.kind == "gzip":
            self.send_header("content-encoding", "gzip")
            frames = _gzip_frames(frames)
            self._shape = None
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            self._write_frames(frames)
        except (BrokenPipeError, ConnectionResetError):
            self._client_hung_up()

    def _write_frames(self, frames: Iterable[bytes]) -> None:
        # None stands for the terminating chunk, so a stall/cut placed after
        # the last event still happens before the body is complete.
        shape = self._shape
        if shape is not None and shape.kind in ("malformed", "truncated"):
            self._shape = None
            good = list(itertools.islice(frames, shape.params["events"]))
            frames = good + (list(MALFORMED_FRAMES) if shape.kind == "malformed" else [])
        delay = self.server.fake.stream_delay
        if shape is not None and shape.kind == "trickle":
            self._shape, delay = None, shape.params["seconds"]
        stall_at = self._shape.params["events"] if self._shape else -1
        for i, frame in enumerate(itertools.chain(frames, [None])):
            if i == stall_at:
                if not self._shape_point():
                    return
            elif i and delay > 0:
                # Pausing with an eye on the socket notices a departed client.
                if not self._stream_pause(delay):
                    return
            if frame is None:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            else:
                self._write_chunk(frame)

    def _write_chunk(self, data: bytes) -> None:
        if not data:
            return  # a zero-size chunk would end the body early
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send_error(self, dialect: str, status: int, message: str) -> None:
        self._send_failure(dialect, _Failure(status, None, {}, 0), message)

    def _send_failure(self, dialect: str, failure: _Failure, message: str | None = None) -> None:
        status = failure.status
        message = message or f"fake upstream: injected {status}"
        headers = {"retry-after": DEFAULT_RETRY_AFTER} if status == 429 else {}
        request_id = _new_id("req_")
        if dialect == ANTHROPIC:
            headers["request-id"] = request_id
        headers.update(failure.headers)
        headers = {k: v for k, v in headers.items() if v is not None}  # None: leave that header out
        if failure.body is None:
            retry_after = headers.get("retry-after")
            body = _dumps(_error_body(dialect, status, message, request_id, retry_after))
        elif isinstance(failure.body, (dict, list)):
            body = _dumps(failure.body)
        else:
            body = failure.body.encode() if isinstance(failure.body, str) else failure.body
        self.send_raw(status, body, "application/json", headers)


def _gzip_frames(frames: Iterable[bytes]) -> Iterator[bytes]:
    """Each frame gzip-compressed with a sync flush, so it decodes on arrival."""
    z = zlib.compressobj(wbits=31)
    for frame in frames:
        yield z.compress(frame) + z.flush(zlib.Z_SYNC_FLUSH)
    yield z.flush()


def _error_body(
    dialect: str, status: int, message: str, request_id: str, retry_after: str | None
) -> dict:
    if dialect == ANTHROPIC:
        return anthropic_error(status, message, request_id)
    if dialect == GEMINI:
        return gemini_error(status, message, retry_after)
    if dialect == CODEX:
        return codex_error(status, message, retry_after)
    return openai_error(status, message)


# ---------------------------------------------------------------------------
# routes


def _account_tag(req: Captured) -> str:
    key = req.headers.get("x-api-key") or req.headers.get("authorization", "")
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def _foreign_signature(body: dict, tag: str) -> str | None:
    """Anthropic's 400 text for a thinking block another account signed, else None."""
    for i, msg in enumerate(body.get("messages") or []):
        content = msg.get("content") if isinstance(msg, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if isinstance(block, dict) and block.get("type") == "thinking":
                if not str(block.get("signature", "")).startswith(f"sig-{tag}-"):
                    return f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
    return None


def _anthropic_messages(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    body = req.json
    tag = _account_tag(req) if fake.account_signatures else None
    if tag is not None and (bad := _foreign_signature(body, tag)):
        h._send_error(ANTHROPIC, 400, bad)
        return
    answer = fake._answer(body.get("system"), body.get("messages"))
    if tag is not None:
        answer = dataclasses.replace(answer, signature_prefix=f"sig-{tag}-")
    model, msg_id = body.get("model", ""), _new_id("msg_")
    headers = {"request-id": _new_id("req_")}
    if body.get("stream"):
        events = anthropic_events(msg_id, model, answer)
        frames = (_sse(data, event=name) for name, data in events)
        h.send_stream(frames, "text/event-stream", headers)
    else:
        h.send_json(200, anthropic_message(msg_id, model, answer), headers)


def _anthropic_count_tokens(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    prompt = fake._prompt_tokens(req.json.get("system"), req.json.get("messages"))
    h.send_json(200, {"input_tokens": prompt}, {"request-id": _new_id("req_")})


def _openai_chat(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    body = req.json
    answer = fake._answer(body.get("messages"))
    args = (_new_id("chatcmpl-"), int(time.time()), body.get("model", ""), answer)
    headers = {"x-request-id": _new_id("req_")}
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        frames = [_sse(chunk) for chunk in openai_chunks(*args, include_usage)]
        h.send_stream([*frames, b"data: [DONE]\n\n"], "text/event-stream", headers)
    else:
        h.send_json(200, openai_completion(*args), headers)


def _openai_models(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    data = [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": "fake"} for m in fake.models
    ]
    h.send_json(200, {"object": "list", "data": data})


def _responses(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    body = req.json
    # Only the Codex backend insists on these; the public API accepts both modes.
    rejection = codex_rejection(body) if req.path.startswith("/backend-api/") else None
    if rejection is not None:
        h.send_json(400, {"detail": rejection})
        return
    answer = fake._answer(body.get("instructions"), body.get("input"))
    resp_id, created = _new_id("resp_"), int(time.time())
    headers = {"x-request-id": _new_id("req_")}
    if body.get("stream"):
        events = responses_events(resp_id, created, body, answer)
        frames = (_sse(event, event=event["type"]) for event in events)
        h.send_stream(frames, "text/event-stream", headers)
    else:
        output = responses_output(answer)
        h.send_json(200, responses_object(resp_id, created, body, output, answer.usage), headers)


def _gemini_prompt(body: dict) -> tuple[Any, Any]:
    return body.get("systemInstruction"), body.get("contents")


def _send_gemini(
    h: _Handler,
    req: Captured,
    method: str,
    args: tuple[str, str, _Answer],
    wrap: Callable[[dict], dict],
    eol: str,
) -> None:
    """Answer a Gemini-style generate call; `wrap` dresses each response body."""
    if method == "generateContent":
        h.send_json(200, wrap(gemini_response(*args)))
    elif req.query.get("alt") == "sse":
        frames = (_sse(wrap(chunk), eol=eol) for chunk in gemini_chunks(*args))
        h.send_stream(frames, "text/event-stream")
    else:
        h.send_stream(_json_array_frames(wrap(c) for c in gemini_chunks(*args)), "application/json")


def _gemini_generate(h: _Handler, fake: FakeUpstream, req: Captured, match: re.Match) -> None:
    answer = fake._answer(*_gemini_prompt(req.json))
    args = (_new_id(""), match["model"], answer)
    _send_gemini(h, req, match["method"], args, lambda body: body, eol="\r\n")


def _json_array_frames(items: Iterable[dict]) -> Iterator[bytes]:
    # Without alt=sse Gemini streams one JSON array, written element by element.
    for i, item in enumerate(items):
        yield (b"[" if i == 0 else b",\r\n") + _dumps(item)
    yield b"]"


def _gemini_count_tokens(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    body = req.json.get("generateContentRequest") or req.json
    total = fake._prompt_tokens(*_gemini_prompt(body))
    details = [{"modality": "TEXT", "tokenCount": total}]
    h.send_json(200, {"totalTokens": total, "promptTokensDetails": details})


def _code_assist_generate(h: _Handler, fake: FakeUpstream, req: Captured, match: re.Match) -> None:
    body = req.json
    if not body.get("project"):
        h._send_error(GEMINI, 400, 'fake upstream: Code Assist needs a "project"')
        return
    request = body.get("request") or {}
    answer = fake._answer(*_gemini_prompt(request))
    trace_id = uuid.uuid4().hex[:16]  # one per call, repeated on every event

    def wrap(response: dict) -> dict:
        return {"response": response, "traceId": trace_id}

    args = (_new_id(""), body.get("model", ""), answer)
    # Code Assist's SSE ends events with a plain blank line, unlike Gemini's CRLF.
    _send_gemini(h, req, match["method"], args, wrap, eol="\n")


def _code_assist_count_tokens(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    request = req.json.get("request") or {}
    h.send_json(200, {"totalTokens": fake._prompt_tokens(*_gemini_prompt(request))})


def _code_assist_load(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    if fake.code_assist_onboarded:
        h.send_json(200, {"currentTier": {"id": "free-tier", "name": "Gemini Code Assist for individuals"},
                          "allowedTiers": [{"id": "free-tier", "isDefault": True}],
                          "cloudaicompanionProject": fake.code_assist_project})
    else:
        h.send_json(200, {"allowedTiers": [{"id": "free-tier", "name": "Free", "isDefault": True,
                                            "userDefinedCloudaicompanionProject": False}]})


def _code_assist_onboard(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    if req.json.get("tierId") == "free-tier" and req.json.get("cloudaicompanionProject"):
        h._send_error(GEMINI, 400, "Precondition Failed: free tier takes no project")
        return
    if fake.onboard_polls_left > 0:
        fake.onboard_polls_left -= 1
        h.send_json(200, {"name": "operations/onboard-1", "done": False})
        return
    fake.code_assist_onboarded = True
    h.send_json(200, {"name": "operations/onboard-1", "done": True,
                      "response": {"cloudaicompanionProject": {"id": fake.code_assist_project, "name": "Fake"}}})


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    dialect: str
    handle: Callable[[_Handler, FakeUpstream, Captured, re.Match], None]
    needs_json: bool = True


_GEMINI_PATH = r"/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<method>{})"
_GEMINI_GENERATE = re.compile(_GEMINI_PATH.format("generateContent|streamGenerateContent"))
_GEMINI_COUNT = re.compile(_GEMINI_PATH.format("countTokens"))
_CODE_ASSIST_GENERATE = re.compile(r"/v1internal:(?P<method>generateContent|streamGenerateContent)")

_ROUTES = (
    _Route("POST", re.compile(r"/v1/messages"), ANTHROPIC, _anthropic_messages),
    _Route("POST", re.compile(r"/v1/messages/count_tokens"), ANTHROPIC, _anthropic_count_tokens),
    _Route("POST", re.compile(r"/v1/chat/completions"), OPENAI, _openai_chat),
    _Route("GET", re.compile(r"/v1/models"), OPENAI, _openai_models, needs_json=False),
    _Route("POST", _GEMINI_GENERATE, GEMINI, _gemini_generate),
    _Route("POST", _GEMINI_COUNT, GEMINI, _gemini_count_tokens),
    _Route("POST", re.compile(r"/v1/responses"), OPENAI, _responses),
    _Route("POST", re.compile(r"/backend-api/codex/responses"), CODEX, _responses),
    _Route("POST", _CODE_ASSIST_GENERATE, GEMINI, _code_assist_generate),
    _Route("POST", re.compile(r"/v1internal:countTokens"), GEMINI, _code_assist_count_tokens),
    _Route("POST", re.compile(r"/v1internal:loadCodeAssist"), GEMINI, _code_assist_load),
    _Route("POST", re.compile(r"/v1internal:onboardUser"), GEMINI, _code_assist_onboard),
)


def _find_route(method: str, path: str) -> tuple[_Route | None, re.Match | None]:
    for route in _ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, match
    return None, None
