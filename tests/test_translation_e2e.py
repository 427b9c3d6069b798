"""Any client format to any provider format, through the real mitmdump.

Each official SDK talks to the gateway; each fake upstream answers in its own
wire format. The SDK must parse the translated answer into its own typed
objects with text, tool arguments and thinking intact.

MATRIX below is the source of the README's translation table
(test_readme_matrix_is_true keeps the two in step).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from tests.conftest import CLAUDE_TOKENS, claude_file
from tests.fakes.kiro import DEFAULT_TOKEN as KIRO_TOKEN
from tests.fakes.kiro import FakeKiro
from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway

KEY = "e2e-client-key-0123456789"
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
CALL = {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}

# provider id -> (model the client asks for, what the fake's text says)
PROVIDERS = {
    "claude": ("claude-sonnet-4-20250514", "Hello from Claude fake"),
    "openai": ("fast", "Hello from compat fake"),
    "gemini": ("gemini-2.5-flash", "Hello from Gemini fake"),
    "codex": ("gpt-5", "Hello from Codex fake"),
    "gemini-cli": ("gcli-pro", "Hello from Code Assist fake"),
    # Kiro's spelling routes to Kiro accounts only (and has no "/", which Gemini paths cannot carry).
    "kiro": ("claude-sonnet-4.5", "Hello from Kiro fake"),
}
PROVIDER_FORMAT = {
    "claude": "anthropic",
    "openai": "openai",
    "gemini": "gemini",
    "codex": "responses",
    "gemini-cli": "gemini (Code Assist)",
    "kiro": "kiro",
}
CLIENTS = ("anthropic", "openai", "gemini", "responses")

# What each client format can show of each capability. Thinking: the client
# format has a place for the model's reasoning text (OpenAI Chat has none in
# its SDK types, so it is not asserted there).
MATRIX = {
    client: {
        provider: {"text", "stream", "tools", "usage"}
        | ({"thinking"} if client != "openai" else set())
        for provider in PROVIDERS
    }
    for client in CLIENTS
}


@dataclass
class Answer:
    text: str = ""
    calls: list[tuple[str, dict]] = field(default_factory=list)
    thinking: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None


# --- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    ups = {name: (FakeKiro if name == "kiro" else FakeUpstream)(text) for name, (_, text) in PROVIDERS.items()}
    for up in ups.values():
        up.start()
    yield ups
    for up in ups.values():
        up.stop()


@pytest.fixture(autouse=True)
def _reset(request, fakes):
    for up in fakes.values():
        up.clear()
        up.tool_calls = []
        up.thinking = ""
    gw = request.getfixturevalue("gw") if "gw" in request.fixturenames else None
    yield
    if gw is not None:
        # Injected upstream errors cool credentials down; start each test afresh.
        httpx.post(gw.url + "/v0/management/reset-quota").raise_for_status()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, fakes) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("translate")
    config = {
        "api-keys": [KEY],
        "openai-compatibility": [
            {
                "name": "local",
                "base-url": fakes["openai"].url + "/v1",
                "api-key-entries": [{"api-key": "sk-compat"}],
                "models": [{"name": "upstream-model-x", "alias": "fast"}],
            }
        ],
        "gemini-api-key": [{"api-key": "AIza-e2e", "models": [{"name": "gemini-2.5-flash"}]}],
        "oauth-model-alias": {"gemini": [{"name": "gemini-2.5-pro", "alias": "gcli-pro"}]},
        "upstreams": {
            "claude": {"base-url": fakes["claude"].url},
            "gemini": {
                "api-key-base-url": fakes["gemini"].url,
                "base-url": fakes["gemini-cli"].url,
            },
            "codex": {"base-url": fakes["codex"].url + "/backend-api/codex"},
            "kiro": fakes["kiro"].upstreams,
        },
        # The image server below stands for an internal image host (127.0.0.1 is always refused).
        "images": {"allowed-networks": ["127.0.0.2/32"]},
    }
    auth = {
        "claude-a@example.com.json": claude_file(CLAUDE_TOKENS[0], "a@example.com"),
        "codex-acct-a@example.com.json": {
            "type": "codex",
            "email": "a@example.com",
            "access_token": "codex-access-token",
            "account_id": "acct-e2e",
        },
        "gemini-a@example.com-proj-1.json": {
            "type": "gemini",
            "email": "a@example.com",
            "project_id": "proj-1",
            "token": {"access_token": "ya29.gcli-token", "refresh_token": "r", "token_type": "Bearer"},
        },
        "kiro-builder-id-e2e.json": {
            "type": "kiro",
            "accessToken": KIRO_TOKEN,
            "refreshToken": "kiro-rt-e2e",
            "expiresAt": "2099-01-01T00:00:00Z",
            "authMethod": "builder-id",
        },
    }
    gateway = start_gateway(root, config, auth_files=auth, confdir=confdir)
    yield gateway
    gateway.stop()


# --- one way to ask per client SDK ----------------------------------------------------


def ask_anthropic(gw, model, stream, tools, thinking) -> Answer:
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)
    kw = dict(model=model, max_tokens=256, messages=[{"role": "user", "content": "weather in Oslo please"}])
    if tools:
        kw["tools"] = [{"name": WEATHER["name"], "description": WEATHER["description"], "input_schema": WEATHER["parameters"]}]
    if thinking:
        kw["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        kw["max_tokens"] = 2048
    if stream:
        with client.messages.stream(**kw) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(**kw)
    ans = Answer(input_tokens=msg.usage.input_tokens, output_tokens=msg.usage.output_tokens)
    for block in msg.content:
        if block.type == "text":
            ans.text += block.text
        elif block.type == "tool_use":
            ans.calls.append((block.name, block.input))
        elif block.type == "thinking":
            ans.thinking += block.thinking
    if tools:
        assert msg.stop_reason == "tool_use"
        assert not any(b.type == "text" and not b.text for b in msg.content), "empty text block"
    else:
        assert msg.stop_reason == "end_turn"
    return ans


def ask_openai(gw, model, stream, tools, thinking) -> Answer:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    kw = dict(model=model, messages=[{"role": "user", "content": "weather in Oslo please"}])
    if tools:
        kw["tools"] = [{"type": "function", "function": WEATHER}]
    if thinking:
        kw["reasoning_effort"] = "low"
    ans = Answer()
    if not stream:
        resp = client.chat.completions.create(**kw)
        choice = resp.choices[0]
        ans.text = choice.message.content or ""
        ans.calls = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls or []]
        ans.input_tokens, ans.output_tokens = resp.usage.prompt_tokens, resp.usage.completion_tokens
        finish = choice.finish_reason
    else:
        chunks = list(client.chat.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
        assert chunks[0].choices[0].delta.role == "assistant"
        args: dict[int, list[str]] = {}
        names: dict[int, str] = {}
        finish = None
        for c in chunks:
            for ch in c.choices:
                ans.text += ch.delta.content or ""
                for tc in ch.delta.tool_calls or []:
                    if tc.function and tc.function.name:
                        names[tc.index] = tc.function.name
                    args.setdefault(tc.index, []).append((tc.function and tc.function.arguments) or "")
                finish = ch.finish_reason or finish
        ans.calls = [(names[i], json.loads("".join(args[i]))) for i in sorted(args)]
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        ans.input_tokens, ans.output_tokens = chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens
    assert finish == ("tool_calls" if tools else "stop")
    return ans


def ask_gemini(gw, model, stream, tools, thinking) -> Answer:
    client = genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))
    config = gtypes.GenerateContentConfig()
    if tools:
        config.tools = [gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(
            name=WEATHER["name"], description=WEATHER["description"], parameters_json_schema=WEATHER["parameters"])])]
    if thinking:
        config.thinking_config = gtypes.ThinkingConfig(thinking_budget=1024, include_thoughts=True)
    ans = Answer()
    pieces = (
        list(client.models.generate_content_stream(model=model, contents="weather in Oslo please", config=config))
        if stream
        else [client.models.generate_content(model=model, contents="weather in Oslo please", config=config)]
    )
    for piece in pieces:
        for cand in piece.candidates or []:
            for part in (cand.content.parts if cand.content else None) or []:
                if part.thought:
                    ans.thinking += part.text or ""
                elif part.function_call:
                    ans.calls.append((part.function_call.name, dict(part.function_call.args)))
                elif part.text:
                    ans.text += part.text
        if piece.usage_metadata and piece.usage_metadata.prompt_token_count is not None:
            um = piece.usage_metadata
            ans.input_tokens = um.prompt_token_count
            ans.output_tokens = (um.candidates_token_count or 0) + (um.thoughts_token_count or 0)
    return ans


def ask_responses(gw, model, stream, tools, thinking) -> Answer:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    kw = dict(model=model, input="weather in Oslo please", instructions="be brief")
    if tools:
        kw["tools"] = [{"type": "function", "strict": False, **WEATHER}]
    if thinking:
        kw["reasoning"] = {"effort": "low", "summary": "auto"}
    if stream:
        events = list(client.responses.create(**kw, stream=True))
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert events[0].type == "response.created"
        resp = events[-1].response
        assert events[-1].type == "response.completed"
    else:
        resp = client.responses.create(**kw)
    ans = Answer(input_tokens=resp.usage.input_tokens, output_tokens=resp.usage.output_tokens)
    for item in resp.output:
        if item.type == "message":
            ans.text += "".join(c.text for c in item.content if c.type == "output_text")
        elif item.type == "function_call":
            ans.calls.append((item.name, json.loads(item.arguments)))
        elif item.type == "reasoning":
            ans.thinking += "".join(s.text for s in item.summary)
    return ans


ASK = {"anthropic": ask_anthropic, "openai": ask_openai, "gemini": ask_gemini, "responses": ask_responses}
PAIRS = [(c, p) for c in CLIENTS for p in PROVIDERS]


# --- the matrix -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_text(gw, fakes, client, provider, stream):
    model, text = PROVIDERS[provider]
    ans = ASK[client](gw, model, stream, tools=False, thinking=False)
    assert ans.text == text
    assert ans.calls == []
    # "weather in Oslo please" (+ "be brief" for Responses clients) on every fake's word count.
    assert ans.input_tokens == (6 if client == "responses" else 4)
    assert ans.output_tokens == len(text.split())
    assert len(fakes[provider].requests) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("client", "provider"), PAIRS)
def test_tool_call(gw, fakes, client, provider, stream):
    model, text = PROVIDERS[provider]
    fakes[provider].tool_calls = [CALL]
    ans = ASK[client](gw, model, stream, tools=True, thinking=False)
    assert ans.calls == [(CALL["name"], CALL["arguments"])]
    assert ans.text == text
    sent = fakes[provider].last.json
    assert "get_weather" in json.dumps(sent)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("client", "provider"), [(c, p) for c, p in PAIRS if "thinking" in MATRIX[c][p]])
def test_thinking(gw, fakes, client, provider, stream):
    model, text = PROVIDERS[provider]
    fakes[provider].thinking = "Let me think about Oslo"
    ans = ASK[client](gw, model, stream, tools=False, thinking=True)
    assert ans.text == text
    assert ans.thinking == "Let me think about Oslo"


def test_parallel_tool_calls_stream_whole_and_in_order(gw, fakes):
    second = {"name": "get_weather", "arguments": {"city": "Bergen", "unit": "f"}}
    fakes["claude"].tool_calls = [CALL, second]
    fakes["claude"].reply_text = ""
    try:
        ans = ask_openai(gw, PROVIDERS["claude"][0], True, tools=True, thinking=False)
    finally:
        fakes["claude"].reply_text = PROVIDERS["claude"][1]
    assert ans.calls == [(CALL["name"], CALL["arguments"]), (second["name"], second["arguments"])]
    assert ans.text == ""


def test_tool_result_round_trip_to_gemini(gw, fakes):
    """An OpenAI conversation with a tool result reaches Gemini as functionCall/functionResponse."""
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    client.chat.completions.create(
        model=PROVIDERS["gemini"][0],
        tools=[{"type": "function", "function": WEATHER}],
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "22C and sunny"},
        ],
    )
    sent = fakes["gemini"].last.json
    assert sent["systemInstruction"]["parts"][0]["text"] == "You are terse."
    roles = [c["role"] for c in sent["contents"]]
    assert roles == ["user", "model", "user"]
    assert sent["contents"][1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"city": "Oslo"}}
    response = sent["contents"][2]["parts"][0]["functionResponse"]
    assert response["name"] == "get_weather"
    assert "22C and sunny" in json.dumps(response["response"])
    # The schema was cleaned of what Gemini rejects.
    params = sent["tools"][0]["functionDeclarations"][0]["parameters"]
    assert "additionalProperties" not in params


def test_claude_signature_never_reaches_gemini(gw, fakes):
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)
    client.messages.create(
        model=PROVIDERS["gemini"][0],
        max_tokens=64,
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "claude-sig-abc"},
                {"type": "text", "text": "hello"}]},
            {"role": "user", "content": "again"},
        ],
    )
    raw = fakes["gemini"].last.body.decode()
    assert "claude-sig-abc" not in raw
    assert "hello" in raw


@pytest.fixture
def image_server() -> Iterator[tuple[str, bytes]]:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}/cat.png", png
    server.shutdown()


def test_image_url_is_fetched_and_inlined_for_gemini(gw, fakes, image_server):
    url, png = image_server
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    client.chat.completions.create(
        model=PROVIDERS["gemini"][0],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": url}}]}],
    )
    parts = fakes["gemini"].last.json["contents"][0]["parts"]
    inline = next(p["inlineData"] for p in parts if "inlineData" in p)
    assert inline["mimeType"] == "image/png"
    assert base64.b64decode(inline["data"]) == png


def test_unfetchable_image_is_a_clear_400(gw, fakes):
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(
            model=PROVIDERS["gemini"][0], max_tokens=16,
            messages=[{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "http://127.0.0.1:9/none.png"}}]}],
        )
    assert "image 1 could not be fetched" in e.value.message
    assert fakes["gemini"].requests == []


def test_base64_image_reaches_claude_from_openai(gw, fakes):
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    data = base64.b64encode(b"\x89PNG fake").decode()
    client.chat.completions.create(
        model=PROVIDERS["claude"][0],
        messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
            {"type": "text", "text": "describe"}]}],
    )
    content = fakes["claude"].last.json["messages"][0]["content"]
    assert {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}} in content
    assert fakes["claude"].last.json["max_tokens"] > 0


# --- errors ------------------------------------------------------------------------------


def test_upstream_error_in_client_shape(gw, fakes):
    fakes["claude"].fail_next(429)
    with pytest.raises(openai.RateLimitError) as e:
        ask_openai(gw, PROVIDERS["claude"][0], False, False, False)
    assert e.value.status_code == 429
    fakes["gemini"].fail_next(400, {"error": {"code": 400, "message": "bad thing", "status": "INVALID_ARGUMENT"}})
    with pytest.raises(anthropic.BadRequestError) as e2:
        ask_anthropic(gw, PROVIDERS["gemini"][0], True, False, False)
    assert "bad thing" in e2.value.message
    fakes["codex"].fail_next(429)
    client = genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))
    with pytest.raises(genai.errors.ClientError) as e3:
        client.models.generate_content(model=PROVIDERS["codex"][0], contents="hi")
    assert e3.value.code == 429
    assert e3.value.status == "RESOURCE_EXHAUSTED"


def test_non_stream_client_on_stream_only_codex_gets_one_answer(gw, fakes):
    ans = ask_anthropic(gw, PROVIDERS["codex"][0], False, False, False)
    assert ans.text == PROVIDERS["codex"][1]
    sent = fakes["codex"].last
    assert sent.path == "/backend-api/codex/responses"
    assert sent.json["stream"] is True and sent.json["store"] is False
    assert sent.headers["chatgpt-account-id"] == "acct-e2e"
    assert sent.headers["authorization"] == "Bearer codex-access-token"


def test_code_assist_wrapper(gw, fakes):
    ask_openai(gw, PROVIDERS["gemini-cli"][0], True, False, False)
    sent = fakes["gemini-cli"].last
    assert sent.path == "/v1internal:streamGenerateContent"
    assert sent.query["alt"] == "sse"
    assert sent.json["project"] == "proj-1"
    assert sent.json["model"] == "gemini-2.5-pro"
    assert "contents" in sent.json["request"]
    assert sent.headers["authorization"] == "Bearer ya29.gcli-token"


def test_gemini_client_native_format_on_code_assist(gw, fakes):
    ans = ask_gemini(gw, PROVIDERS["gemini-cli"][0], False, False, False)
    assert ans.text == PROVIDERS["gemini-cli"][1]
    assert fakes["gemini-cli"].last.path == "/v1internal:generateContent"


# --- token counting ----------------------------------------------------------------------------


def test_count_tokens_translated_and_estimated(gw, fakes):
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)
    msgs = [{"role": "user", "content": "one two three four five"}]
    counted = client.messages.count_tokens(model=PROVIDERS["gemini"][0], messages=msgs)
    assert counted.input_tokens == 5  # the fake's countTokens answer
    assert fakes["gemini"].last.path.endswith(":countTokens")
    estimated = client.messages.count_tokens(model=PROVIDERS["openai"][0], messages=msgs)
    assert estimated.input_tokens > 0  # no counting endpoint upstream: estimated locally
    assert fakes["openai"].requests == []


# --- records --------------------------------------------------------------------------------------


def test_translated_requests_are_recorded_with_usage(gw, fakes):
    def rows():
        return httpx.get(gw.url + "/v0/management/logs", params={"limit": 50}).json()["logs"]

    # Earlier tests' rows may still be on their way to the database (50 ms batches).
    before: set[str] = set()
    while (seen := {r["requestId"] for r in rows()}) != before:
        before = seen
        threading.Event().wait(0.2)
    ask_anthropic(gw, PROVIDERS["gemini"][0], True, False, False)
    new = []
    for _ in range(50):  # the writer drains every 50 ms
        new = [r for r in rows() if r["requestId"] not in before]
        if new:
            break
        threading.Event().wait(0.1)
    assert len(new) == 1, new
    row = new[0]
    assert (row["provider"], row["metadata"]["client_format"]) == ("gemini", "anthropic")
    assert row["metadata"]["input_tokens"] == 4
    assert row["metadata"]["output_tokens"] == 4
    assert row["metadata"]["stream"] is True


# --- README ---------------------------------------------------------------------------------------


def readme_matrix() -> dict[str, dict[str, set[str]]]:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text.split("<!-- translation-matrix -->")[1].split("<!-- /translation-matrix -->")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    header = [c.strip() for c in rows[0].strip("|").split("|")][1:]
    out: dict[str, dict[str, set[str]]] = {}
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        client = cells[0].split()[0].strip("`")
        out[client] = {
            provider: {c.strip() for c in cell.split(",") if c.strip()}
            for provider, cell in zip(header, cells[1:], strict=True)
        }
    return out


def test_readme_matrix_is_true():
    expected = {c: {PROVIDER_FORMAT[p]: caps for p, caps in row.items()} for c, row in MATRIX.items()}
    assert readme_matrix() == expected


# --- streams that end early ---------------------------------------------------------------------


class _CuttingUpstream:
    """An OpenAI-compatible upstream that sends one chunk, then ends early.

    clean=True ends the chunked body properly (the stream just stops short);
    clean=False drops the connection in the middle of the body.
    """

    def __init__(self, clean: bool):
        import socket

        self.clean = clean
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            chunk = b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\n'
            head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
            body = b"%x\r\n%s\r\n" % (len(chunk), chunk)
            conn.sendall(head + body + (b"0\r\n\r\n" if self.clean else b""))
            threading.Event().wait(0.2)
            conn.close()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("clean", [True, False], ids=["ends-short", "connection-drops"])
def test_stream_that_ends_early_is_an_error_not_a_hang(tmp_path, confdir, clean):
    up = _CuttingUpstream(clean)
    config = {"openai-compatibility": [{"name": "cut", "base-url": up.url + "/v1",
                                        "api-key-entries": [{"api-key": "k"}], "models": [{"name": "x", "alias": "cut"}]}]}
    gateway = start_gateway(tmp_path, config, confdir=confdir)
    try:
        client = anthropic.Anthropic(base_url=gateway.url, api_key="any", max_retries=0, timeout=10)
        events = []
        # The SDK's own transport (httpx or httpx2) raises for a dropped connection.
        with pytest.raises(Exception) as e:  # noqa: B017 - which class depends on the SDK's transport
            with client.messages.stream(model="cut", max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as s:
                for event in s:
                    events.append(event.type)
        assert "content_block_delta" in events  # what did arrive was passed on at once
        assert "timeout" not in type(e.value).__name__.lower(), "the client was left hanging"
        if clean:
            # The client's own format says what happened: an Anthropic error event.
            assert isinstance(e.value, anthropic.APIStatusError)
            assert "ended early" in str(e.value)
    finally:
        gateway.stop()
        up.close()
