"""Self-test of tests/fakes/upstreams.py: wire framing, SDK compatibility, failures."""

from __future__ import annotations

import json
import socket
import time

import anthropic
import httpx
import openai
import pytest
from google import genai

from tests.fakes import DEFAULT_REPLY, FakeUpstream, api_key_check, split_reply

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
    assert start["content"] == [] and start["stop_reason"] is None and start["model"] == "claude-test"
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
    "body", [GEMINI_BODY, {"generateContentRequest": {"model": "models/gemini-test", **GEMINI_BODY}}]
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
