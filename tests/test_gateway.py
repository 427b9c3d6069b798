"""End to end: the real mitmdump with the addon, the official SDKs, fake upstreams."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from tests.conftest import (
    CLAUDE_API_KEY,
    CLAUDE_TOKENS,
    CLIENT_KEY,
    COMPAT_KEY,
    GEMINI_KEY,
    MGMT_KEY,
    OPENAI_KEY,
)

MGMT = {"Authorization": f"Bearer {MGMT_KEY}"}


def claude_client(gateway, key=CLIENT_KEY, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, **kw)


def openai_client(gateway, key=CLIENT_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def gemini_client(gateway, key=CLIENT_KEY) -> genai.Client:
    return genai.Client(
        api_key=key,
        http_options=gtypes.HttpOptions(base_url=gateway.url, api_version="v1beta"),
    )


def assert_no_client_secret(captured) -> None:
    blob = json.dumps(captured.headers) + json.dumps(captured.query)
    assert CLIENT_KEY not in blob


def logs(gateway, path="/v0/management/logs", **params) -> list[dict]:
    r = httpx.get(gateway.url + path, headers=MGMT, params=params)
    assert r.status_code == 200, r.text
    return r.json()["logs"]


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


# --- Anthropic Messages to Claude ------------------------------------------


def test_messages_oauth_injects_bearer_and_oauth_beta(gateway, claude_up):
    msg = claude_client(gateway).messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=64,
        messages=[{"role": "user", "content": "say hello please"}],
        extra_headers={"anthropic-beta": "interleaved-thinking-2025-05-14"},
    )
    assert msg.content[0].text == "Hello from Claude fake"
    assert msg.usage.input_tokens == 3
    got = claude_up.last
    assert got.path == "/v1/messages"
    assert got.headers["authorization"] in {f"Bearer {t}" for t in CLAUDE_TOKENS}
    assert got.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,oauth-2025-04-20"
    assert "x-api-key" not in got.headers
    assert_no_client_secret(got)


def test_messages_round_robin_across_oauth_accounts(gateway, claude_up):
    client = claude_client(gateway)
    for _ in range(4):
        client.messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    used = [r.headers["authorization"].removeprefix("Bearer ") for r in claude_up.requests]
    assert sorted(used) == sorted(CLAUDE_TOKENS * 2)
    assert used[0] != used[1] and used[1] != used[2]


def test_messages_stream(gateway, claude_up):
    with claude_client(gateway).messages.stream(
        model="claude-sonnet-4-20250514",
        max_tokens=64,
        messages=[{"role": "user", "content": "stream this"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from Claude fake"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4
    assert claude_up.last.json["stream"] is True


def test_count_tokens(gateway, claude_up):
    result = claude_client(gateway).messages.count_tokens(
        model="claude-sonnet-4-20250514",
        messages=[{"role": "user", "content": "one two three four"}],
    )
    assert result.input_tokens == 4
    assert claude_up.last.path == "/v1/messages/count_tokens"


def test_api_key_entry_by_prefix_uses_x_api_key(gateway, claude_up):
    msg = claude_client(gateway).messages.create(
        model="key/claude-sonnet-4-20250514",
        max_tokens=8,
        messages=[{"role": "user", "content": "hi"}],
    )
    assert msg.content[0].text == "Hello from Claude fake"
    got = claude_up.last
    assert got.headers["x-api-key"] == CLAUDE_API_KEY
    assert "authorization" not in got.headers
    assert got.json["model"] == "claude-sonnet-4-20250514"
    # The client's alias comes back, not the upstream name.
    assert msg.model == "key/claude-sonnet-4-20250514"


# --- OpenAI Chat Completions -----------------------------------------------


def test_chat_completions_codex_api_key(gateway, openai_up):
    resp = openai_client(gateway).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello there"}]
    )
    assert resp.choices[0].message.content == "Hello from OpenAI fake"
    assert resp.usage.prompt_tokens == 2
    got = openai_up.last
    assert got.path == "/v1/chat/completions"
    assert got.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert_no_client_secret(got)


def test_chat_completions_stream_with_usage(gateway, openai_up):
    stream = openai_client(gateway).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "stream me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from OpenAI fake"
    assert chunks[-1].usage.completion_tokens == 4


def test_compat_alias_mapped_both_ways(gateway, compat_up):
    client = openai_client(gateway)
    resp = client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "x"}])
    assert compat_up.last.json["model"] == "upstream-model-x"
    assert compat_up.last.headers["authorization"] == f"Bearer {COMPAT_KEY}"
    assert resp.model == "fast"
    chunks = list(
        client.chat.completions.create(
            model="fast", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert {c.model for c in chunks} == {"fast"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from compat fake"


# --- Gemini ------------------------------------------------------------------


def test_gemini_generate_content(gateway, gemini_up):
    client = gemini_client(gateway)
    resp = client.models.generate_content(
        model="gemini-2.5-flash", contents="what is up"
    )
    assert resp.text == "Hello from Gemini fake"
    assert resp.usage_metadata.prompt_token_count == 3
    got = gemini_up.last
    assert got.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert got.headers["x-goog-api-key"] == GEMINI_KEY
    assert "key" not in got.query
    assert_no_client_secret(got)


def test_gemini_stream(gateway, gemini_up):
    client = gemini_client(gateway)
    pieces = list(
        client.models.generate_content_stream(
            model="gemini-2.5-pro", contents="stream it"
        )
    )
    assert "".join(p.text or "" for p in pieces) == "Hello from Gemini fake"
    assert gemini_up.last.query.get("alt") == "sse"
    assert pieces[-1].usage_metadata.candidates_token_count == 4


def test_gemini_key_in_query_is_accepted_and_stripped(gateway, gemini_up):
    r = httpx.post(
        f"{gateway.url}/v1beta/models/gemini-2.5-flash:countTokens",
        params={"key": CLIENT_KEY},
        json={"contents": [{"role": "user", "parts": [{"text": "a b c"}]}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["totalTokens"] == 3
    assert "key" not in gemini_up.last.query


# --- model listing -----------------------------------------------------------


def test_models_openai_shape(gateway):
    ids = {m.id for m in openai_client(gateway).models.list()}
    assert {"fast", "gpt-4o", "claude-sonnet-4-20250514", "gemini-2.5-pro"} <= ids
    assert "key/claude-sonnet-4-20250514" in ids


def test_models_anthropic_shape(gateway):
    models = claude_client(gateway).models.list()
    ids = {m.id for m in models}
    assert "claude-sonnet-4-20250514" in ids
    assert all(m.type == "model" for m in models)


def test_models_gemini_shape(gateway):
    client = gemini_client(gateway)
    names = {m.name for m in client.models.list()}
    assert "models/gemini-2.5-pro" in names


# --- client keys and errors ----------------------------------------------------


def test_wrong_client_key_rejected_in_each_shape(gateway, claude_up):
    with pytest.raises(anthropic.AuthenticationError) as e:
        claude_client(gateway, key="wrong").messages.create(
            model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert e.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        openai_client(gateway, key="wrong").chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    r = httpx.post(
        f"{gateway.url}/v1beta/models/gemini-2.5-flash:generateContent",
        json={"contents": []},
    )
    assert r.status_code == 401
    assert r.json()["error"]["status"] == "UNAUTHENTICATED"
    assert claude_up.requests == []


def test_unknown_model_is_404_in_client_shape(gateway):
    with pytest.raises(anthropic.NotFoundError) as e:
        claude_client(gateway).messages.create(
            model="llama-3-unknown", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert e.value.body["error"]["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError) as e2:
        openai_client(gateway).chat.completions.create(
            model="llama-unknown", messages=[{"role": "user", "content": "hi"}]
        )
    assert e2.value.code == "model_not_found"


def test_malformed_json_is_400_and_gateway_keeps_serving(gateway):
    r = httpx.post(
        f"{gateway.url}/v1/messages",
        content=b"{not json",
        headers={"x-api-key": CLIENT_KEY, "content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{gateway.url}/health").status_code == 200


def test_upstream_error_passes_through(gateway, openai_up):
    openai_up.fail_next(429)
    with pytest.raises(openai.RateLimitError):
        openai_client(gateway).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert wait_for(
        lambda: any(
            e["status"] == 429 and e["provider"] == "codex"
            for e in logs(gateway, "/v0/management/logs/status/4xx", limit=5)
        )
    )


# --- passthrough ------------------------------------------------------------------


def test_unrouted_goes_to_cliproxyapi(gateway, cliproxy_up):
    r = httpx.get(f"{gateway.url}/v1/whatever", headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 404  # the fake's own 404, proving the request reached it
    assert cliproxy_up.last.path == "/v1/whatever"


# --- records and management ----------------------------------------------------


def test_records_written_with_tokens(gateway):
    model = "claude-opus-4-1-20250805"  # used by no other test, to pick out these rows
    claude_client(gateway).messages.create(
        model=model,
        max_tokens=16,
        messages=[{"role": "user", "content": "count these five words"}],
    )
    with claude_client(gateway).messages.stream(
        model=model,
        max_tokens=16,
        messages=[{"role": "user", "content": "and these three"}],
    ) as s:
        s.until_done()

    def mine():
        found = [e for e in logs(gateway, limit=50) if e["model"] == model]
        return found if len(found) == 2 else None

    stream_entry, plain_entry = wait_for(mine)
    assert plain_entry["provider"] == "claude"
    assert plain_entry["metadata"]["input_tokens"] == 4
    assert plain_entry["metadata"]["output_tokens"] == 4
    assert plain_entry["metadata"]["credential_id"].startswith("claude-")
    assert plain_entry["metadata"]["stream"] is False
    assert stream_entry["metadata"]["stream"] is True
    assert stream_entry["metadata"]["input_tokens"] == 3
    assert stream_entry["metadata"]["output_tokens"] == 4
    assert stream_entry["metadata"]["ttfb_ms"] is not None
    assert stream_entry["path"] == "/v1/messages"
    by_provider = logs(gateway, "/v0/management/logs/provider/claude")
    assert {e["provider"] for e in by_provider} == {"claude"}
    r = httpx.delete(gateway.url + "/v0/management/logs", headers=MGMT)
    assert r.json()["deleted"] >= 2
    assert [e for e in logs(gateway, limit=50) if e["model"] == model] == []


def test_management_requires_key(gateway):
    assert httpx.get(gateway.url + "/v0/management/auth").status_code == 401
    assert (
        httpx.get(gateway.url + "/v0/management/auth", headers={"x-management-key": "nope"}).status_code
        == 401
    )
    r = httpx.get(gateway.url + "/v0/management/auth", headers={"x-management-key": MGMT_KEY})
    assert r.status_code == 200
    ids = {a["id"] for a in r.json()["auth_files"]}
    assert {"claude-a@example.com.json", "claude-b@example.com.json", "gemini-api-key[0]"} <= ids
    for secret in (*CLAUDE_TOKENS, CLAUDE_API_KEY, OPENAI_KEY, GEMINI_KEY, COMPAT_KEY):
        assert secret not in r.text
    assert httpx.get(gateway.url + "/v0/management/health", headers=MGMT).json()["status"] == "ok"


def test_health_routes_open(gateway):
    for path in ("/health", "/healthz", "/ready", "/live"):
        assert httpx.get(gateway.url + path).status_code == 200, path


# --- auth dir hot reload -------------------------------------------------------------


def test_hot_reload_added_and_removed_file(gateway, claude_up):
    client = claude_client(gateway)
    model = "hot/claude-sonnet-4-20250514"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model=model, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    path = gateway.write_auth(
        "claude-hot@example.com.json",
        {"type": "claude", "email": "hot@example.com", "access_token": "sk-ant-oat01-hot", "prefix": "hot"},
    )

    def served():
        try:
            client.messages.create(model=model, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
            return True
        except anthropic.NotFoundError:
            return False

    assert wait_for(served)
    assert claude_up.last.headers["authorization"] == "Bearer sk-ant-oat01-hot"
    path.unlink()
    assert wait_for(lambda: not served())


def test_corrupt_auth_file_left_intact(gateway):
    raw = b'{"type": "claude", "access_token": '
    path = gateway.auth_dir / "claude-broken.json"
    path.write_bytes(raw)
    assert wait_for(lambda: "claude-broken.json" in gateway.log())
    time.sleep(0.5)  # several more scans
    assert path.read_bytes() == raw
    assert httpx.get(gateway.url + "/health").status_code == 200
    r = httpx.get(gateway.url + "/v0/management/auth", headers=MGMT)
    assert "claude-broken.json" not in {a["id"] for a in r.json()["auth_files"]}
    path.unlink()


def test_delete_auth_moves_file_aside(gateway):
    gateway.write_auth("claude-gone@example.com.json", {"type": "claude", "access_token": "sk-ant-oat01-gone"})
    assert wait_for(
        lambda: "claude-gone@example.com.json"
        in {a["id"] for a in httpx.get(gateway.url + "/v0/management/auth", headers=MGMT).json()["auth_files"]}
    )
    r = httpx.delete(gateway.url + "/v0/management/auth/claude-gone@example.com.json", headers=MGMT)
    assert r.status_code == 200, r.text
    moved = gateway.auth_dir / r.json()["moved_to"]
    assert json.loads(moved.read_text())["access_token"] == "sk-ant-oat01-gone"
    assert not (gateway.auth_dir / "claude-gone@example.com.json").exists()
