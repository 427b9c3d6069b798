"""Fake provider upstreams that speak the published wire formats.

`FakeUpstream` is a real HTTP/1.1 server on 127.0.0.1 (ephemeral port) that
answers like Anthropic Messages, OpenAI Chat Completions and Gemini
generateContent, non-stream and SSE, so the gateway (a separate `mitmdump`
process) and the official SDKs can talk to it over a socket.

Routes (anything else is a 404 in OpenAI's error shape):

* POST /v1/messages, POST /v1/messages/count_tokens            (Anthropic)
* POST /v1/chat/completions, GET /v1/models                    (OpenAI)
* POST /v1beta/models/{model}:generateContent | :streamGenerateContent
  | :countTokens                                               (Gemini; the
  same under /v1/, which google-genai uses by default)

Token counting is deterministic so tests can assert exact numbers:

* prompt tokens  = number of whitespace-separated words in every string under
  a `text` or `content` key (or a bare string) inside the prompt fields:
  Anthropic `system` + `messages`, OpenAI `messages`, Gemini
  `systemInstruction` + `contents` (countTokens also looks inside
  `generateContentRequest`). Roles, ids, tool arguments and media are ignored.
* cached tokens  = min(`cached_tokens` setting, prompt tokens); default 0.
* output tokens  = number of words in `reply_text`.

Each provider reports these in its own convention, so the total prompt size is
the same number everywhere: Anthropic `input_tokens` = prompt - cached with
`cache_read_input_tokens` = cached; OpenAI `prompt_tokens` and Gemini
`promptTokenCount` include the cached part. Anthropic's `message_start`
reports `output_tokens: 1` like the real API; the final count arrives in the
cumulative `message_delta` usage. `count_tokens`/`countTokens` return the
prompt tokens.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_REPLY = "Hello from fake"
DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini")
DEFAULT_RETRY_AFTER = "1"

ANTHROPIC = "anthropic"
OPENAI = "openai"
GEMINI = "gemini"


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


@dataclass
class _Failure:
    status: int
    body: bytes | str | dict | list | None
    headers: dict[str, str]
    remaining: int


@dataclass(frozen=True)
class _Usage:
    prompt: int
    cached: int
    output: int


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
    `stream_delay` (seconds slept between streamed events), `cached_tokens`,
    `require_auth` (None, or a callable taking `Captured` and returning
    whether to accept; a refusal answers 401 in the route's error shape) and
    `models` (ids listed by `GET /v1/models`).
    """

    def __init__(
        self,
        reply_text: str = DEFAULT_REPLY,
        *,
        stream_delay: float = 0.0,
        cached_tokens: int = 0,
        require_auth: Callable[[Captured], bool] | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
    ) -> None:
        self.reply_text = reply_text
        self.stream_delay = stream_delay
        self.cached_tokens = cached_tokens
        self.require_auth = require_auth
        self.models = list(models)
        self._lock = threading.Lock()
        self._requests: list[Captured] = []
        self._failures: list[_Failure] = []
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
        `retry-after: 1` unless `headers` overrides it. Calls queue up FIFO.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        failure = _Failure(status, body, {k.lower(): v for k, v in (headers or {}).items()}, times)
        with self._lock:
            self._failures.append(failure)

    # -- used by the handler --------------------------------------------

    def _record(self, req: Captured) -> None:
        with self._lock:
            self._requests.append(req)

    def _take_failure(self) -> _Failure | None:
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.pop(0)
            return failure

    def _usage(self, *prompt_nodes: Any) -> _Usage:
        prompt = sum(_prompt_words(node) for node in prompt_nodes)
        return _Usage(prompt, min(self.cached_tokens, prompt), _word_count(self.reply_text))


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


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


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


def anthropic_message(msg_id: str, model: str, text: str, usage: _Usage) -> dict:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(usage, usage.output),
    }


def anthropic_events(
    msg_id: str, model: str, text: str, usage: _Usage
) -> Iterator[tuple[str, dict]]:
    start = anthropic_message(msg_id, model, text, usage)
    start.update(content=[], stop_reason=None, usage=_anthropic_usage(usage, 1))
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    yield "content_block_start", {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    for piece in split_reply(text):
        yield "content_block_delta", {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        }
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": usage.output},
    }
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
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def openai_completion(cmpl_id: str, created: int, model: str, text: str, usage: _Usage) -> dict:
    return {
        "id": cmpl_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": _openai_usage(usage),
    }


def openai_chunks(
    cmpl_id: str, created: int, model: str, text: str, usage: _Usage, include_usage: bool
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

    yield chunk({"role": "assistant", "content": ""})
    for piece in split_reply(text):
        yield chunk({"content": piece})
    yield chunk({}, "stop")
    if include_usage:
        final = chunk({})
        final.update(choices=[], usage=_openai_usage(usage))
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
    return {
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": usage.output,
        "totalTokenCount": usage.prompt + usage.output,
        "cachedContentTokenCount": usage.cached,
    }


def _gemini_candidate(text: str, final: bool) -> dict:
    content = {"role": "model", "parts": [{"text": text}]}
    candidate: dict[str, Any] = {"content": content, "index": 0}
    if final:
        candidate["finishReason"] = "STOP"
    return candidate


def gemini_response(response_id: str, model: str, text: str, usage: _Usage) -> dict:
    return {
        "candidates": [_gemini_candidate(text, final=True)],
        "usageMetadata": _gemini_usage(usage),
        "modelVersion": model,
        "responseId": response_id,
    }


def gemini_chunks(response_id: str, model: str, text: str, usage: _Usage) -> Iterator[dict]:
    pieces = split_reply(text) or [""]
    # Like the real API, interim chunks report only the prompt side; the last
    # chunk carries finishReason and the final counts.
    interim_usage = {"promptTokenCount": usage.prompt, "totalTokenCount": usage.prompt}
    for i, piece in enumerate(pieces):
        final = i == len(pieces) - 1
        yield {
            "candidates": [_gemini_candidate(piece, final)],
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
# HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeUpstream) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

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

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        self.server.track(self.connection, alive=False)
        super().finish()

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
        url = urlsplit(self.path)
        body = self._read_body()
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            key = key.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        return Captured(self.command, url.path, query, headers, body, parsed)

    def _dispatch(self) -> None:
        fake = self.server.fake
        req = self._capture()
        fake._record(req)
        route, match = _find_route(req.method, req.path)
        dialect = route.dialect if route else OPENAI
        failure = fake._take_failure()
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

    # -- response side ----------------------------------------------------

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self.send_raw(status, _dumps(obj), "application/json", headers)

    def send_raw(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def send_stream(
        self, frames: Iterable[bytes], content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        """Send each frame as its own HTTP chunk, pausing `stream_delay` between them."""
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for i, frame in enumerate(frames):
                if i and self.server.fake.stream_delay > 0:
                    time.sleep(self.server.fake.stream_delay)
                self._write_chunk(frame)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up mid-stream

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
        if failure.body is None:
            retry_after = headers.get("retry-after")
            body = _dumps(_error_body(dialect, status, message, request_id, retry_after))
        elif isinstance(failure.body, (dict, list)):
            body = _dumps(failure.body)
        else:
            body = failure.body.encode() if isinstance(failure.body, str) else failure.body
        self.send_raw(status, body, "application/json", headers)


def _error_body(
    dialect: str, status: int, message: str, request_id: str, retry_after: str | None
) -> dict:
    if dialect == ANTHROPIC:
        return anthropic_error(status, message, request_id)
    if dialect == GEMINI:
        return gemini_error(status, message, retry_after)
    return openai_error(status, message)


# ---------------------------------------------------------------------------
# routes


def _anthropic_messages(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    body = req.json
    usage = fake._usage(body.get("system"), body.get("messages"))
    model, text, msg_id = body.get("model", ""), fake.reply_text, _new_id("msg_")
    headers = {"request-id": _new_id("req_")}
    if body.get("stream"):
        events = anthropic_events(msg_id, model, text, usage)
        frames = (_sse(data, event=name) for name, data in events)
        h.send_stream(frames, "text/event-stream", headers)
    else:
        h.send_json(200, anthropic_message(msg_id, model, text, usage), headers)


def _anthropic_count_tokens(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    usage = fake._usage(req.json.get("system"), req.json.get("messages"))
    h.send_json(200, {"input_tokens": usage.prompt}, {"request-id": _new_id("req_")})


def _openai_chat(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    body = req.json
    usage = fake._usage(body.get("messages"))
    args = (_new_id("chatcmpl-"), int(time.time()), body.get("model", ""), fake.reply_text, usage)
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


def _gemini_prompt(body: dict) -> tuple[Any, Any]:
    return body.get("systemInstruction"), body.get("contents")


def _gemini_generate(h: _Handler, fake: FakeUpstream, req: Captured, match: re.Match) -> None:
    model, method = match["model"], match["method"]
    usage = fake._usage(*_gemini_prompt(req.json))
    args = (_new_id(""), model, fake.reply_text, usage)
    if method == "generateContent":
        h.send_json(200, gemini_response(*args))
    elif req.query.get("alt") == "sse":
        h.send_stream((_sse(c, eol="\r\n") for c in gemini_chunks(*args)), "text/event-stream")
    else:
        h.send_stream(_json_array_frames(gemini_chunks(*args)), "application/json")


def _json_array_frames(items: Iterable[dict]) -> Iterator[bytes]:
    # Without alt=sse Gemini streams one JSON array, written element by element.
    for i, item in enumerate(items):
        yield (b"[" if i == 0 else b",\r\n") + _dumps(item)
    yield b"]"


def _gemini_count_tokens(h: _Handler, fake: FakeUpstream, req: Captured, _: re.Match) -> None:
    body = req.json.get("generateContentRequest") or req.json
    total = fake._usage(*_gemini_prompt(body)).prompt
    details = [{"modality": "TEXT", "tokenCount": total}]
    h.send_json(200, {"totalTokens": total, "promptTokensDetails": details})


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

_ROUTES = (
    _Route("POST", re.compile(r"/v1/messages"), ANTHROPIC, _anthropic_messages),
    _Route("POST", re.compile(r"/v1/messages/count_tokens"), ANTHROPIC, _anthropic_count_tokens),
    _Route("POST", re.compile(r"/v1/chat/completions"), OPENAI, _openai_chat),
    _Route("GET", re.compile(r"/v1/models"), OPENAI, _openai_models, needs_json=False),
    _Route("POST", _GEMINI_GENERATE, GEMINI, _gemini_generate),
    _Route("POST", _GEMINI_COUNT, GEMINI, _gemini_count_tokens),
)


def _find_route(method: str, path: str) -> tuple[_Route | None, re.Match | None]:
    for route in _ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, match
    return None, None
