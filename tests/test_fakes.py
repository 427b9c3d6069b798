"""Self-test of tests/fakes/upstreams.py: wire framing, SDK compatibility, failures."""

from __future__ import annotations

import json
import socket
import time

import anthropic
import httpx
import openai
import pydantic
import pytest
from google import genai
from openai.types.responses import ResponseStreamEvent

from tests.fakes import DEFAULT_REPLY, FakeUpstream, api_key_check, split_reply
from tests.fakes.upstreams import TOOL_CALL_TOKENS, closed_port

ANTHROPIC_BODY = {
    "model": "claude-test",
    "max_tokens": 64,
    "system": [{"type": "text", "text": "be brief"}],
    "messages": [
        {"role": "user", "content": "say hello to me"},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        {"role": "user", "content": [{"type": "text", "text": "now please"}]},
    ],
}
ANTHROPIC_PROMPT_WORDS = 2 + 4 + 1 + 2

OPENAI_BODY = {
    "model": "gpt-test",
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "say hello"}]},
    ],
}
OPENAI_PROMPT_WORDS = 4

GEMINI_BODY = {
    "systemInstruction": {"parts": [{"text": "be brief"}]},
    "contents": [{"role": "user", "parts": [{"text": "say hello to me"}]}],
}
GEMINI_PROMPT_WORDS = 6

REPLY_WORDS = len(DEFAULT_REPLY.split())


@pytest.fixture
def fake():
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def client(fake):
    with httpx.Client(base_url=fake.url, timeout=10) as c:
        yield c


def post_raw(client: httpx.Client, path: str, body: dict) -> httpx.Response:
    """POST and keep the undecoded body bytes plus response headers."""
    with client.stream("POST", path, json=body) as resp:
        resp.raw_body = b"".join(resp.iter_raw())
    return resp


def split_frames(raw: bytes, separator: bytes) -> list[bytes]:
    assert raw.endswith(separator), raw[-40:]
    return raw[: -len(separator)].split(separator)


def anthropic_events(raw: bytes) -> list[tuple[str, dict]]:
    assert b"\r" not in raw
    events = []
    for frame in split_frames(raw, b"\n\n"):
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        events.append((event_line[7:].decode(), json.loads(data_line[6:])))
    return events


def data_frames(raw: bytes, separator: bytes) -> list[bytes]:
    frames = split_frames(raw, separator)
    assert all(f.startswith(b"data: ") and b"\n" not in f for f in frames), frames
    return [f[6:] for f in frames]


# ---------------------------------------------------------------------------
# Anthropic


def test_anthropic_message(fake, client):
    resp = client.post("/v1/messages", json=ANTHROPIC_BODY)
    assert resp.status_code == 200
    assert resp.headers["request-id"].startswith("req_")
    body = resp.json()
    assert body["id"].startswith("msg_")
    assert body | {"id": None} == {
        "id": None,
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [{"type": "text", "text": DEFAULT_REPLY}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": ANTHROPIC_PROMPT_WORDS,
            "output_tokens": REPLY_WORDS,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def test_anthropic_stream_event_sequence(fake, client):
    resp = post_raw(client, "/v1/messages", ANTHROPIC_BODY | {"stream": True})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.headers["transfer-encoding"] == "chunked"
    assert resp.headers["request-id"].startswith("req_")
    events = anthropic_events(resp.raw_body)
    pieces = split_reply(DEFAULT_REPLY)
    assert len(pieces) > 1
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        *["content_block_delta"] * len(pieces),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert (
        start["content"] == [] and start["stop_reason"] is None and start["model"] == "claude-test"
    )
    assert start["usage"]["input_tokens"] == ANTHROPIC_PROMPT_WORDS
    assert events[2][1]["content_block"] == {"type": "text", "text": ""}
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    assert "".join(d["text"] for d in deltas) == DEFAULT_REPLY
    message_delta = events[-2][1]
    assert message_delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert message_delta["usage"] == {"output_tokens": REPLY_WORDS}


def test_anthropic_count_tokens(client):
    body = {k: v for k, v in ANTHROPIC_BODY.items() if k != "max_tokens"}
    resp = client.post("/v1/messages/count_tokens", json=body)
    assert resp.json() == {"input_tokens": ANTHROPIC_PROMPT_WORDS}


# ---------------------------------------------------------------------------
# OpenAI


def test_openai_completion(client):
    body = client.post("/v1/chat/completions", json=OPENAI_BODY).json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion" and body["model"] == "gpt-test"
    assert isinstance(body["created"], int)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": DEFAULT_REPLY},
            "finish_reason": "stop",
        }
    ]
    assert body["usage"]["prompt_tokens"] == OPENAI_PROMPT_WORDS
    assert body["usage"]["completion_tokens"] == REPLY_WORDS
    assert body["usage"]["total_tokens"] == OPENAI_PROMPT_WORDS + REPLY_WORDS
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


def openai_stream(client, body) -> list[dict]:
    resp = post_raw(client, "/v1/chat/completions", body | {"stream": True})
    assert resp.headers["content-type"] == "text/event-stream"
    assert b"\r" not in resp.raw_body
    frames = data_frames(resp.raw_body, b"\n\n")
    assert frames[-1] == b"[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-test" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    return chunks


def check_content_chunks(chunks: list[dict]) -> None:
    choices = [c["choices"][0] for c in chunks]
    assert choices[0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["finish_reason"] for c in choices] == [None] * (len(choices) - 1) + ["stop"]
    assert choices[-1]["delta"] == {}
    assert "".join(c["delta"].get("content", "") for c in choices) == DEFAULT_REPLY
    assert len(choices) == 2 + len(split_reply(DEFAULT_REPLY))


def test_openai_stream_without_usage(client):
    chunks = openai_stream(client, OPENAI_BODY)
    assert all("usage" not in c for c in chunks)
    check_content_chunks(chunks)


def test_openai_stream_with_usage(client):
    chunks = openai_stream(client, OPENAI_BODY | {"stream_options": {"include_usage": True}})
    *content, usage_chunk = chunks
    assert all("usage" in c and c["usage"] is None for c in content)
    check_content_chunks(content)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == OPENAI_PROMPT_WORDS
    assert usage_chunk["usage"]["completion_tokens"] == REPLY_WORDS


def test_openai_models(fake, client):
    fake.models = ["a", "b"]
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["a", "b"]
    assert all(m["object"] == "model" for m in body["data"])


# ---------------------------------------------------------------------------
# Gemini


def test_gemini_generate(client):
    resp = client.post("/v1beta/models/gemini-test:generateContent", json=GEMINI_BODY)
    body = resp.json()
    assert body["candidates"] == [
        {
            "content": {"role": "model", "parts": [{"text": DEFAULT_REPLY}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ]
    assert body["modelVersion"] == "gemini-test"
    assert body["usageMetadata"] == {
        "promptTokenCount": GEMINI_PROMPT_WORDS,
        "candidatesTokenCount": REPLY_WORDS,
        "totalTokenCount": GEMINI_PROMPT_WORDS + REPLY_WORDS,
        "cachedContentTokenCount": 0,
    }


def check_gemini_chunks(chunks: list[dict]) -> None:
    texts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks]
    assert texts == split_reply(DEFAULT_REPLY)
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == REPLY_WORDS
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] == GEMINI_PROMPT_WORDS + REPLY_WORDS
    assert chunks[-1]["usageMetadata"]["cachedContentTokenCount"] == 0
    assert all(c["modelVersion"] == "gemini-test" for c in chunks)


def test_gemini_stream_sse_uses_crlf(fake, client):
    resp = post_raw(client, "/v1beta/models/gemini-test:streamGenerateContent?alt=sse", GEMINI_BODY)
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.headers["transfer-encoding"] == "chunked"
    frames = data_frames(resp.raw_body, b"\r\n\r\n")
    check_gemini_chunks([json.loads(f) for f in frames])
    assert fake.last.query == {"alt": "sse"}


def test_gemini_stream_without_sse_is_json_array(client):
    resp = post_raw(client, "/v1beta/models/gemini-test:streamGenerateContent", GEMINI_BODY)
    assert resp.headers["content-type"] == "application/json"
    check_gemini_chunks(json.loads(resp.raw_body))


@pytest.mark.parametrize(
    "body",
    [GEMINI_BODY, {"generateContentRequest": {"model": "models/gemini-test", **GEMINI_BODY}}],
)
def test_gemini_count_tokens(client, body):
    resp = client.post("/v1beta/models/gemini-test:countTokens", json=body)
    assert resp.json()["totalTokens"] == GEMINI_PROMPT_WORDS


# ---------------------------------------------------------------------------
# token accounting, capture, routing


def test_cached_tokens_keep_total_prompt_equal_across_providers(fake, client):
    fake.cached_tokens = 3
    fake.reply_text = "one two"
    anth = client.post("/v1/messages", json=ANTHROPIC_BODY).json()["usage"]
    assert anth == {
        "input_tokens": ANTHROPIC_PROMPT_WORDS - 3,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 3,
    }
    oai = client.post("/v1/chat/completions", json=OPENAI_BODY).json()["usage"]
    assert oai["prompt_tokens"] == OPENAI_PROMPT_WORDS
    assert oai["prompt_tokens_details"]["cached_tokens"] == 3
    gem = client.post("/v1beta/models/g:generateContent", json=GEMINI_BODY).json()["usageMetadata"]
    assert (gem["promptTokenCount"], gem["cachedContentTokenCount"]) == (GEMINI_PROMPT_WORDS, 3)


def test_capture_records_requests(fake, client):
    client.post("/v1/messages?beta=true", json=ANTHROPIC_BODY, headers={"X-Api-Key": "sk-1"})
    client.get("/v1/models")
    first, second = fake.requests
    assert (first.method, first.path, first.query) == ("POST", "/v1/messages", {"beta": "true"})
    assert first.headers["x-api-key"] == "sk-1"
    assert first.json == ANTHROPIC_BODY and json.loads(first.body) == ANTHROPIC_BODY
    assert (second.method, second.body, second.json) == ("GET", b"", None)
    assert fake.last == second
    fake.clear()
    assert fake.requests == [] and fake.last is None


def test_unknown_path_is_openai_404(fake, client):
    resp = client.post("/v2/whatever", json={})
    assert resp.status_code == 404
    assert resp.json() == {
        "error": {
            "message": "Invalid URL (POST /v2/whatever)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert fake.last.path == "/v2/whatever"


def test_require_auth(fake, client):
    fake.require_auth = api_key_check("secret")
    denied = client.post("/v1/messages", json=ANTHROPIC_BODY)
    assert denied.status_code == 401
    assert denied.json()["error"]["type"] == "authentication_error"
    key = {"x-api-key": "secret"}
    assert client.post("/v1/messages", json=ANTHROPIC_BODY, headers=key).status_code == 200
    bearer = {"authorization": "Bearer secret"}
    assert client.post("/v1/chat/completions", json=OPENAI_BODY, headers=bearer).status_code == 200
    goog = client.post("/v1beta/models/g:generateContent?key=secret", json=GEMINI_BODY)
    assert goog.status_code == 200


# ---------------------------------------------------------------------------
# failure injection


ROUTES = {
    "anthropic": ("/v1/messages", ANTHROPIC_BODY),
    "openai": ("/v1/chat/completions", OPENAI_BODY),
    "gemini": ("/v1beta/models/g:generateContent", GEMINI_BODY),
}


def error_kind(dialect: str, body: dict) -> str:
    if dialect == "anthropic":
        assert body["type"] == "error" and body["request_id"].startswith("req_")
        assert set(body["error"]) == {"type", "message"}
        return body["error"]["type"]
    if dialect == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}
        return body["error"]["type"]
    assert body["error"]["message"]
    return body["error"]["status"]


@pytest.mark.parametrize(
    "dialect, status, kind",
    [
        ("anthropic", 400, "invalid_request_error"),
        ("anthropic", 401, "authentication_error"),
        ("anthropic", 403, "permission_error"),
        ("anthropic", 404, "not_found_error"),
        ("anthropic", 413, "request_too_large"),
        ("anthropic", 429, "rate_limit_error"),
        ("anthropic", 500, "api_error"),
        ("anthropic", 529, "overloaded_error"),
        ("openai", 400, "invalid_request_error"),
        ("openai", 401, "invalid_request_error"),
        ("openai", 500, "server_error"),
        ("gemini", 400, "INVALID_ARGUMENT"),
        ("gemini", 403, "PERMISSION_DENIED"),
        ("gemini", 404, "NOT_FOUND"),
        ("gemini", 429, "RESOURCE_EXHAUSTED"),
        ("gemini", 500, "INTERNAL"),
        ("gemini", 503, "UNAVAILABLE"),
    ],
)
def test_failure_uses_provider_error_shape(fake, client, dialect, status, kind):
    path, body = ROUTES[dialect]
    fake.fail_next(status)
    resp = client.post(path, json=body)
    assert resp.status_code == status
    assert error_kind(dialect, resp.json()) == kind
    if dialect == "anthropic":
        assert resp.headers["request-id"] == resp.json()["request_id"]
    if dialect == "gemini":
        assert resp.json()["error"]["code"] == status


@pytest.mark.parametrize("dialect", ROUTES)
def test_429_carries_retry_after(fake, client, dialect):
    path, body = ROUTES[dialect]
    fake.fail_next(429)
    resp = client.post(path, json=body)
    assert resp.headers["retry-after"] == "1"
    if dialect == "openai":
        assert resp.json()["error"]["code"] == "rate_limit_exceeded"
    if dialect == "gemini":
        assert resp.json()["error"]["details"][0]["retryDelay"] == "1s"


def test_failure_times_then_recovers(fake, client):
    fake.fail_next(503, times=2)
    statuses = [client.post("/v1/chat/completions", json=OPENAI_BODY).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert len(fake.requests) == 3


def test_failure_applies_to_streams_and_queues_fifo(fake, client):
    fake.fail_next(429)
    fake.fail_next(529)
    stream_body = ANTHROPIC_BODY | {"stream": True}
    first = client.post("/v1/messages", json=stream_body)
    second = client.post("/v1/messages", json=stream_body)
    assert (first.status_code, second.status_code) == (429, 529)
    assert first.headers["content-type"] == "application/json"
    assert client.post("/v1/messages", json=stream_body).status_code == 200


def test_failure_with_custom_body_and_headers(fake, client):
    fake.fail_next(429, body={"custom": True}, headers={"Retry-After": "7", "x-extra": "1"})
    resp = client.get("/v1/models")
    assert resp.json() == {"custom": True}
    assert (resp.headers["retry-after"], resp.headers["x-extra"]) == ("7", "1")
    fake.fail_next(502, body="bad gateway")
    assert client.get("/v1/models").content == b"bad gateway"


# ---------------------------------------------------------------------------
# transport: chunked framing, keep-alive, incremental delivery, shutdown


def read_response(stream) -> tuple[int, dict[str, str], list[bytes]]:
    """Read one HTTP/1.1 response from a socket file; body as its list of chunks."""
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline()) != b"\r\n":
        key, _, value = line.decode().partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") != "chunked":
        return status, headers, [stream.read(int(headers["content-length"]))]
    chunks = []
    while True:
        size_line = stream.readline()
        assert size_line.endswith(b"\r\n")
        size = int(size_line, 16)
        data = stream.read(size)
        assert stream.read(2) == b"\r\n"
        if size == 0:
            return status, headers, chunks
        chunks.append(data)


def raw_request(path: str, body: dict, port: int) -> bytes:
    payload = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
    return head.encode() + f"content-length: {len(payload)}\r\n\r\n".encode() + payload


def test_chunked_framing_one_event_per_chunk_and_keep_alive(fake):
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        stream = sock.makefile("rb")
        sock.sendall(raw_request("/v1/messages", ANTHROPIC_BODY | {"stream": True}, fake.port))
        status, headers, chunks = read_response(stream)
        assert (status, headers["transfer-encoding"]) == (200, "chunked")
        # Each HTTP chunk holds exactly one whole SSE event.
        assert all(c.startswith(b"event: ") and c.count(b"\n\n") == 1 for c in chunks)
        assert all(c.endswith(b"\n\n") for c in chunks)
        assert len(chunks) == len(anthropic_events(b"".join(chunks)))

        # The same connection serves the next request.
        sock.sendall(raw_request("/v1/chat/completions", OPENAI_BODY, fake.port))
        status, headers, [body] = read_response(stream)
        assert status == 200 and json.loads(body)["object"] == "chat.completion"


def test_stream_delay_delivers_events_incrementally(fake, client):
    fake.stream_delay = 0.1
    body = OPENAI_BODY | {"stream": True}
    started = time.monotonic()
    arrivals = []
    with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        for line in resp.iter_lines():
            if line:
                arrivals.append(time.monotonic() - started)
    frames = 2 + len(split_reply(DEFAULT_REPLY)) + 1  # role, pieces, finish, [DONE]
    assert len(arrivals) == frames
    assert arrivals[-1] >= 0.1 * (frames - 1) * 0.9
    assert arrivals[0] < arrivals[-1] - 0.2


def test_stop_closes_idle_keep_alive_connections():
    fake = FakeUpstream().start()
    with httpx.Client(base_url=fake.url) as c:
        assert c.get("/v1/models").status_code == 200
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(httpx.TransportError):
            c.get("/v1/models")


# ---------------------------------------------------------------------------
# official SDKs as clients


def test_anthropic_sdk(fake):
    sdk = anthropic.Anthropic(base_url=fake.url, api_key="x", max_retries=0)
    params = {"model": "claude-test", "max_tokens": 64, "messages": ANTHROPIC_BODY["messages"]}
    message = sdk.messages.create(**params)
    assert message.content[0].text == DEFAULT_REPLY
    assert message.usage.output_tokens == REPLY_WORDS
    sent = fake.last.headers
    assert "anthropic-version" in sent
    assert sent.get("x-api-key") == "x" or sent.get("authorization") == "Bearer x"

    with sdk.messages.stream(**params) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == DEFAULT_REPLY
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == REPLY_WORDS

    count = sdk.messages.count_tokens(model="claude-test", messages=ANTHROPIC_BODY["messages"])
    assert count.input_tokens == ANTHROPIC_PROMPT_WORDS - 2  # no system prompt here

    fake.fail_next(529)
    with pytest.raises(anthropic.InternalServerError) as err:
        sdk.messages.create(**params)
    assert err.value.status_code == 529 and err.value.body["error"]["type"] == "overloaded_error"


def test_openai_sdk(fake):
    sdk = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
    completion = sdk.chat.completions.create(model="gpt-test", messages=OPENAI_BODY["messages"])
    assert completion.choices[0].message.content == DEFAULT_REPLY
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert fake.last.headers["authorization"] == "Bearer x"

    stream = sdk.chat.completions.create(
        model="gpt-test",
        messages=OPENAI_BODY["messages"],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert chunks[-1].usage.completion_tokens == REPLY_WORDS

    assert [m.id for m in sdk.models.list()] == list(fake.models)

    fake.fail_next(429)
    with pytest.raises(openai.RateLimitError) as err:
        sdk.chat.completions.create(model="gpt-test", messages=OPENAI_BODY["messages"])
    assert err.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize("api_version", [None, "v1beta"])
def test_genai_sdk(fake, api_version):
    options = genai.types.HttpOptions(base_url=fake.url, api_version=api_version)
    sdk = genai.Client(api_key="x", http_options=options)
    prefix = f"/{api_version or 'v1'}/models/gemini-test"  # the SDK's default is v1
    config = genai.types.GenerateContentConfig(system_instruction="be brief")
    prompt = "say hello to me"
    response = sdk.models.generate_content(model="gemini-test", contents=prompt, config=config)
    assert response.text == DEFAULT_REPLY
    assert response.usage_metadata.prompt_token_count == GEMINI_PROMPT_WORDS
    assert fake.last.path == prefix + ":generateContent"
    assert fake.last.headers["x-goog-api-key"] == "x"

    chunks = list(sdk.models.generate_content_stream(model="gemini-test", contents=prompt))
    assert "".join(c.text for c in chunks) == DEFAULT_REPLY
    assert chunks[-1].candidates[0].finish_reason == genai.types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == GEMINI_PROMPT_WORDS - 2 + REPLY_WORDS
    assert (fake.last.path, fake.last.query) == (prefix + ":streamGenerateContent", {"alt": "sse"})

    assert sdk.models.count_tokens(model="gemini-test", contents="say hello").total_tokens == 2

    fake.fail_next(429)
    with pytest.raises(genai.errors.ClientError) as err:
        sdk.models.generate_content(model="gemini-test", contents="hi")
    assert err.value.code == 429 and err.value.status == "RESOURCE_EXHAUSTED"


# ---------------------------------------------------------------------------
# programmable answers: tool calls and thinking

WEATHER = {"name": "get_weather", "arguments": {"city": "Oslo", "units": ["C", "F"]}}
TIME = {"name": "get_time", "arguments": {"tz": "Europe/Oslo"}, "id": "call_given"}
THINKING = "let me think about it"
THINKING_WORDS = 5


@pytest.fixture
def tools_fake(fake):
    fake.tool_calls = [WEATHER, TIME]
    fake.thinking = THINKING
    return fake


def expected_output_tokens(
    text: str = DEFAULT_REPLY, thinking: str = THINKING, calls: int = 2
) -> int:
    return len(text.split()) + len(thinking.split()) + TOOL_CALL_TOKENS * calls


def test_anthropic_thinking_and_tool_use(tools_fake, client):
    body = client.post("/v1/messages", json=ANTHROPIC_BODY).json()
    thinking, text, weather, time_call = body["content"]
    assert thinking["type"] == "thinking" and thinking["thinking"] == THINKING
    assert thinking["signature"].startswith("sig-fake-")
    assert text == {"type": "text", "text": DEFAULT_REPLY}
    assert weather["type"] == "tool_use" and weather["id"].startswith("toolu_")
    assert (weather["name"], weather["input"]) == (WEATHER["name"], WEATHER["arguments"])
    assert time_call["id"] == "call_given"  # a programmed id is used as given
    assert body["stop_reason"] == "tool_use"
    assert body["usage"]["output_tokens"] == expected_output_tokens()


def test_anthropic_stream_thinking_and_tool_use(tools_fake, client):
    events = anthropic_events(
        post_raw(client, "/v1/messages", ANTHROPIC_BODY | {"stream": True}).raw_body
    )
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "tool_use", "tool_use"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[2]["input"] == {} and starts[2]["id"].startswith("toolu_")
    deltas = [(d["index"], d["delta"]) for n, d in events if n == "content_block_delta"]
    by_index = {i: [d for j, d in deltas if j == i] for i in range(4)}
    assert "".join(d["thinking"] for d in by_index[0][:-1]) == THINKING
    assert by_index[0][-1]["type"] == "signature_delta"
    assert by_index[0][-1]["signature"].startswith("sig-fake-")
    for index, call in ((2, WEATHER), (3, TIME)):
        pieces = [d["partial_json"] for d in by_index[index]]
        assert all(d["type"] == "input_json_delta" for d in by_index[index])
        assert pieces[0] == "" and len(pieces) >= 3
        assert json.loads("".join(pieces)) == call["arguments"]
    assert [n for n, _ in events].count("content_block_stop") == 4
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "tool_use"
    assert message_delta["usage"]["output_tokens"] == expected_output_tokens()


def test_tool_only_answer_has_no_text_part(fake, client):
    fake.reply_text = ""
    fake.tool_calls = [WEATHER]
    anth = client.post("/v1/messages", json=ANTHROPIC_BODY).json()
    assert [b["type"] for b in anth["content"]] == ["tool_use"]
    assert anth["usage"]["output_tokens"] == TOOL_CALL_TOKENS
    message = client.post("/v1/chat/completions", json=OPENAI_BODY).json()["choices"][0]["message"]
    assert message["content"] is None and len(message["tool_calls"]) == 1
    parts = client.post("/v1beta/models/g:generateContent", json=GEMINI_BODY).json()
    assert parts["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": WEATHER["name"], "args": WEATHER["arguments"]}}
    ]
    resp = client.post("/v1/responses", json={"model": "m", "input": "hi"}).json()
    assert [item["type"] for item in resp["output"]] == ["function_call"]


def test_openai_thinking_and_tool_calls(tools_fake, client):
    body = client.post("/v1/chat/completions", json=OPENAI_BODY).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == DEFAULT_REPLY and message["reasoning_content"] == THINKING
    first, second = message["tool_calls"]
    assert first["id"].startswith("call_") and second["id"] == "call_given"
    assert first["type"] == "function" and first["function"]["name"] == WEATHER["name"]
    assert json.loads(first["function"]["arguments"]) == WEATHER["arguments"]
    usage = body["usage"]
    assert usage["completion_tokens"] == expected_output_tokens()
    assert usage["completion_tokens_details"] == {"reasoning_tokens": THINKING_WORDS}
    assert usage["total_tokens"] == OPENAI_PROMPT_WORDS + expected_output_tokens()


def test_openai_stream_thinking_and_parallel_tool_calls(tools_fake, client):
    chunks = openai_stream(client, OPENAI_BODY | {"stream_options": {"include_usage": True}})
    *content, usage_chunk = chunks
    choices = [c["choices"][0] for c in content]
    deltas = [c["delta"] for c in choices]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("reasoning_content", "") for d in deltas) == THINKING
    assert "".join(d.get("content", "") for d in deltas) == DEFAULT_REPLY
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    for index, spec in enumerate((WEATHER, TIME)):
        mine = [c for c in calls if c["index"] == index]
        head, *rest = mine
        assert head["type"] == "function" and head["function"] == {
            "name": spec["name"],
            "arguments": "",
        }
        assert head["id"].startswith("call_") and all("id" not in c for c in rest)
        assert len(rest) >= 2
        assert json.loads("".join(c["function"]["arguments"] for c in rest)) == spec["arguments"]
    assert [c["finish_reason"] for c in choices] == [None] * (len(choices) - 1) + ["tool_calls"]
    assert usage_chunk["usage"]["completion_tokens_details"]["reasoning_tokens"] == THINKING_WORDS


def test_gemini_thinking_and_function_calls(tools_fake, client):
    body = client.post("/v1beta/models/g:generateContent", json=GEMINI_BODY).json()
    candidate = body["candidates"][0]
    thought, text, *calls = candidate["content"]["parts"]
    assert thought["text"] == THINKING and thought["thought"] is True
    assert thought["thoughtSignature"]
    assert text == {"text": DEFAULT_REPLY}
    assert calls == [
        {"functionCall": {"name": WEATHER["name"], "args": WEATHER["arguments"]}},
        {"functionCall": {"name": TIME["name"], "args": TIME["arguments"]}},
    ]
    assert candidate["finishReason"] == "STOP"
    usage = body["usageMetadata"]
    assert usage["thoughtsTokenCount"] == THINKING_WORDS
    assert usage["candidatesTokenCount"] == expected_output_tokens() - THINKING_WORDS
    assert usage["totalTokenCount"] == GEMINI_PROMPT_WORDS + expected_output_tokens()


def test_gemini_stream_thinking_and_function_calls(tools_fake, client):
    resp = post_raw(client, "/v1beta/models/g:streamGenerateContent?alt=sse", GEMINI_BODY)
    chunks = [json.loads(f) for f in data_frames(resp.raw_body, b"\r\n\r\n")]
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    thoughts = [p for p in parts if p.get("thought")]
    assert "".join(p["text"] for p in thoughts) == THINKING
    assert "thoughtSignature" in thoughts[-1]
    assert (
        "".join(p["text"] for p in parts if "text" in p and not p.get("thought")) == DEFAULT_REPLY
    )
    last_parts = chunks[-1]["candidates"][0]["content"]["parts"]
    assert [p["functionCall"]["name"] for p in last_parts] == ["get_weather", "get_time"]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["thoughtsTokenCount"] == THINKING_WORDS


def test_tool_calls_and_thinking_default_off(fake, client):
    # The defaults leave answers as they always were (no new keys).
    message = client.post("/v1/chat/completions", json=OPENAI_BODY).json()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": DEFAULT_REPLY}
    gem = client.post("/v1beta/models/g:generateContent", json=GEMINI_BODY).json()["usageMetadata"]
    assert "thoughtsTokenCount" not in gem


def test_anthropic_sdk_tool_use(tools_fake):
    sdk = anthropic.Anthropic(base_url=tools_fake.url, api_key="x", max_retries=0)
    params = {"model": "claude-test", "max_tokens": 64, "messages": ANTHROPIC_BODY["messages"]}
    message = sdk.messages.create(**params)
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert (
        message.content[2].input == WEATHER["arguments"]
        and message.content[2].name == "get_weather"
    )
    assert message.stop_reason == "tool_use"
    with sdk.messages.stream(**params) as stream:
        final = stream.get_final_message()
    assert final.content[0].thinking == THINKING and final.content[0].signature.startswith(
        "sig-fake-"
    )
    assert [b.input for b in final.content[2:]] == [WEATHER["arguments"], TIME["arguments"]]


def test_openai_sdk_tool_call_stream(tools_fake):
    sdk = openai.OpenAI(base_url=tools_fake.url + "/v1", api_key="x", max_retries=0)
    completion = sdk.chat.completions.create(model="gpt-test", messages=OPENAI_BODY["messages"])
    calls = completion.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [
        WEATHER["arguments"],
        TIME["arguments"],
    ]
    stream = sdk.chat.completions.create(
        model="gpt-test", messages=OPENAI_BODY["messages"], stream=True
    )
    arguments: dict[int, str] = {}
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
    assert {i: json.loads(a) for i, a in arguments.items()} == {
        0: WEATHER["arguments"],
        1: TIME["arguments"],
    }


def test_genai_sdk_function_calls(tools_fake):
    options = genai.types.HttpOptions(base_url=tools_fake.url, api_version="v1beta")
    sdk = genai.Client(api_key="x", http_options=options)
    response = sdk.models.generate_content(model="gemini-test", contents="say hello to me")
    assert [(c.name, c.args) for c in response.function_calls] == [
        (WEATHER["name"], WEATHER["arguments"]),
        (TIME["name"], TIME["arguments"]),
    ]
    thought = response.candidates[0].content.parts[0]
    assert thought.thought and thought.text == THINKING and thought.thought_signature
    assert response.usage_metadata.thoughts_token_count == THINKING_WORDS
    chunks = list(sdk.models.generate_content_stream(model="gemini-test", contents="hi"))
    assert [c.name for c in chunks[-1].function_calls] == ["get_weather", "get_time"]


# ---------------------------------------------------------------------------
# Responses API: /v1/responses and the Codex backend

CODEX_PATH = "/backend-api/codex/responses"
RESPONSES_BODY = {
    "model": "gpt-5-codex",
    "instructions": "you are codex",
    "input": [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "fix the bug"}],
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "shell",
            "arguments": '{"cmd":"ls"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "a.py b.py"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "description": "run",
            "parameters": {},
            "strict": False,
        }
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "stream": True,
}
RESPONSES_PROMPT_WORDS = 3 + 3  # instructions + input text (arguments/outputs ignored)
STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


def responses_stream(client, path: str, body: dict) -> list[dict]:
    resp = post_raw(client, path, body)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/event-stream"
    events = anthropic_events(resp.raw_body)  # same `event:` + `data:` framing
    assert all(name == data["type"] for name, data in events)
    datas = [data for _, data in events]
    assert [d["sequence_number"] for d in datas] == list(range(len(datas)))
    for data in datas:
        STREAM_EVENT.validate_python(data)  # every event parses as the SDK's model
    return datas


MESSAGE_EVENTS = [
    "response.output_item.added",
    "response.content_part.added",
    *["response.output_text.delta"] * len(split_reply(DEFAULT_REPLY)),
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


@pytest.mark.parametrize("path", [CODEX_PATH, "/v1/responses"])
def test_responses_text_stream(fake, client, path):
    fake.cached_tokens = 2
    events = responses_stream(client, path, RESPONSES_BODY)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        *MESSAGE_EVENTS,
        "response.completed",
    ]
    created = events[0]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert created["id"].startswith("resp_") and created["model"] == "gpt-5-codex"
    added = events[2]["item"]
    assert (
        added["type"] == "message" and added["status"] == "in_progress" and added["content"] == []
    )
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert "".join(e["delta"] for e in deltas) == DEFAULT_REPLY
    assert all(e["item_id"] == added["id"] and e["output_index"] == 0 for e in deltas)
    completed = events[-1]["response"]
    assert completed["status"] == "completed" and completed["id"] == created["id"]
    [message] = completed["output"]
    assert message["content"][0]["text"] == DEFAULT_REPLY and message["status"] == "completed"
    assert completed["usage"] == {
        "input_tokens": RESPONSES_PROMPT_WORDS,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": REPLY_WORDS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": RESPONSES_PROMPT_WORDS + REPLY_WORDS,
    }
    assert fake.last.path == path and fake.last.json == RESPONSES_BODY


def test_responses_stream_reasoning_and_function_calls(tools_fake, client):
    events = responses_stream(client, CODEX_PATH, RESPONSES_BODY)
    reasoning_events = [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * THINKING_WORDS,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    call_events = [
        "response.output_item.added",
        *["response.function_call_arguments.delta"] * 3,
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        *reasoning_events,
        *MESSAGE_EVENTS,
        *call_events,
        *call_events,
        "response.completed",
    ]
    summary = [e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta"]
    assert "".join(summary) == THINKING
    output = events[-1]["response"]["output"]
    assert [item["type"] for item in output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert output[0]["encrypted_content"] and output[0]["summary"][0]["text"] == THINKING
    weather, time_call = output[2:]
    assert weather["id"].startswith("fc_") and weather["call_id"].startswith("call_")
    assert time_call["call_id"] == "call_given"
    for index, item, spec in ((2, weather, WEATHER), (3, time_call, TIME)):
        pieces = [
            e["delta"]
            for e in events
            if e["type"] == "response.function_call_arguments.delta" and e["output_index"] == index
        ]
        assert all(
            e["item_id"] == item["id"]
            for e in events
            if e.get("output_index") == index and "item_id" in e
        )
        assert json.loads("".join(pieces)) == spec["arguments"] == json.loads(item["arguments"])
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert added[2] | {"arguments": None, "status": None} == weather | {
        "arguments": None,
        "status": None,
    }
    assert (added[2]["arguments"], added[2]["status"]) == ("", "in_progress")
    usage = events[-1]["response"]["usage"]
    assert usage["output_tokens"] == expected_output_tokens()
    assert usage["output_tokens_details"] == {"reasoning_tokens": THINKING_WORDS}


@pytest.mark.parametrize(
    "change, detail",
    [
        ({"stream": False}, "Stream must be set to true"),
        ({"stream": None}, "Stream must be set to true"),
        ({"store": True}, "Store must be set to false"),
        ({"store": None}, "Store must be set to false"),
        ({"instructions": None}, "Instructions are required"),
    ],
)
def test_codex_rejects_like_the_backend(fake, client, change, detail):
    body = {k: v for k, v in (RESPONSES_BODY | change).items() if v is not None}
    resp = client.post(CODEX_PATH, json=body)
    assert (resp.status_code, resp.json()) == (400, {"detail": detail})
    assert fake.last.path == CODEX_PATH  # refused requests are recorded too


def test_codex_accepts_empty_instructions(client):
    assert post_raw(client, CODEX_PATH, RESPONSES_BODY | {"instructions": ""}).status_code == 200


def test_public_responses_non_stream(fake, client):
    body = RESPONSES_BODY | {"stream": False, "store": True}
    resp = client.post("/v1/responses", json=body)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    response = openai.types.responses.Response.model_validate(resp.json())
    assert response.status == "completed" and response.output_text == DEFAULT_REPLY
    assert response.usage.input_tokens == RESPONSES_PROMPT_WORDS
    assert response.instructions == "you are codex" and response.store is True


def test_openai_sdk_responses(tools_fake):
    sdk = openai.OpenAI(base_url=tools_fake.url + "/v1", api_key="x", max_retries=0)
    params = {"model": "gpt-test", "instructions": "be brief", "input": "say hello"}
    response = sdk.responses.create(**params)
    assert response.output_text == DEFAULT_REPLY
    calls = [item for item in response.output if item.type == "function_call"]
    assert [json.loads(c.arguments) for c in calls] == [WEATHER["arguments"], TIME["arguments"]]
    assert response.usage.output_tokens_details.reasoning_tokens == THINKING_WORDS
    assert tools_fake.last.path == "/v1/responses"

    events = list(sdk.responses.create(**params, stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == DEFAULT_REPLY
    final = events[-1].response
    assert final.usage.input_tokens == 4 and final.output[0].type == "reasoning"


def test_openai_sdk_against_codex_backend(fake):
    sdk = openai.OpenAI(base_url=fake.url + "/backend-api/codex", api_key="x", max_retries=0)
    body = {k: v for k, v in RESPONSES_BODY.items() if k != "stream"}
    with sdk.responses.stream(**body) as stream:
        final = stream.get_final_response()
    assert final.output_text == DEFAULT_REPLY
    assert fake.last.path == CODEX_PATH

    fake.fail_next(429)
    with pytest.raises(openai.RateLimitError) as err:
        sdk.responses.create(**body, stream=True)
    assert err.value.body["type"] == "usage_limit_reached"


def test_codex_failure_shapes(fake, client):
    fake.fail_next(429)
    resp = client.post(CODEX_PATH, json=RESPONSES_BODY)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "1"
    error = resp.json()["error"]
    assert {"type", "code", "message"} <= set(error)
    assert error["type"] == "usage_limit_reached" and error["resets_in_seconds"] == 1
    assert error["resets_at"] >= time.time()

    fake.fail_next(429, headers={"retry-after": "90"})
    assert client.post(CODEX_PATH, json=RESPONSES_BODY).json()["error"]["resets_in_seconds"] == 90

    fake.fail_next(500)
    error = client.post(CODEX_PATH, json=RESPONSES_BODY).json()["error"]
    assert (error["type"], error["code"]) == ("server_error", None)

    fake.require_auth = api_key_check("secret")
    denied = client.post(CODEX_PATH, json=RESPONSES_BODY)
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "token_expired"


def test_public_responses_failure_uses_openai_shape(fake, client):
    fake.fail_next(429)
    resp = client.post("/v1/responses", json=RESPONSES_BODY)
    assert resp.status_code == 429
    assert error_kind("openai", resp.json()) == "requests"


# ---------------------------------------------------------------------------
# Gemini Code Assist (v1internal)

CODE_ASSIST_BODY = {
    "model": "gemini-2.5-pro",
    "project": "proj-123",
    "user_prompt_id": "p1",
    "request": GEMINI_BODY | {"session_id": "s1"},
}


def test_code_assist_generate(fake, client):
    resp = client.post("/v1internal:generateContent", json=CODE_ASSIST_BODY)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"response", "traceId"} and body["traceId"]
    response = body["response"]
    assert response["candidates"][0]["content"]["parts"] == [{"text": DEFAULT_REPLY}]
    assert response["modelVersion"] == "gemini-2.5-pro"
    assert response["usageMetadata"]["promptTokenCount"] == GEMINI_PROMPT_WORDS
    assert (fake.last.path, fake.last.json) == ("/v1internal:generateContent", CODE_ASSIST_BODY)


def test_code_assist_stream(tools_fake, client):
    resp = post_raw(client, "/v1internal:streamGenerateContent?alt=sse", CODE_ASSIST_BODY)
    assert resp.headers["content-type"] == "text/event-stream"
    assert b"\r" not in resp.raw_body
    events = [json.loads(f) for f in data_frames(resp.raw_body, b"\n\n")]
    assert all(set(e) == {"response", "traceId"} for e in events)
    assert len({e["traceId"] for e in events}) == 1
    chunks = [e["response"] for e in events]
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert (
        "".join(p["text"] for p in parts if "text" in p and not p.get("thought")) == DEFAULT_REPLY
    )
    assert [p["functionCall"]["name"] for p in parts if "functionCall" in p] == [
        "get_weather",
        "get_time",
    ]
    final = chunks[-1]
    assert final["candidates"][0]["finishReason"] == "STOP"
    assert final["usageMetadata"]["thoughtsTokenCount"] == THINKING_WORDS
    assert (
        final["usageMetadata"]["totalTokenCount"] == GEMINI_PROMPT_WORDS + expected_output_tokens()
    )
    assert tools_fake.last.query == {"alt": "sse"}


def test_code_assist_count_tokens(client):
    body = {"request": {"model": "models/gemini-2.5-pro", "contents": GEMINI_BODY["contents"]}}
    resp = client.post("/v1internal:countTokens", json=body)
    assert resp.json() == {"totalTokens": GEMINI_PROMPT_WORDS - 2}  # no system instruction


@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent?alt=sse"])
def test_code_assist_requires_project(fake, client, method):
    body = {k: v for k, v in CODE_ASSIST_BODY.items() if k != "project"}
    resp = client.post(f"/v1internal:{method}", json=body)
    assert resp.status_code == 400
    assert error_kind("gemini", resp.json()) == "INVALID_ARGUMENT"
    assert fake.last.json == body


def test_code_assist_failure_uses_google_shape(fake, client):
    fake.fail_next(429)
    resp = client.post("/v1internal:streamGenerateContent?alt=sse", json=CODE_ASSIST_BODY)
    assert resp.status_code == 429
    error = resp.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert error["details"][0]["retryDelay"] == "1s"
    fake.fail_next(503)
    assert (
        error_kind("gemini", client.post("/v1internal:countTokens", json={}).json())
        == "UNAVAILABLE"
    )


# ---------------------------------------------------------------------------
# fault injection: resets, hangs, stalls, cuts, account quota, counters

STREAM_ROUTES = {
    "anthropic": ("/v1/messages", ANTHROPIC_BODY | {"stream": True}),
    "openai": ("/v1/chat/completions", OPENAI_BODY | {"stream": True}),
    "codex": (CODEX_PATH, RESPONSES_BODY),
    "gemini": ("/v1beta/models/g:streamGenerateContent?alt=sse", GEMINI_BODY),
    "code_assist": ("/v1internal:streamGenerateContent?alt=sse", CODE_ASSIST_BODY),
}
# Reads may time out fast; connecting and everything else keeps a safe margin.
SHORT_READ = httpx.Timeout(5, read=0.5)


def eventually(check, timeout: float = 3.0) -> bool:
    """Poll `check` until true: handlers notice a departed client asynchronously."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def read_events(resp: httpx.Response, into: list[str]) -> None:
    """Collect non-empty SSE lines into `into`, so they survive an exception."""
    for line in resp.iter_lines():
        if line.startswith("data: "):
            into.append(line)


def test_closed_port_refuses():
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{closed_port()}/", timeout=2)


def test_fault_next_validates():
    fake = FakeUpstream()
    with pytest.raises(ValueError, match="closed_port"):
        fake.fault_next("refuse")
    with pytest.raises(ValueError, match="unknown fault"):
        fake.fault_next("explode")
    with pytest.raises(TypeError, match="seconds"):
        fake.fault_next("cut", seconds=1)
    with pytest.raises(ValueError, match="times"):
        fake.fault_next("reset", times=0)


def test_reset_sends_nothing(fake, client):
    fake.fault_next("reset")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/v1/chat/completions", json=OPENAI_BODY)
    assert fake.last.json == OPENAI_BODY  # the request was read before the reset
    assert client.post("/v1/chat/completions", json=OPENAI_BODY).status_code == 200


def test_reset_is_a_tcp_rst(fake):
    fake.fault_next("reset")
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(raw_request("/v1/messages", ANTHROPIC_BODY, fake.port))
        with pytest.raises(ConnectionResetError):
            sock.recv(1024)


def test_hang_times_out_and_releases_the_connection(fake):
    fake.fault_next("hang", seconds=2)
    started = time.monotonic()
    with httpx.Client(base_url=fake.url, timeout=SHORT_READ) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/v1/messages", json=ANTHROPIC_BODY)
    # The handler sees the client leave instead of sitting out its 2 seconds.
    assert fake.wait_connections(0, timeout=1)
    assert time.monotonic() - started < 1.5
    assert fake.cancelled == 1  # the hang saw its client leave


def test_hang_then_answers(fake, client):
    fake.fault_next("hang", seconds=0.3)
    started = time.monotonic()
    resp = client.post("/v1/chat/completions", json=OPENAI_BODY)
    assert resp.status_code == 200 and time.monotonic() - started >= 0.3


def test_stop_interrupts_a_hang():
    fake = FakeUpstream().start()
    fake.fault_next("hang", seconds=30)
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(raw_request("/v1/chat/completions", OPENAI_BODY, fake.port))
        assert eventually(lambda: fake.last is not None)
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 1
        assert sock.recv(1024) == b""  # closed without an answer
    assert fake.wait_connections(0, timeout=1)


@pytest.mark.parametrize("route", STREAM_ROUTES)
def test_stall_delivers_first_events_then_times_out(fake, route):
    path, body = STREAM_ROUTES[route]
    fake.fault_next("stall", events=2, seconds=2)
    lines: list[str] = []
    with httpx.Client(base_url=fake.url, timeout=SHORT_READ) as c:
        with c.stream("POST", path, json=body) as resp:
            assert resp.status_code == 200
            with pytest.raises(httpx.ReadTimeout):
                read_events(resp, lines)
    assert len(lines) == 2
    # Leaving mid-stall counts as a cancelled stream and frees the connection.
    assert eventually(lambda: fake.cancelled == 1, timeout=1)
    assert fake.wait_connections(0, timeout=1)


def test_stall_resumes_after_its_pause(fake, client):
    fake.fault_next("stall", events=1, seconds=0.3)
    started = time.monotonic()
    chunks = openai_stream(client, OPENAI_BODY)
    assert time.monotonic() - started >= 0.3
    check_content_chunks(chunks)


def test_stop_interrupts_a_stall():
    fake = FakeUpstream().start()
    fake.fault_next("stall", seconds=30)
    with httpx.Client(base_url=fake.url, timeout=5) as c:
        with c.stream("POST", "/v1/messages", json=ANTHROPIC_BODY | {"stream": True}) as resp:
            lines = resp.iter_lines()
            assert next(lines).startswith("event: message_start")
            started = time.monotonic()
            fake.stop()
            assert time.monotonic() - started < 1
            with pytest.raises(httpx.RemoteProtocolError):
                list(lines)
    assert fake.cancelled == 0  # the server left, not the client


@pytest.mark.parametrize("route", STREAM_ROUTES)
def test_cut_ends_the_body_mid_stream(fake, client, route):
    path, body = STREAM_ROUTES[route]
    fake.fault_next("cut", events=3)
    lines: list[str] = []
    with client.stream("POST", path, json=body) as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            read_events(resp, lines)
    assert len(lines) == 3
    assert fake.cancelled == 0


def test_cut_and_stall_on_non_stream_answers(fake, client):
    fake.fault_next("cut")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/v1/chat/completions", json=OPENAI_BODY)
    fake.fault_next("stall", seconds=2)
    with httpx.Client(base_url=fake.url, timeout=SHORT_READ) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post("/v1/chat/completions", json=OPENAI_BODY)
    fake.fault_next("stall", seconds=0.2)
    assert client.post("/v1/chat/completions", json=OPENAI_BODY).json()["object"] == (
        "chat.completion"
    )


def test_quota_anthropic(fake, client):
    fake.fault_next("quota")
    resp = client.post("/v1/messages", json=ANTHROPIC_BODY | {"stream": True})
    assert resp.status_code == 429
    body = resp.json()
    assert body["type"] == "error" and body["request_id"] == resp.headers["request-id"]
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["message"].startswith("Your organization's usage limit has been reached")
    assert "retry-after" not in resp.headers  # unlike fail_next(429): no quick retry


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_quota_openai(fake, client, path):
    fake.fault_next("quota")
    resp = client.post(path, json=OPENAI_BODY if "chat" in path else RESPONSES_BODY)
    assert resp.status_code == 429
    error = resp.json()["error"]
    assert error["type"] == error["code"] == "insufficient_quota"
    assert error["message"].startswith("You exceeded your current quota")


def test_quota_codex(fake, client):
    fake.fault_next("quota", resets_in=120)
    resp = client.post(CODEX_PATH, json=RESPONSES_BODY)
    assert resp.status_code == 429
    error = resp.json()["error"]
    assert error["type"] == "usage_limit_reached"
    assert error["message"] == "The usage limit has been reached"
    assert error["resets_in_seconds"] == 120
    fake.fault_next("quota")
    assert client.post(CODEX_PATH, json=RESPONSES_BODY).json()["error"]["resets_in_seconds"] == 3600


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1beta/models/g:generateContent", GEMINI_BODY),
        ("/v1internal:streamGenerateContent?alt=sse", CODE_ASSIST_BODY),
    ],
)
def test_quota_gemini(fake, client, path, body):
    fake.fault_next("quota", resets_in=60, headers={"x-extra": "1"})
    resp = client.post(path, json=body)
    assert resp.status_code == 429 and resp.headers["x-extra"] == "1"
    error = resp.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "per-day quota" in error["message"]
    retry = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "60s"}]


def test_faults_share_the_fifo_with_fail_next(fake, client):
    fake.fault_next("quota")
    fake.fail_next(503)
    fake.fault_next("reset", times=2)
    outcomes = []
    for _ in range(5):
        try:
            outcomes.append(client.post("/v1/chat/completions", json=OPENAI_BODY).status_code)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            outcomes.append("reset")
    assert outcomes == [429, 503, "reset", "reset", 200]
    fake.fault_next("hang")
    fake.clear()  # pending faults are forgotten like failures
    assert client.post("/v1/chat/completions", json=OPENAI_BODY).status_code == 200


def test_connection_counters(fake):
    assert (fake.open_connections, fake.connections_total) == (0, 0)
    with httpx.Client(base_url=fake.url) as c:
        c.get("/v1/models")
        c.get("/v1/models")  # keep-alive: same connection
        assert (fake.open_connections, fake.connections_total) == (1, 1)
    assert fake.wait_connections(0, timeout=2)
    with httpx.Client(base_url=fake.url) as c:
        c.get("/v1/models")
    assert fake.wait_connections(0, timeout=2) and fake.connections_total == 2
    assert fake.cancelled == 0


def test_client_leaving_during_stream_delay_is_cancelled(fake, client):
    fake.stream_delay = 1.0
    started = time.monotonic()
    with client.stream("POST", "/v1/chat/completions", json=OPENAI_BODY | {"stream": True}) as r:
        next(r.iter_lines())  # first event, then hang up mid-stream
    assert eventually(lambda: fake.cancelled == 1, timeout=1)
    assert fake.wait_connections(0, timeout=1)
    assert time.monotonic() - started < 1  # noticed during the pause, not after it
