"""Kiro accounts end to end: the official SDKs, the real mitmdump, the Kiro fake.

The fake checks every header and body rule Kiro enforces (tests/fakes/kiro.py),
so a request that reaches its answer was well formed; the tests then check
the exact values the gateway sent.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.fakes.kiro import DEFAULT_TOKEN, PROFILE_ARN, FakeKiro
from tests.gateway_proc import GatewayProcess, start_gateway

KEY = "kiro-e2e-client-key-0123456789"
SOCIAL_TOKEN = "kiro-social-access-token-0002"
MODEL = "claude-sonnet-4-5"
TEXT = "Hello from Kiro fake"
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CALL = {"name": "get_weather", "arguments": {"city": "Oslo"}}
# Builder ID accounts: the login's client id seeds it (refresh tokens rotate).
MACHINE_ID = hashlib.sha256(b"KotlinNativeAPI/kiro-client-e2e").hexdigest()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKiro]:
    with FakeKiro(TEXT) as f:
        f.add_token(SOCIAL_TOKEN, social=True)
        yield f


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, fake) -> Iterator[GatewayProcess]:
    auth = {
        "kiro-builder-id-e2e.json": {
            "type": "kiro",
            "accessToken": DEFAULT_TOKEN,
            "refreshToken": "kiro-rt-builder",
            "expiresAt": "2099-01-01T00:00:00Z",
            "authMethod": "builder-id",
            "clientId": "kiro-client-e2e",
            "clientSecret": "kiro-secret-e2e",
            "region": "us-east-1",
        },
        # A social login: needs its profile ARN on every call. Reached as `social/<model>`.
        "kiro-social-e2e.json": {
            "type": "kiro",
            "accessToken": SOCIAL_TOKEN,
            "refreshToken": "kiro-rt-social",
            "profileArn": PROFILE_ARN,
            "expiresAt": "2099-01-01T00:00:00Z",
            "authMethod": "social",
            "prefix": "social",
        },
    }
    config = {"api-keys": [KEY], "upstreams": {"kiro": fake.upstreams}}
    gateway = start_gateway(tmp_path_factory.mktemp("kiro"), config, auth_files=auth, confdir=confdir)
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _reset(fake, gw):
    fake.clear()
    fake.tool_calls, fake.thinking, fake.reply_text, fake.stream_delay = [], "", TEXT, 0.0
    yield
    # Injected errors cool the account down; each test starts afresh.
    httpx.post(gw.url + "/v0/management/reset-quota").raise_for_status()


def oai(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)


def ant(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)


def assert_kiro_request(req, token: str = DEFAULT_TOKEN, machine: str = MACHINE_ID) -> dict:
    """The exact request Kiro's IDE would send; returns the body."""
    assert req.path == "/generateAssistantResponse"
    h = req.headers
    assert h["authorization"] == f"Bearer {token}"
    assert h["content-type"] == "application/x-amz-json-1.0"
    assert h["x-amz-target"] == "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
    assert h["amz-sdk-request"] == "attempt=1; max=3"
    uuid.UUID(h["amz-sdk-invocation-id"])
    assert h["x-amz-user-agent"] == f"aws-sdk-js/1.0.27 KiroIDE-0.7.45-{machine}"
    assert h["user-agent"].endswith(f"KiroIDE-0.7.45-{machine}")
    # The client's key never travels on.
    assert KEY not in json.dumps(h) and "x-api-key" not in h
    body = req.json
    cur = body["conversationState"]["currentMessage"]["userInputMessage"]
    assert (cur["modelId"], cur["origin"]) == ("claude-sonnet-4.5", "AI_EDITOR")
    return body


# --- OpenAI SDK ------------------------------------------------------------------------


def test_openai_non_stream_text(gw, fake):
    resp = oai(gw).chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "weather in Oslo please"}]
    )
    assert resp.choices[0].message.content == TEXT
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (6, 4)
    assert resp.model == MODEL
    [req] = fake.api_requests()
    body = assert_kiro_request(req)
    assert body["conversationState"]["currentMessage"]["userInputMessage"]["content"] == (
        "Be terse.\n\nweather in Oslo please"
    )
    assert "profileArn" not in body  # Builder ID accounts have none


def test_openai_stream_text_arrives_as_it_is_generated(gw, fake):
    fake.stream_delay = 0.3
    started = time.monotonic()
    stream = oai(gw).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi there"}], stream=True,
        stream_options={"include_usage": True},
    )
    text, first_at = "", None
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
        for ch in chunk.choices:
            if ch.delta.content and first_at is None:
                first_at = time.monotonic() - started
            text += ch.delta.content or ""
    total = time.monotonic() - started
    assert text == TEXT
    # Four words 0.3 s apart (plus usage events): the first came long before the last.
    assert first_at is not None and total - first_at > 0.9
    assert chunks[-1].usage.prompt_tokens == 2 and chunks[-1].usage.completion_tokens == 4
    assert_kiro_request(fake.api_requests()[0])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_openai_tool_call(gw, fake, stream):
    fake.tool_calls = [CALL]
    kw = {"model": MODEL, "messages": [{"role": "user", "content": "weather in Oslo?"}],
          "tools": [{"type": "function", "function": WEATHER}]}
    if stream:
        args, name, finish, text = [], None, None, ""
        for chunk in oai(gw).chat.completions.create(**kw, stream=True):
            for ch in chunk.choices:
                text += ch.delta.content or ""
                for tc in ch.delta.tool_calls or []:
                    name = (tc.function and tc.function.name) or name
                    args.append((tc.function and tc.function.arguments) or "")
                finish = ch.finish_reason or finish
        calls = [(name, json.loads("".join(args)))]
    else:
        msg = oai(gw).chat.completions.create(**kw).choices[0]
        text, finish = msg.message.content, msg.finish_reason
        calls = [(c.function.name, json.loads(c.function.arguments)) for c in msg.message.tool_calls]
        assert msg.message.tool_calls[0].id.startswith("tooluse_")
    assert calls == [("get_weather", {"city": "Oslo"})]
    assert (text, finish) == (TEXT, "tool_calls")
    body = assert_kiro_request(fake.api_requests()[0])
    spec = body["conversationState"]["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"][0]
    assert spec == {"toolSpecification": {"name": "get_weather", "description": WEATHER["description"],
                                          "inputSchema": {"json": WEATHER["parameters"]}}}


# --- Anthropic SDK -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_text(gw, fake, stream):
    kw = {"model": MODEL, "max_tokens": 256, "system": "Be terse.",
          "messages": [{"role": "user", "content": "weather in Oslo please"}]}
    if stream:
        with ant(gw).messages.stream(**kw) as s:
            msg = s.get_final_message()
    else:
        msg = ant(gw).messages.create(**kw)
    assert [b.text for b in msg.content if b.type == "text"] == [TEXT]
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (6, 4)
    assert_kiro_request(fake.api_requests()[0])


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_tool_call_and_result_round_trip(gw, fake, stream):
    fake.tool_calls = [CALL]
    tools = [{"name": WEATHER["name"], "description": WEATHER["description"], "input_schema": WEATHER["parameters"]}]
    kw = {"model": MODEL, "max_tokens": 256, "tools": tools, "messages": [{"role": "user", "content": "weather in Oslo?"}]}
    if stream:
        with ant(gw).messages.stream(**kw) as s:
            msg = s.get_final_message()
    else:
        msg = ant(gw).messages.create(**kw)
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "Oslo"})
    # The next turn sends the call and its result back; the fake checks their pairing.
    fake.tool_calls = []
    follow = ant(gw).messages.create(
        model=MODEL, max_tokens=256, tools=tools,
        messages=[*kw["messages"], {"role": "assistant", "content": msg.content},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "22C"}]}],
    )
    assert follow.content[0].text == TEXT
    st = assert_kiro_request(fake.api_requests()[-1])["conversationState"]
    assert st["history"][1]["assistantResponseMessage"]["toolUses"] == [
        {"toolUseId": use.id, "name": "get_weather", "input": {"city": "Oslo"}}
    ]
    results = st["currentMessage"]["userInputMessage"]["userInputMessageContext"]["toolResults"]
    assert results == [{"toolUseId": use.id, "status": "success", "content": [{"text": "22C"}]}]


def test_anthropic_thinking(gw, fake):
    fake.thinking = "Let me think about Oslo"
    msg = ant(gw).messages.create(
        model=MODEL, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[{"role": "user", "content": "weather?"}],
    )
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in msg.content] == [
        ("thinking", "Let me think about Oslo"), ("text", TEXT)
    ]
    content = fake.api_requests()[0].json["conversationState"]["currentMessage"]["userInputMessage"]["content"]
    assert content.startswith("<thinking_mode>interleaved</thinking_mode><max_thinking_length>2000</max_thinking_length>")


# --- accounts, errors, the rest ------------------------------------------------------------


def test_social_account_sends_its_profile_arn(gw, fake):
    resp = oai(gw).chat.completions.create(model="social/" + MODEL, messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == TEXT
    body = assert_kiro_request(
        fake.api_requests()[0], SOCIAL_TOKEN, hashlib.sha256(f"KotlinNativeAPI/{PROFILE_ARN}".encode()).hexdigest()
    )
    assert body["profileArn"] == PROFILE_ARN


def test_monthly_quota_is_a_rate_limit_to_the_client(gw, fake):
    fake.quota_next()
    with pytest.raises(openai.RateLimitError) as e:
        oai(gw).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert "monthly request quota" in e.value.message
    fake.quota_next()
    with pytest.raises(anthropic.RateLimitError) as e2:
        ant(gw).messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert e2.value.status_code == 429


def test_in_stream_exception_reaches_the_client(gw, fake):
    fake.stream_error_next("exception")
    events = []
    # The error arrives mid-stream, after the first text.
    kw = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(anthropic.APIStatusError) as e, ant(gw).messages.stream(**kw) as s:
        events.extend(event.type for event in s)
    assert "ThrottlingException" in str(e.value)
    assert "content_block_delta" in events  # the text before the failure got through
    fake.stream_error_next("exception")
    with pytest.raises(openai.RateLimitError):
        oai(gw).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])


def test_corrupt_stream_is_a_clean_error(gw, fake):
    fake.stream_error_next("corrupt")
    with pytest.raises(openai.APIStatusError) as e:
        oai(gw).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 502 and "CRC" in e.value.message
    # The gateway keeps serving.
    assert oai(gw).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])


def test_count_tokens_is_estimated_locally(gw, fake):
    counted = ant(gw).messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "one two three four"}])
    assert counted.input_tokens > 0
    assert fake.api_requests() == []


def test_model_list_names_kiro_models(gw):
    ids = {m.id for m in oai(gw).models.list()}
    assert {"claude-sonnet-4.5", "claude-haiku-4.5"} <= ids


def test_stream_is_recorded_with_its_usage(gw, fake):
    def rows():
        return httpx.get(gw.url + "/v0/management/logs", params={"limit": 50}).json()["logs"]

    before = {r["requestId"] for r in rows()}
    with ant(gw).messages.stream(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "a b c"}]) as s:
        s.get_final_message()
    new = []
    for _ in range(50):  # the writer drains every 50 ms
        new = [r for r in rows() if r["requestId"] not in before]
        if new:
            break
        threading.Event().wait(0.1)
    [row] = new
    assert row["provider"] == "kiro"
    assert (row["metadata"]["input_tokens"], row["metadata"]["output_tokens"]) == (3, 4)
    assert DEFAULT_TOKEN not in json.dumps(row)


def test_failover_to_another_kiro_account_folds_the_whole_stream(tmp_path, confdir, fake):
    """A 429 on one account: the gateway retries on the next, whose stream then arrives whole."""
    second = "kiro-access-token-second"
    fake.add_token(second)
    auth = {
        f"kiro-builder-id-{i}.json": {"type": "kiro", "accessToken": token, "refreshToken": f"rt-{i}",
                                      "expiresAt": "2099-01-01T00:00:00Z", "authMethod": "builder-id"}
        for i, token in enumerate((DEFAULT_TOKEN, second))
    }
    gateway = start_gateway(tmp_path, {"api-keys": [KEY], "upstreams": {"kiro": fake.upstreams}},
                            auth_files=auth, confdir=confdir)
    try:
        rate_limited = {"message": "Too many requests", "reason": "USER_REQUEST_RATE_EXCEEDED"}
        fake.fail_next(429, rate_limited)
        resp = oai(gateway).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == TEXT
        first, retry = fake.api_requests()
        assert {first.headers["authorization"], retry.headers["authorization"]} == {
            f"Bearer {DEFAULT_TOKEN}", f"Bearer {second}"
        }
        # A stream client without SDK retries: the retried stream is translated whole.
        fake.clear()
        fake.fail_next(429, rate_limited)
        body = {"model": MODEL, "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        r = httpx.post(gateway.url + "/v1/messages", json=body, headers={"x-api-key": KEY}, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert len(fake.api_requests()) == 2
        deltas = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
        text = "".join(d["delta"].get("text", "") for d in deltas if d["type"] == "content_block_delta")
        assert text == TEXT and deltas[-1]["type"] == "message_stop"
    finally:
        gateway.stop()


def test_refused_token_is_refreshed_and_the_request_sent_again(tmp_path, confdir, fake):
    """Kiro refuses an expired token with 403 (or 401): one refresh through SSO-OIDC, then a retry."""
    account = fake.seed_account()
    gateway = start_gateway(tmp_path, {"api-keys": [KEY], "upstreams": {"kiro": fake.upstreams}},
                            auth_files={"kiro-builder-id-seed.json": account}, confdir=confdir)
    try:
        fake.reject_once(account["accessToken"], status=403)
        resp = oai(gateway).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        assert resp.choices[0].message.content == TEXT
        refused, refresh, retried = fake.requests
        assert refused.headers["authorization"] == f"Bearer {account['accessToken']}"
        assert refresh.path == "/token" and refresh.json["grantType"] == "refresh_token"
        assert refresh.json["refreshToken"] == account["refreshToken"]
        new_token = retried.headers["authorization"].removeprefix("Bearer ")
        assert new_token != account["accessToken"] and fake.token_valid(new_token)
        # Same machine before and after: the id does not follow the rotating refresh token.
        assert retried.headers["x-amz-user-agent"] == refused.headers["x-amz-user-agent"]
        saved = json.loads((tmp_path / "auth" / "kiro-builder-id-seed.json").read_text())
        assert saved["accessToken"] == new_token and saved["refreshToken"] != account["refreshToken"]
        assert saved["clientId"] == account["clientId"]

        # A 401 on a streaming SDK request: refreshed, and the SDK's own retry gets the new token.
        fake.clear()
        fake.reject_once(new_token, status=401)
        client = anthropic.Anthropic(base_url=gateway.url, api_key=KEY, max_retries=2)
        with client.messages.stream(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]) as s:
            assert s.get_final_message().content[0].text == TEXT
        paths = [r.path for r in fake.requests]
        assert paths == ["/generateAssistantResponse", "/token", "/generateAssistantResponse"]
    finally:
        gateway.stop()


def test_device_login_through_the_management_routes_then_served(tmp_path, confdir, fake):
    """The Builder ID device flow started and polled through the gateway; the file it writes serves."""
    fake.slow_down, fake.pending_polls = False, 1
    gateway = start_gateway(tmp_path, {"api-keys": [KEY], "upstreams": {"kiro": fake.upstreams}}, confdir=confdir)

    def mgmt(path: str, **body) -> dict:
        r = httpx.post(f"{gateway.url}/v0/management{path}", json=body, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    try:
        assert "kiro" in httpx.get(f"{gateway.url}/v0/management/oauth/providers").json()["device_code"]
        start = mgmt("/oauth/device-start", provider="kiro")
        assert start["user_code"] and start["verification_uri_complete"].endswith(start["user_code"])
        deadline = time.monotonic() + 15
        while (done := mgmt("/oauth/device-poll", provider="kiro", device_code=start["device_code"]))["status"] == "pending":
            assert time.monotonic() < deadline, "device login did not finish"
            time.sleep(0.1)
        assert done["status"] == "completed", done
        [name] = [p.name for p in (tmp_path / "auth").glob("kiro-*.json")]
        saved = json.loads((tmp_path / "auth" / name).read_text())
        assert name.startswith("kiro-builder-id-") and saved["authMethod"] == "builder-id"
        assert fake.token_valid(saved["accessToken"])
        deadline = time.monotonic() + 10
        while True:  # the auth dir is rescanned every 200 ms
            try:
                resp = oai(gateway).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
                break
            except openai.NotFoundError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert resp.choices[0].message.content == TEXT
        assert fake.api_requests()[-1].headers["authorization"] == f"Bearer {saved['accessToken']}"
    finally:
        fake.slow_down, fake.pending_polls = True, 2
        gateway.stop()
