"""Property: hostile request bodies and upstream streams never crash the gateway.

Request side: for each client format, random JSON and mutations of a valid
body (fields deleted, types swapped, values replaced by junk or nested deep,
bytes cut or inserted) go through `Gateway.draft` and `Gateway.finalize` as
the router addon calls them, without mitmproxy. The model picks the provider:
the client's own format, or one it is translated to. Allowed: a Plan (whose
body is JSON), or a GatewayError with a 4xx status.

Stream side: random chunks and mutations of a valid stream of each provider
format, split at random points and ended with b"", go through
`StreamTranslator` for every client format. Allowed: bytes (or a list of
bytes) back from every call.

Every example runs under a deadline and an alarm, so a hang fails too. The
examples are the same on every run; QUOTIO_FUZZ_EXAMPLES=5000 explores
further with fresh random ones (for hunting, not for CI).
"""

from __future__ import annotations

import copy
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from quotio_core.formats import eventstream
from quotio_core.config import load_config
from quotio_core.errors import GatewayError
from quotio_core.gateway import Gateway, Plan
from quotio_core.routes import classify
from quotio_core.formats import StreamTranslator, aggregate, translate_response
from tests.fakes.kiro import DEFAULT_TOKEN as KIRO_TOKEN
from tests.fakes.upstreams import (
    ToolCall,
    _Answer,
    _sse,
    _Usage,
    anthropic_events,
    gemini_chunks,
    openai_chunks,
    responses_events,
)

HUNT = int(os.environ.get("QUOTIO_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=HUNT or 100,
    deadline=timedelta(milliseconds=800),
    derandomize=not HUNT,  # the same examples on every run: CI stays stable
    database=None,
)
HANG_SECONDS = 5


@contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail an example that runs away instead of waiting on it (the deadline only judges finished ones)."""

    def fire(signum, frame):
        raise TimeoutError(f"no answer within {seconds}s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- JSON junk and mutations -------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "text", "user", "assistant", "model", "function", "tool_use", "data:image/png;base64,x"])
)
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from paths(value, (*prefix, i))


def swap_type(value: Any) -> Any:
    """The same content in another JSON type."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return str(value) if value % 2 else bool(value)
    if isinstance(value, str):
        return [value] if len(value) % 2 else {"text": value}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return list(value.values()) or 0
    return {}


def nest(value: Any, depth: int) -> Any:
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def mutate_json(data: st.DataObject, body: Any, max_steps: int = 4) -> Any:
    body = copy.deepcopy(body)
    for _ in range(data.draw(st.integers(1, max_steps), label="mutations")):
        path = data.draw(st.sampled_from(list(paths(body))), label="path")
        op = data.draw(st.sampled_from(["delete", "junk", "swap", "nest", "duplicate", "odd"]), label="op")
        if not path:
            if op == "swap":
                body = swap_type(body)
            continue
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        key, value = path[-1], parent[path[-1]]
        if op == "delete":
            del parent[key]
        elif op == "junk":
            parent[key] = data.draw(JUNK, label="junk")
        elif op == "swap":
            parent[key] = swap_type(value)
        elif op == "nest":
            parent[key] = nest(value, data.draw(st.sampled_from([1, 2, 5, 60, 127, 200]), label="depth"))
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(value))
        elif op == "odd":
            odd = [10**30, -(10**30), -1, 0, 1.5, "9" * 50, "\udc80", ["\ud83d"], {"k": []}, "[" * 100_000]
            parent[key] = data.draw(st.sampled_from(odd), label="odd")
    return body


def mutate_bytes(data: st.DataObject, raw: bytes) -> bytes:
    """Byte-level damage: a cut, an insertion or a deletion at a random point."""
    at = data.draw(st.integers(0, len(raw)), label="at")
    op = data.draw(st.sampled_from(["cut", "insert", "delete"]), label="byte op")
    if op == "cut":
        return raw[:at]
    if op == "insert":
        junk = data.draw(
            st.sampled_from([b"[", b"{", b'"', b"\\", b",", b"]]]", b"\xff\xfe", b"NaN", b"1e999", b"[" * 100_000])
            | st.binary(max_size=8),
            label="insert",
        )
        return raw[:at] + junk + raw[at:]
    end = data.draw(st.integers(at, len(raw)), label="end")
    return raw[:at] + raw[end:]


# --- the gateway, in-process ------------------------------------------------------------------

UP = "http://127.0.0.1:9"  # nothing is sent: plans only
# Provider format -> a model that routes there (through the credentials below).
MODELS = {
    "anthropic": "claude-sonnet-4-20250514",
    "openai": "fast",
    "gemini": "gemini-2.5-flash",
    "responses": "gpt-5",
    "kiro": "claude-sonnet-4.5",
    "code-assist": "gcli-pro",
}
CLIENT_FORMATS = ("anthropic", "openai", "responses", "gemini")


@pytest.fixture(scope="module")
def gw(tmp_path_factory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("fuzz")
    cfg, auth = root / "cfg", root / "auth"
    cfg.mkdir()
    auth.mkdir(mode=0o700)
    (cfg / "config.yaml").write_text(yaml.safe_dump({
        "claude-api-key": [{"api-key": "sk-ant-fuzz"}],
        "gemini-api-key": [{"api-key": "AIza-fuzz", "models": [{"name": "gemini-2.5-flash"}]}],
        "openai-compatibility": [{
            "name": "local", "base-url": UP + "/v1", "api-key-entries": [{"api-key": "sk-compat"}],
            "models": [{"name": "upstream-model-x", "alias": "fast"}],
        }],
        "oauth-model-alias": {"gemini": [{"name": "gemini-2.5-pro", "alias": "gcli-pro"}]},
        "upstreams": {
            "claude": {"base-url": UP},
            "codex": {"base-url": UP + "/backend-api/codex"},
            "gemini": {"api-key-base-url": UP, "base-url": UP},
        },
    }))
    files = {
        "codex-a@example.com.json": {
            "type": "codex", "email": "a@example.com", "access_token": "codex-at", "account_id": "acct",
        },
        "gemini-a@example.com-proj-1.json": {
            "type": "gemini", "email": "a@example.com", "project_id": "proj-1",
            "token": {"access_token": "ya29.fuzz", "refresh_token": "r", "token_type": "Bearer"},
        },
        "kiro-builder-id-fuzz.json": {
            "type": "kiro", "accessToken": KIRO_TOKEN, "refreshToken": "rt", "expiresAt": "2099-01-01T00:00:00Z",
            "authMethod": "builder-id",
        },
    }
    for name, content in files.items():
        path = auth / name
        path.write_text(json.dumps(content))
        path.chmod(0o600)
    gateway = Gateway(load_config(env={"QUOTIO_CONFIG_DIR": str(cfg), "QUOTIO_AUTH_DIR": str(auth)}))
    gateway.rescan()
    yield gateway
    gateway.records.close()


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "format": "uri"},
        "unit": {"anyOf": [{"$ref": "#/$defs/unit"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": ["string", "null"]}},
    },
    "required": ["city"],
    "additionalProperties": False,
    "$defs": {"unit": {"enum": ["c", "f"], "default": "c"}},
}
PNG = "iVBORw0KGgo="

VALID = {
    "anthropic": {
        "model": MODELS["anthropic"], "max_tokens": 256, "stream": True, "temperature": 0.5, "top_p": 0.9,
        "top_k": 5, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "tools": [
            {"name": "get_weather", "description": "weather", "input_schema": SCHEMA},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
        ],
        "messages": [
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "checking"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                    {"type": "text", "text": "22C"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "oops", "is_error": True},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "text", "text": "thanks"},
            ]},
        ],
        "x_unknown": {"kept": [1, 2]},
    },
    "openai": {
        "model": MODELS["openai"], "stream": True, "stream_options": {"include_usage": True},
        "max_completion_tokens": 300, "temperature": 1, "top_p": 0.5, "stop": ["END"], "reasoning_effort": "low",
        "user": "u", "n": 1, "response_format": {"type": "json_object"}, "parallel_tool_calls": False,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": SCHEMA, "strict": True}},
            {"type": "custom", "custom": {"name": "grammar"}},
        ],
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
            {"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "auto"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ]},
            {"role": "assistant", "content": None, "reasoning_content": "think", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
            {"role": "user", "content": "thanks"},
        ],
        "x_unknown": {"kept": [1, 2]},
    },
    "responses": {
        "model": MODELS["responses"], "instructions": "be brief", "stream": True, "store": False,
        "max_output_tokens": 300, "temperature": 0.2, "top_p": 1, "parallel_tool_calls": True,
        "tool_choice": "auto", "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "conv-1", "text": {"verbosity": "low"},
        "tools": [
            {"type": "function", "name": "get_weather", "description": "w", "parameters": SCHEMA, "strict": False},
            {"type": "web_search"},
        ],
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]},
            {"role": "user", "content": "hi"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "https://example.com/a.png"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hmm"}],
             "encrypted_content": "enc"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "22C"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
        ],
        "x_unknown": {"kept": [1, 2]},
    },
    "gemini": {
        "contents": [
            {"role": "user", "parts": [
                {"text": "hi"},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {"file_data": {"mime_type": "image/png", "file_uri": "https://example.com/a.png"}},
            ]},
            {"role": "model", "parts": [
                {"text": "hmm", "thought": True, "thoughtSignature": "c2ln"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"},
            ]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "22C"}}}]},
        ],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": [
            {"functionDeclarations": [
                {"name": "get_weather", "description": "w", "parameters": {
                    "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}},
                {"name": "lookup", "parametersJsonSchema": SCHEMA},
            ]},
            {"googleSearch": {}},
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather", "lookup"]}},
        "generationConfig": {
            "maxOutputTokens": 300, "temperature": 0.3, "topP": 0.9, "topK": 40, "stopSequences": ["END"],
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}, "responseMimeType": "text/plain",
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    },
}
# Where each client format's requests go; Gemini's carry the model in the path.
PATHS = {
    "anthropic": ["/v1/messages", "/v1/messages/count_tokens"],
    "openai": ["/v1/chat/completions"],
    "responses": ["/v1/responses"],
    "gemini": [
        "/v1beta/models/{model}:generateContent",
        "/v1beta/models/{model}:streamGenerateContent",
        "/v1beta/models/{model}:countTokens",
    ],
}


def plan(gw: Gateway, path: str, raw: bytes) -> Plan:
    """What addons/router.py does, with every remote image "fetched" as a tiny PNG."""
    draft = gw.draft(classify("POST", path), raw, {}, {})
    draft.inline_images({url: ("image/png", PNG) for url in draft.image_urls()})
    return gw.finalize(draft)


def plan_or_4xx(gw: Gateway, fmt: str, path: str, raw: bytes) -> None:
    """The property: a Plan whose body is JSON, or a 4xx GatewayError; nothing else escapes."""
    with no_hang():
        try:
            result = plan(gw, path, raw)
        except GatewayError as e:
            assert 400 <= e.status < 500, f"{e.status} {e.code}: {e.message}"
            return
    assert isinstance(result, Plan)
    if result.body is not None:
        assert isinstance(json.loads(result.body), dict)
    if result.local_reply is not None:
        json.dumps(result.local_reply, allow_nan=False)


def request_for(data: st.DataObject, fmt: str, body: Any) -> tuple[str, bytes]:
    model = data.draw(st.sampled_from(sorted(MODELS.values())), label="model")
    if isinstance(body, dict) and "model" in body:
        body["model"] = model
    path = data.draw(st.sampled_from(PATHS[fmt]), label="path").format(model=model)
    return path, json.dumps(body).encode()


def test_valid_bodies_plan_for_every_provider(gw: Gateway) -> None:
    for fmt in CLIENT_FORMATS:
        for model in MODELS.values():
            body = {**copy.deepcopy(VALID[fmt]), **({"model": model} if fmt != "gemini" else {})}
            path = PATHS[fmt][0].format(model=model)
            assert isinstance(plan(gw, path, json.dumps(body).encode()), Plan), (fmt, model)


def changed(fmt: str, path: tuple, value: Any) -> dict:
    body = copy.deepcopy(VALID[fmt])
    node = body
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return body


DELETE = object()
# What the fuzzer found (and crashes of the same kind next to them), pinned: (client, provider, path, value).
REQUEST_REGRESSIONS = [
    # Kiro raised on an image with neither bytes nor URL (a base64 source without data).
    ("anthropic", "kiro", ("messages", 2, "content", 0, "content", 1, "source", "data"), DELETE),
    # A Responses function tool named by a list reached encoders that hash names.
    ("responses", "openai", ("tools", 0, "name"), [None]),
    # A Responses `include` that is not a list (the Codex backend's adapter appends to it).
    ("responses", "responses", ("include",), 10**30),
    # A Responses tool description that is not a string (Kiro cuts descriptions to length).
    ("responses", "kiro", ("tools", 0, "description"), 10**30),
    # Tool arguments: JSON strings parsed after the body's depth check, nested past the parser's limit.
    ("openai", "anthropic", ("messages", 3, "tool_calls", 0, "function", "arguments"), "[" * 100_000),
    ("responses", "gemini", ("input", 4, "arguments"), "[" * 100_000),
    ("gemini", "openai", ("contents", 1, "parts", 1, "functionCall", "args"), "[" * 100_000),
    # Gemini parts with a non-string mimeType, fileUri or call id.
    ("gemini", "kiro", ("contents", 0, "parts", 1, "inlineData", "mimeType"), ["image/png"]),
    ("gemini", "kiro", ("contents", 0, "parts", 2, "file_data", "file_uri"), ["https://example.com/a.png"]),
    ("gemini", "anthropic", ("contents", 1, "parts", 1, "functionCall", "id"), ["x"]),
]


@pytest.mark.parametrize(("fmt", "provider", "path", "value"), REQUEST_REGRESSIONS, ids=lambda v: repr(v)[:30])
def test_found_by_fuzzing_requests(gw: Gateway, fmt: str, provider: str, path: tuple, value: Any) -> None:
    model = MODELS[provider]
    body = changed(fmt, path, value) | ({"model": model} if fmt != "gemini" else {})
    plan_or_4xx(gw, fmt, PATHS[fmt][0].format(model=model), json.dumps(body).encode())


@pytest.mark.parametrize("fmt", CLIENT_FORMATS)
@FUZZ
@given(data=st.data())
def test_mutated_request_is_planned_or_refused(gw: Gateway, fmt: str, data: st.DataObject) -> None:
    body = mutate_json(data, VALID[fmt])
    path, raw = request_for(data, fmt, body)
    if data.draw(st.booleans(), label="damage bytes"):
        raw = mutate_bytes(data, raw)
    plan_or_4xx(gw, fmt, path, raw)


@pytest.mark.parametrize("fmt", CLIENT_FORMATS)
@FUZZ
@given(data=st.data())
def test_random_request_is_planned_or_refused(gw: Gateway, fmt: str, data: st.DataObject) -> None:
    # Top-level keys the format reads, with junk values; sometimes not an object at all.
    keys = sorted({k for k in VALID[fmt]} | {"model", "messages", "input", "contents", "generateContentRequest"})
    body = data.draw(st.dictionaries(st.sampled_from(keys), JUNK, max_size=6) | JUNK, label="body")
    path, raw = request_for(data, fmt, body)
    plan_or_4xx(gw, fmt, path, raw)


# --- streams ----------------------------------------------------------------------------------

PROVIDER_FORMATS = ("anthropic", "openai", "gemini", "responses", "kiro")
ANSWER = _Answer(
    text="Hello there",
    thinking="let me think",
    tools=(ToolCall("get_weather", {"city": "Oslo", "unit": "c"}, id="call_1"),),
    usage=_Usage(prompt=10, cached=2, output=7, reasoning=3),
)


def _kiro_events() -> list[tuple[str, dict]]:
    return [
        ("reasoningContentEvent", {"text": "let me think", "signature": "sig"}),
        ("assistantResponseEvent", {"content": "Hello "}),
        ("assistantResponseEvent", {"content": "there"}),
        ("toolUseEvent", {"toolUseId": "tooluse_1", "name": "get_weather", "input": '{"city":'}),
        ("toolUseEvent", {"toolUseId": "tooluse_1", "name": "get_weather", "input": '"Oslo"}'}),
        ("toolUseEvent", {"toolUseId": "tooluse_1", "name": "get_weather", "stop": True}),
        ("contextUsageEvent", {"contextUsagePercentage": 12.5}),
        ("metricsEvent", {"tokenUsage": {"uncachedInputTokens": 8, "cacheReadInputTokens": 2, "outputTokens": 7}}),
    ]


def stream_events(fmt: str) -> list[tuple[str | None, Any]]:
    """A valid stream of `fmt` as (event name, payload) pairs."""
    if fmt == "anthropic":
        return list(anthropic_events("msg_1", "m", ANSWER))
    if fmt == "openai":
        return [(None, c) for c in openai_chunks("chatcmpl-1", 1, "m", ANSWER, include_usage=True)] + [(None, "[DONE]")]
    if fmt == "gemini":
        return [(None, c) for c in gemini_chunks("resp-1", "m", ANSWER)]
    if fmt == "responses":
        return [(e["type"], e) for e in responses_events("resp_1", 1, {"model": "m"}, ANSWER)]
    return _kiro_events()


def encode_stream(fmt: str, events: list[tuple[str | None, Any]]) -> bytes:
    if fmt == "kiro":
        return b"".join(eventstream.event(name or "", json.dumps(payload).encode()) for name, payload in events)
    out = b""
    for name, payload in events:
        if payload == "[DONE]":
            out += b"data: [DONE]\n\n"
        else:
            out += _sse(payload, name, eol="\r\n" if fmt == "gemini" else "\n")
    return out


VALID_STREAMS = {fmt: stream_events(fmt) for fmt in PROVIDER_FORMATS}
EVENT_NAMES = sorted({name for events in VALID_STREAMS.values() for name, _ in events if name} | {"error", "ping"})


def split(data: st.DataObject, raw: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8), label="cuts"))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


def translate_all(src: str, dst: str, chunks: list[bytes]) -> None:
    """The property: every call returns bytes or a list of bytes; nothing escapes.

    The same bytes folded whole (`aggregate`, for a non-stream client of a
    stream-only upstream) must give one answer: a status and a JSON body.
    """
    with no_hang():
        translator = StreamTranslator(src, dst, "client-model", include_usage=True)
        for chunk in [*chunks, b""]:
            out = translator(chunk)
            assert isinstance(out, bytes | list), type(out)
            assert all(isinstance(piece, bytes) for piece in ([out] if isinstance(out, bytes) else out))
        folded = aggregate(src, dst, "client-model", b"".join(chunks))
        assert isinstance(folded.status, int)
        json.dumps(folded.body)


def stream_with(src: str, index: int, path: tuple, value: Any) -> bytes:
    events = [list(e) for e in copy.deepcopy(VALID_STREAMS[src])]
    if not path:
        events[index][1] = value
        return encode_stream(src, [tuple(e) for e in events])
    node = events[index][1]
    for key in path[:-1]:
        node = node[key]
    assert path[-1] in node, f"{src} event {index} has no {path}"
    node[path[-1]] = value
    return encode_stream(src, [tuple(e) for e in events])


# What the fuzzer found, pinned: (provider format, event index, path in its payload, value).
STREAM_REGRESSIONS = [
    # A lone surrogate (an emoji's pair split across deltas) broke every client encoder's UTF-8.
    ("anthropic", 9, ("delta", "text"), "\ud83d"),
    ("anthropic", 6, ("delta", "signature"), "\ud83d"),
    ("openai", 4, ("choices", 0, "delta", "content"), "\ude00"),
    ("openai", 7, ("choices", 0, "delta", "tool_calls", 0, "function", "arguments"), "\ude00"),
    ("gemini", 0, ("candidates", 0, "content", "parts", 0, "text"), "\udc80"),
    ("responses", 12, ("delta",), "\udc80"),
    ("responses", 4, ("delta",), "\udc80"),
    ("kiro", 1, ("content",), "\udc80"),
    ("kiro", 0, ("text",), "\udc80"),
    ("gemini", 0, (), {"error": {"code": 500, "message": "\udc80"}}),  # the whole event replaced
    ("gemini", 0, ("responseId",), "\udc80"),  # hashed into the ids of calls sent without one
    ("gemini", 5, ("candidates", 0, "content", "parts", 0, "functionCall", "name"), "\udc80"),

    # A Responses event whose type is a list.
    ("responses", 2, ("type",), ["response.output_item.added"]),
    # Gemini parts that are not a list; a thoughtSignature that is not a string.
    ("gemini", 1, ("candidates", 0, "content", "parts"), 10**30),
    ("gemini", 2, ("candidates", 0, "content", "parts", 0, "thoughtSignature"), ["sig"]),
    # A finishReason that is not a string (looked up in a set of reasons).
    ("gemini", 5, ("candidates", 0, "finishReason"), {"text": "STOP"}),
    # Tool arguments nested past the parser's limit (parsed whole by the Gemini encoder and the folding).
    ("anthropic", 14, ("delta", "partial_json"), "[" * 100_000),
    ("openai", 7, ("choices", 0, "delta", "tool_calls", 0, "function", "arguments"), "[" * 100_000),
    ("responses", 18, ("delta",), "[" * 100_000),
    ("kiro", 3, ("input",), "[" * 100_000),
]


@pytest.mark.parametrize(("src", "index", "path", "value"), STREAM_REGRESSIONS, ids=lambda v: repr(v)[:30])
@pytest.mark.parametrize("dst", CLIENT_FORMATS)
def test_found_by_fuzzing_streams(src: str, index: int, path: tuple, value: Any, dst: str) -> None:
    translate_all(src, dst, [stream_with(src, index, path, value)])


@pytest.mark.parametrize("src", PROVIDER_FORMATS)
@pytest.mark.parametrize("dst", CLIENT_FORMATS)
def test_event_nested_past_the_parser_is_skipped(src: str, dst: str) -> None:
    deep = b"[" * 100_000
    raw = eventstream.event("assistantResponseEvent", deep) if src == "kiro" else b"data: " + deep + b"\n\n"
    translate_all(src, dst, [raw + encode_stream(src, VALID_STREAMS[src])])


@pytest.mark.parametrize("dst", CLIENT_FORMATS)
@pytest.mark.parametrize("candidate", [{"content": {"parts": 7}}, {"finishReason": ["SAFETY"]}])
def test_gemini_answer_with_wrong_types(dst: str, candidate: dict) -> None:
    # The stream decoder's bugs in the non-stream decoder too (same code, found beside it).
    translate_response("gemini", dst, {"candidates": [candidate]}, "client-model")


@pytest.mark.parametrize("src", PROVIDER_FORMATS)
@FUZZ
@given(data=st.data())
def test_valid_stream_split_anywhere(src: str, data: st.DataObject) -> None:
    dst = data.draw(st.sampled_from(CLIENT_FORMATS), label="client")
    translate_all(src, dst, split(data, encode_stream(src, VALID_STREAMS[src])))


@pytest.mark.parametrize("src", PROVIDER_FORMATS)
@FUZZ
@given(data=st.data())
def test_mutated_stream_never_raises(src: str, data: st.DataObject) -> None:
    dst = data.draw(st.sampled_from(CLIENT_FORMATS), label="client")
    events = mutate_json(data, [list(e) for e in VALID_STREAMS[src]], max_steps=6)
    events = [e for e in events if isinstance(e, list) and len(e) == 2] if isinstance(events, list) else []
    # Names must stay framable (one line of UTF-8); what they say is up to the fuzzer.
    events = [(name if isinstance(name, str) and name.isprintable() and name.isascii() and len(name) < 256 else None,
               payload) for name, payload in events]
    raw = encode_stream(src, events)
    if data.draw(st.booleans(), label="damage bytes"):
        raw = mutate_bytes(data, raw)
    translate_all(src, dst, split(data, raw))


@pytest.mark.parametrize("src", PROVIDER_FORMATS)
@FUZZ
@given(data=st.data())
def test_random_stream_never_raises(src: str, data: st.DataObject) -> None:
    dst = data.draw(st.sampled_from(CLIENT_FORMATS), label="client")
    events = data.draw(
        st.lists(st.tuples(st.sampled_from(EVENT_NAMES) | st.none(), JUNK | st.just("[DONE]")), max_size=8),
        label="events",
    )
    raw = encode_stream(src, events)
    if data.draw(st.booleans(), label="raw bytes"):
        raw = data.draw(st.binary(max_size=200), label="bytes")
    translate_all(src, dst, split(data, raw))
