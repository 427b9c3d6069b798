"""Qwen: the executor's request shape, and the device login with PKCE against the fake."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from quotio_core.pool.credentials import Credential, credential_from_auth_file
from quotio_core.providers.login import InvalidGrant, LoginContext, LoginError, SlowDown
from quotio_core.providers import login_module
from quotio_core.providers.qwen import login
from quotio_core.providers import Call, executor_for, format_of
from quotio_core.providers.qwen import call as executor
from quotio_core.providers import merge_upstreams
from tests.fakes.qwen import CHAT_HEADERS, FakeQwen

UPSTREAMS = merge_upstreams(None)


def cred(data: dict | None = None, **kw) -> Credential:
    return Credential(
        id="qwen-a.json", provider="qwen", kind="oauth", source="file", secret="qwen-token",
        data=data or {}, **kw,
    )


def call(c: Credential, header_defaults: dict | None = None) -> Call:
    return Call(
        credential=c, upstreams=UPSTREAMS, client_headers={}, endpoint="chat",
        model="qwen3-coder-plus", header_defaults=header_defaults or {},
    )


# --- executor ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_url", "base"),
    [
        ("portal.qwen.ai", "https://portal.qwen.ai/v1"),
        ("portal.qwen.ai/", "https://portal.qwen.ai/v1"),
        ("https://portal.qwen.ai/v1", "https://portal.qwen.ai/v1"),
        ("https://dashscope.aliyuncs.com/compatible-mode", "https://dashscope.aliyuncs.com/compatible-mode/v1"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
        ("  ", ""),
        ("", ""),
    ],
)
def test_resource_base(resource_url: str, base: str) -> None:
    assert executor.resource_base(resource_url) == base


def test_prepare_on_the_accounts_host() -> None:
    up = executor.prepare(call(cred({"resource_url": "portal.qwen.ai"})))
    assert executor_for(cred()) is executor and format_of(cred()) == "openai"
    assert up.url == "https://portal.qwen.ai/v1/chat/completions"
    assert up.headers["authorization"] == "Bearer qwen-token"
    for name, value in CHAT_HEADERS.items():
        assert up.headers[name] == value
    assert up.secret_headers == ("authorization",)


def test_prepare_without_resource_url_and_overrides() -> None:
    assert executor.prepare(call(cred())).url == "https://portal.qwen.ai/v1/chat/completions"
    pinned = cred({"resource_url": "portal.qwen.ai"}, base_url="http://127.0.0.1:9/v1")
    assert executor.prepare(call(pinned)).url == "http://127.0.0.1:9/v1/chat/completions"
    up = executor.prepare(call(cred(), {"user-agent": "QwenCode/0.20.0 (darwin; arm64)"}))
    assert up.headers["user-agent"] == "QwenCode/0.20.0 (darwin; arm64)"


# --- login module -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeQwen]:
    with FakeQwen() as f:
        yield f


@pytest.fixture(autouse=True)
def _fresh(fake: FakeQwen) -> None:
    fake.clear()
    fake.pending_polls, fake.slow_down, fake.auto_approve = 1, True, True
    fake.rotate_refresh = True
    fake.resource_url = None


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        yield client


def context(fake: FakeQwen, http: httpx.AsyncClient, **options) -> LoginContext:
    return LoginContext(urls=merge_upstreams({"qwen": fake.upstreams})["qwen"], http=http, options=options)


async def logged_in(fake: FakeQwen, http: httpx.AsyncClient, **options) -> dict:
    fake.pending_polls, fake.slow_down = 0, False
    ctx = context(fake, http, **options)
    data = await login.device_poll(ctx, await login.device_start(ctx))
    assert data is not None
    return data


def test_module_contract() -> None:
    assert login_module("qwen") is login
    assert login.FLOWS == ("device",)
    assert login.REFRESH_LEAD == timedelta(minutes=20)


def test_verifier_is_32_bytes_base64url() -> None:
    v = login.new_verifier()
    assert len(base64.urlsafe_b64decode(v + "=")) == 32
    assert login.new_verifier() != v


async def test_full_device_login_with_pkce(fake: FakeQwen, http: httpx.AsyncClient) -> None:
    ctx = context(fake, http, email="me@example.com")
    start = await login.device_start(ctx)
    sent = fake.on("/api/v1/oauth2/device/code")[-1]
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    verifier = start.extra["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert fake.devices[start.device_code].challenge == challenge
    assert start.interval == 5  # Qwen sends none: the documented 5 s
    assert start.verification_uri_complete.endswith(f"user_code={start.user_code}&client=qwen-code")

    assert await login.device_poll(ctx, start) is None
    with pytest.raises(SlowDown) as slow:
        await login.device_poll(ctx, start)
    assert slow.value.interval == 7.5
    data = await login.device_poll(ctx, start)

    assert data is not None
    assert set(data) == {"type", "access_token", "refresh_token", "resource_url", "expired", "last_refresh", "email"}
    assert data["type"] == "qwen"
    assert data["resource_url"] == fake.url
    assert data["email"] == "me@example.com"
    expired = datetime.fromisoformat(data["expired"])
    assert abs(expired - (datetime.now(UTC) + timedelta(seconds=fake.access_ttl))) < timedelta(seconds=5)
    assert login.file_name(data) == "qwen-me@example.com.json"
    c = credential_from_auth_file(login.file_name(data), data)
    assert c.secret == data["access_token"] and c.provider == "qwen"


async def test_slow_down_compounds_up_to_ten_seconds(fake: FakeQwen, http: httpx.AsyncClient) -> None:
    fake.pending_polls = 0
    ctx = context(fake, http)
    start = await login.device_start(ctx)
    seen = []
    for _ in range(3):
        fake.devices[start.device_code].slowed = False
        with pytest.raises(SlowDown) as slow:
            await login.device_poll(ctx, start)
        seen.append(slow.value.interval)
    assert seen == [7.5, 10.0, 10.0]


async def test_wrong_verifier_is_refused(fake: FakeQwen, http: httpx.AsyncClient) -> None:
    ctx = context(fake, http)
    start = await login.device_start(ctx)
    forged = type(start)(**{**start.__dict__, "extra": {**start.extra, "code_verifier": "x" * 43}})
    with pytest.raises(LoginError) as e:
        await login.device_poll(ctx, forged)
    assert "PKCE" in str(e.value)


@pytest.mark.parametrize("outcome", ["expired_token", "access_denied"])
async def test_fatal_outcomes(fake: FakeQwen, http: httpx.AsyncClient, outcome: str) -> None:
    fake.pending_polls, fake.slow_down = 0, False
    ctx = context(fake, http)
    start = await login.device_start(ctx)
    (fake.expire if outcome == "expired_token" else fake.deny)(start.user_code)
    with pytest.raises(LoginError) as e:
        await login.device_poll(ctx, start)
    assert e.value.code == outcome


async def test_file_name_without_email(fake: FakeQwen, http: httpx.AsyncClient) -> None:
    data = await logged_in(fake, http)
    assert data["email"] == ""
    name = login.file_name(data)
    assert name.startswith("qwen-") and name.endswith(".json") and data["access_token"] not in name


async def test_refresh_rotates(fake: FakeQwen, http: httpx.AsyncClient) -> None:
    data = await logged_in(fake, http, email="r@example.com")
    data["note"] = "kept"
    ctx = context(fake, http)
    new = await login.refresh(ctx, dict(data))
    assert new["access_token"] != data["access_token"]
    assert new["refresh_token"] != data["refresh_token"]
    assert (new["email"], new["resource_url"], new["note"]) == ("r@example.com", fake.url, "kept")
    sent = fake.on("/api/v1/oauth2/token")[-1]
    assert "grant_type=refresh_token" in sent.body.decode()
    assert f"client_id={login.CLIENT_ID}" in sent.body.decode()
    with pytest.raises(InvalidGrant) as e:
        await login.refresh(ctx, dict(data))  # the old refresh token is dead now
    assert data["refresh_token"] not in str(e.value)


async def test_refresh_keeps_the_old_refresh_token_when_none_comes_back(
    fake: FakeQwen, http: httpx.AsyncClient
) -> None:
    data = await logged_in(fake, http)
    fake.rotate_refresh = False
    new = await login.refresh(context(fake, http), dict(data))
    assert new["refresh_token"] == data["refresh_token"]
    assert new["access_token"] != data["access_token"]


async def test_refresh_of_a_revoked_token(fake: FakeQwen, http: httpx.AsyncClient) -> None:
    data = await logged_in(fake, http)
    fake.revoke(data["refresh_token"])
    with pytest.raises(InvalidGrant):
        await login.refresh(context(fake, http), dict(data))
    with pytest.raises(InvalidGrant):
        await login.refresh(context(fake, http), {"type": "qwen"})


async def test_access_token_works_on_the_chat_api(fake: FakeQwen, http: httpx.AsyncClient) -> None:
    data = await logged_in(fake, http)
    c = credential_from_auth_file("qwen-x.json", data)
    up = executor.prepare(call(c))
    resp = await http.post(up.url, headers=dict(up.headers), json={"model": "qwen3-coder-plus", "messages": [
        {"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"] == "Hello from Qwen fake"
