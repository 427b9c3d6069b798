"""Qwen, iFlow and GitHub Copilot accounts serving the official SDKs through the real mitmdump.

Each account is an auth file as its login writes it; every upstream URL
points at that provider's fake, which checks the exact headers (DashScope's,
iFlow's signature, Copilot's editor identity) and answers in OpenAI Chat
format. Anthropic clients go through translation.

Copilot requests carry the token the exchange returned, which needs the
gateway's token keeper (it calls the login module's `bearer`); those tests
run where the keeper exists.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import uuid
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.fakes.github_copilot import CHAT_HEADERS as COPILOT_HEADERS
from tests.fakes.github_copilot import FakeCopilot
from tests.fakes.iflow import FakeIFlow
from tests.fakes.oauth_server import OAuthFake
from tests.fakes.qwen import FakeQwen
from tests.fakes.upstreams import Captured
from tests.gateway_proc import GatewayProcess, start_gateway

KEY = "e2e-oauth-chat-key-0123456789"
QWEN_FILE = "qwen-q@example.com.json"
IFLOW_FILE = "iflow-flow@example.com-1735689600.json"
QWEN_UA = "QwenCode/0.15.0 (linux; x64)"
NEEDS_KEEPER = pytest.mark.skipif(
    importlib.util.find_spec("quotio_core.providers.login.keeper") is None,
    reason="the token keeper that calls bearer() is not on this branch yet",
)
# provider -> (model the client asks for, the model the upstream gets)
MODELS = {
    "qwen": ("qwen3-coder-plus", "qwen3-coder-plus"),
    "iflow": ("kimi-k2", "kimi-k2"),
    "github-copilot": ("gpt-4.1", "gpt-4.1"),
}
REPLIES = {
    "qwen": "Hello from Qwen fake",
    "iflow": "Hello from iFlow fake",
    "github-copilot": "Hello from Copilot fake",
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, OAuthFake]]:
    ups: dict[str, OAuthFake] = {"qwen": FakeQwen(), "iflow": FakeIFlow(), "github-copilot": FakeCopilot()}
    for up in ups.values():
        up.start()
    ups["qwen"].chat_headers["user-agent"] = QWEN_UA
    yield ups
    for up in ups.values():
        up.stop()


@pytest.fixture(scope="module")
def accounts(fakes) -> dict[str, dict]:
    qwen, iflow, copilot = fakes["qwen"], fakes["iflow"], fakes["github-copilot"]
    q_at, q_rt = qwen.tokens.issue("q@example.com", 3600)
    i_at, i_rt = iflow.tokens.issue(iflow.default_account, 3600)
    return {
        QWEN_FILE: {
            "type": "qwen", "email": "q@example.com", "access_token": q_at, "refresh_token": q_rt,
            "resource_url": qwen.url, "expired": "2099-01-01T00:00:00Z", "last_refresh": "2025-01-01T00:00:00Z",
        },
        IFLOW_FILE: {
            "type": "iflow", "email": iflow.default_account, "access_token": i_at, "refresh_token": i_rt,
            "api_key": iflow.api_key(), "expired": "2099-01-01T00:00:00Z", "last_refresh": "2025-01-01T00:00:00Z",
        },
        "github-copilot-octocat.json": {
            "type": "github-copilot", "access_token": copilot.github_token(), "username": "octocat",
            "token_type": "bearer", "scope": "read:user",
        },
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, fakes, accounts) -> Iterator[GatewayProcess]:
    config = {
        "api-keys": [KEY],
        "upstreams": {name: fake.upstreams for name, fake in fakes.items()},
        "header-defaults": {"qwen": {"User-Agent": QWEN_UA}},
    }
    gateway = start_gateway(tmp_path_factory.mktemp("oauth-chat"), config, auth_files=accounts, confdir=confdir)
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _clear(fakes) -> None:
    for fake in fakes.values():
        fake.clear()


def ask(gw: GatewayProcess, client: str, model: str, stream: bool, messages: list | None = None) -> str:
    messages = messages or [{"role": "user", "content": "hello there"}]
    if client == "openai":
        oa = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
        if stream:
            chunks = oa.chat.completions.create(model=model, messages=messages, stream=True)
            return "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
        return oa.chat.completions.create(model=model, messages=messages).choices[0].message.content or ""
    an = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)
    if stream:
        with an.messages.stream(model=model, max_tokens=64, messages=messages) as s:
            msg = s.get_final_message()
    else:
        msg = an.messages.create(model=model, max_tokens=64, messages=messages)
    return "".join(b.text for b in msg.content if b.type == "text")


def current(gw: GatewayProcess, name: str) -> dict:
    """An auth file as it is now (a refresh rewrites it)."""
    return json.loads((gw.auth_dir / name).read_text())


def chats(fake: OAuthFake) -> list[Captured]:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


def check_common(req: Captured, upstream_model: str, stream: bool) -> None:
    assert req.json["model"] == upstream_model
    assert bool(req.json.get("stream")) is stream
    assert req.json["messages"][-1]["role"] == "user"
    assert KEY not in " ".join(req.headers.values())  # the client's key stays here
    assert "x-api-key" not in req.headers


CASES = [(c, s) for c in ("openai", "anthropic") for s in (False, True)]
IDS = [f"{c}-{'stream' if s else 'json'}" for c, s in CASES]


@pytest.mark.parametrize(("client", "stream"), CASES, ids=IDS)
def test_qwen_account(gw, fakes, client: str, stream: bool) -> None:
    fake = fakes["qwen"]
    assert ask(gw, client, MODELS["qwen"][0], stream) == REPLIES["qwen"]
    [req] = chats(fake)
    check_common(req, MODELS["qwen"][1], stream)
    assert req.path == "/v1/chat/completions"  # on the account's resource_url
    assert req.headers["authorization"] == f"Bearer {current(gw, QWEN_FILE)['access_token']}"
    assert req.headers["x-dashscope-authtype"] == "qwen-oauth"
    assert req.headers["x-dashscope-cachecontrol"] == "enable"
    assert req.headers["user-agent"] == QWEN_UA  # from header-defaults


@pytest.mark.parametrize(("client", "stream"), CASES, ids=IDS)
def test_iflow_account(gw, fakes, client: str, stream: bool) -> None:
    fake = fakes["iflow"]
    assert ask(gw, client, MODELS["iflow"][0], stream) == REPLIES["iflow"]
    [req] = chats(fake)
    check_common(req, MODELS["iflow"][1], stream)
    key = fake.api_key()
    h = req.headers
    assert req.path == "/v1/chat/completions"
    assert h["authorization"] == f"Bearer {key}"
    assert h["user-agent"] == "iFlow-Cli"
    uuid.UUID(h["session-id"].removeprefix("session-"))
    message = f"iFlow-Cli:{h['session-id']}:{h['x-iflow-timestamp']}".encode()
    assert h["x-iflow-signature"] == hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_iflow_by_provider_head(gw, fakes) -> None:
    assert ask(gw, "openai", "iflow/glm-4.6", False) == REPLIES["iflow"]
    [req] = chats(fakes["iflow"])
    assert req.json["model"] == "glm-4.6"


@NEEDS_KEEPER
@pytest.mark.parametrize(("client", "stream"), CASES, ids=IDS)
def test_copilot_account(gw, fakes, client: str, stream: bool) -> None:
    fake = fakes["github-copilot"]
    assert ask(gw, client, MODELS["github-copilot"][0], stream) == REPLIES["github-copilot"]
    [req] = chats(fake)
    check_common(req, MODELS["github-copilot"][1], stream)
    assert req.path == "/api/chat/completions"  # the exchange's endpoints.api
    token = req.headers["authorization"].removeprefix("Bearer ")
    assert token in fake.copilot_tokens()
    for name, value in COPILOT_HEADERS.items():
        assert req.headers[name] == value
    assert req.headers["x-initiator"] == "user"
    uuid.UUID(req.headers["x-request-id"])


@NEEDS_KEEPER
def test_copilot_token_is_exchanged_once_and_reused(gw, fakes) -> None:
    fake = fakes["github-copilot"]
    for client in ("openai", "anthropic", "openai"):
        assert ask(gw, client, "github-copilot/claude-sonnet-4.5", False) == REPLIES["github-copilot"]
    tokens = {r.headers["authorization"] for r in chats(fake)}
    assert len(tokens) == 1
    assert fake.exchanges == 1  # over this whole module: the keeper caches the token
    assert [r.json["model"] for r in chats(fake)] == ["claude-sonnet-4.5"] * 3


@NEEDS_KEEPER
def test_copilot_agent_turn_and_vision(gw, fakes) -> None:
    fake = fakes["github-copilot"]
    agent_turn = [
        {"role": "user", "content": "what is 6*7"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "calc", "arguments": "{\"x\":\"6*7\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    oa = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    tools = [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]
    oa.chat.completions.create(model="gpt-4.1", messages=agent_turn, tools=tools)
    image = [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]}]
    oa.chat.completions.create(model="gpt-4.1", messages=image)
    first, second = chats(fake)
    assert first.headers["x-initiator"] == "agent"
    assert "copilot-vision-request" not in first.headers
    assert second.headers["x-initiator"] == "user"
    assert second.headers["copilot-vision-request"] == "true"


# --- a 401 from the upstream: one new token, one retry (the token keeper's job) ------------


def ask_once(gw: GatewayProcess, model: str) -> str:
    oa = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    reply = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello there"}])
    return reply.choices[0].message.content or ""


@NEEDS_KEEPER
def test_copilot_401_gets_a_new_exchange(gw, fakes) -> None:
    fake = fakes["github-copilot"]
    assert ask_once(gw, "gpt-4.1") == REPLIES["github-copilot"]
    [first] = chats(fake)
    old = first.headers["authorization"].removeprefix("Bearer ")
    exchanges = fake.exchanges
    fake.reject_once(old)
    assert ask_once(gw, "gpt-4.1") == REPLIES["github-copilot"]
    assert fake.exchanges == exchanges + 1
    refused, retried = chats(fake)[1:]
    assert refused.headers["authorization"] == f"Bearer {old}"
    assert retried.headers["authorization"] not in (f"Bearer {old}", "")
    assert retried.headers["authorization"].removeprefix("Bearer ") in fake.copilot_tokens()


@NEEDS_KEEPER
def test_qwen_401_is_recovered_by_one_refresh(gw, fakes) -> None:
    fake = fakes["qwen"]
    old = current(gw, QWEN_FILE)
    fake.reject_once(old["access_token"])
    refreshed = fake.tokens.refreshed
    assert ask_once(gw, "qwen3-coder-plus") == REPLIES["qwen"]
    new = current(gw, QWEN_FILE)
    assert fake.tokens.refreshed == refreshed + 1
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]  # rotated, and written back
    assert new["resource_url"] == fake.url
    assert [r.headers["authorization"] for r in chats(fake)] == [
        f"Bearer {old['access_token']}", f"Bearer {new['access_token']}"]


@NEEDS_KEEPER
def test_iflow_401_refreshes_and_fetches_the_key_again(gw, fakes) -> None:
    fake = fakes["iflow"]
    old = current(gw, IFLOW_FILE)
    fake.reject_once(old["api_key"])
    assert ask_once(gw, "kimi-k2") == REPLIES["iflow"]
    new = current(gw, IFLOW_FILE)
    assert new["access_token"] != old["access_token"]
    assert new["api_key"] == fake.api_key()
    assert fake.on("/api/oauth/getUserInfo")[-1].query == {"accessToken": new["access_token"]}
    assert len(chats(fake)) == 2
