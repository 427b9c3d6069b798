"""GitHub Copilot: the executor's request shape, and the login module against the fake."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from quotio_core.pool.credentials import Credential, credential_from_auth_file
from quotio_core.providers.login import InvalidGrant, LoginContext, LoginError, SlowDown
from quotio_core.providers import login_module
from quotio_core.providers.github_copilot import login
from quotio_core.providers import Call, executor_for, format_of, servable
from quotio_core.providers.github_copilot import call as executor
from quotio_core.providers import merge_upstreams
from tests.fakes.github_copilot import CHAT_HEADERS, FakeCopilot

UPSTREAMS = merge_upstreams(None)
TEXT = {"role": "user", "content": "hi"}
IMAGE = {
    "role": "user",
    "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ],
}
CALLED = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
RESULT = {"role": "tool", "tool_call_id": "call_1", "content": "42"}


def cred(secret: str = "tid=copilot;exp=1", data: dict | None = None, **kw) -> Credential:
    return Credential(
        id="github-copilot-octocat.json", provider="github-copilot", kind="oauth", source="file",
        secret=secret, data=data or {}, **kw,
    )


def call(c: Credential, body: dict | None = None, header_defaults: dict | None = None) -> Call:
    return Call(
        credential=c, upstreams=UPSTREAMS, client_headers={}, endpoint="chat", model="gpt-4.1",
        header_defaults=header_defaults or {}, body=body or {"model": "gpt-4.1", "messages": [TEXT]},
    )


# --- executor ---------------------------------------------------------------------------


def test_registry() -> None:
    c = cred()
    assert executor_for(c) is executor
    assert format_of(c) == "openai"
    assert servable(c)


def test_prepare_uses_the_exchanged_api_base_and_copilot_token() -> None:
    up = executor.prepare(call(cred(data={"api_base": "https://api.individual.githubcopilot.com"})))
    assert up.url == "https://api.individual.githubcopilot.com/chat/completions"
    assert up.headers["authorization"] == "Bearer tid=copilot;exp=1"
    assert up.secret_headers == ("authorization",)
    for name, value in CHAT_HEADERS.items():
        assert up.headers[name] == value
    uuid.UUID(up.headers["x-request-id"])
    assert "copilot-vision-request" not in up.headers


def test_prepare_falls_back_to_the_configured_base() -> None:
    assert executor.prepare(call(cred())).url == "https://api.githubcopilot.com/chat/completions"
    pinned = cred(data={"api_base": "https://api.business.githubcopilot.com"}, base_url="https://proxy.local")
    assert executor.prepare(call(pinned)).url == "https://proxy.local/chat/completions"


def test_request_ids_differ_per_request() -> None:
    ids = {executor.prepare(call(cred())).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("messages", "initiator"),
    [
        ([TEXT], "user"),
        ([TEXT, CALLED, RESULT], "agent"),
        ([TEXT, {"role": "assistant", "content": "Sure"}], "agent"),
        ([{"role": "system", "content": "be brief"}], "agent"),
        ([], "user"),
    ],
)
def test_initiator_follows_the_last_message(messages: list, initiator: str) -> None:
    up = executor.prepare(call(cred(), {"model": "m", "messages": messages}))
    assert up.headers["x-initiator"] == initiator


@pytest.mark.parametrize(
    ("messages", "vision"),
    [([TEXT], False), ([IMAGE], True), ([IMAGE, {"role": "assistant", "content": "a cat"}, TEXT], True)],
)
def test_vision_header_only_with_images(messages: list, vision: bool) -> None:
    up = executor.prepare(call(cred(), {"model": "m", "messages": messages}))
    assert up.headers.get("copilot-vision-request") == ("true" if vision else None)


def test_header_defaults_override_the_editor_identity() -> None:
    up = executor.prepare(call(cred(), header_defaults={"editor-version": "vscode/1.105.0"}))
    assert up.headers["editor-version"] == "vscode/1.105.0"
    assert up.headers["editor-plugin-version"] == CHAT_HEADERS["editor-plugin-version"]


def test_auth_file_as_copilot_writes_it() -> None:
    c = credential_from_auth_file(
        "github-copilot-octocat.json",
        {"type": "github-copilot", "access_token": "ghu_abc", "username": "octocat", "token_type": "bearer"},
    )
    assert (c.provider, c.kind, c.secret, c.email, c.expires_at) == ("github-copilot", "oauth", "ghu_abc", "octocat", None)


# --- login module -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCopilot]:
    with FakeCopilot() as f:
        yield f


@pytest.fixture(autouse=True)
def _fresh(fake: FakeCopilot) -> None:
    fake.clear()
    fake.pending_polls, fake.slow_down, fake.auto_approve = 1, True, True
    fake.slow_down_interval = True
    fake.unsubscribed.clear()
    fake.emails.clear()
    fake.chat_headers = dict(CHAT_HEADERS)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        yield client


def context(fake: FakeCopilot, http: httpx.AsyncClient, **options) -> LoginContext:
    urls = merge_upstreams({"github-copilot": fake.upstreams})["github-copilot"]
    return LoginContext(urls=urls, http=http, options=options)


def test_module_contract() -> None:
    assert login_module("github-copilot") is login
    assert login_module("copilot") is login
    assert login.FLOWS == ("device",)
    assert login.REFRESH_LEAD is None
    assert not hasattr(login, "refresh")


async def test_full_device_login(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    fake.emails["octocat"] = "octo@example.com"
    ctx = context(fake, http)
    start = await login.device_start(ctx)
    assert start.public()["user_code"] == start.user_code
    assert start.verification_uri == "https://github.com/login/device"
    assert start.interval == 5
    device_req = fake.on("/login/device/code")[-1]
    assert device_req.headers["accept"] == "application/json"
    assert fake.scopes[-1] == "read:user"

    assert await login.device_poll(ctx, start) is None  # pending
    with pytest.raises(SlowDown) as slow:
        await login.device_poll(ctx, start)
    assert slow.value.interval == 10
    data = await login.device_poll(ctx, start)

    assert data is not None
    assert data["type"] == "github-copilot"
    assert data["access_token"].startswith("ghu_")
    assert data["username"] == "octocat"
    assert data["email"] == "octo@example.com"
    assert data["scope"] == "read:user"
    assert login.file_name(data) == "github-copilot-octocat.json"
    poll = fake.on("/login/oauth/access_token")[-1]
    assert poll.headers["content-type"] == "application/x-www-form-urlencoded"
    user = fake.on("/user")[-1]
    assert user.headers["authorization"] == f"token {data['access_token']}"
    # The file works as a credential as written.
    assert credential_from_auth_file(login.file_name(data), data).secret == data["access_token"]


async def test_scope_is_configurable_and_email_optional(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    fake.pending_polls, fake.slow_down = 0, False
    ctx = context(fake, http, scope="read:user user:email")
    start = await login.device_start(ctx)
    data = await login.device_poll(ctx, start)
    assert fake.scopes[-1] == "read:user user:email"
    assert data is not None and "email" not in data


async def test_slow_down_without_an_interval_adds_five_seconds_each_time(
    fake: FakeCopilot, http: httpx.AsyncClient
) -> None:
    fake.pending_polls, fake.slow_down_interval = 0, False
    ctx = context(fake, http)
    start = await login.device_start(ctx)
    with pytest.raises(SlowDown) as first:
        await login.device_poll(ctx, start)
    fake.devices[start.device_code].slowed = False  # GitHub may say it again
    with pytest.raises(SlowDown) as second:
        await login.device_poll(ctx, start)
    assert (first.value.interval, second.value.interval) == (10, 15)


async def test_waits_for_approval_then_denied(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    fake.auto_approve, fake.pending_polls, fake.slow_down = False, 0, False
    ctx = context(fake, http)
    start = await login.device_start(ctx)
    assert await login.device_poll(ctx, start) is None
    assert await login.device_poll(ctx, start) is None
    fake.deny(start.user_code)
    with pytest.raises(LoginError) as e:
        await login.device_poll(ctx, start)
    assert e.value.code == "access_denied"


async def test_approved_later_under_another_account(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    fake.auto_approve, fake.pending_polls, fake.slow_down = False, 0, False
    ctx = context(fake, http)
    start = await login.device_start(ctx)
    assert await login.device_poll(ctx, start) is None
    fake.approve(start.user_code, account="hubot")
    data = await login.device_poll(ctx, start)
    assert data is not None and data["username"] == "hubot"


async def test_expired_code(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    ctx = context(fake, http)
    start = await login.device_start(ctx)
    fake.expire(start.user_code)
    with pytest.raises(LoginError) as e:
        await login.device_poll(ctx, start)
    assert e.value.code == "expired_token"


async def test_bearer_exchanges_the_github_token(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    ghu = fake.github_token()
    before = time.time()
    b = await login.bearer(context(fake, http), {"type": "github-copilot", "access_token": ghu})
    assert b.token in fake.copilot_tokens()
    assert b.extra == {"api_base": fake.api_base}
    # GitHub's refresh_in (1500 s) comes before expires_at - 5 min (1500 s) at the latest.
    assert before + 1500 - 1 <= b.expires_at <= time.time() + 1500
    req = fake.on("/copilot_internal/v2/token")[-1]
    assert req.headers["authorization"] == f"token {ghu}"
    assert req.headers["editor-version"] == CHAT_HEADERS["editor-version"]
    assert req.headers["editor-plugin-version"] == CHAT_HEADERS["editor-plugin-version"]
    assert ghu not in repr(b) and b.token not in repr(b)


async def test_bearer_uses_five_minutes_before_expiry_when_sooner(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    fake.token_ttl, fake.refresh_in = 600, 3000
    try:
        b = await login.bearer(context(fake, http), {"access_token": fake.github_token()})
    finally:
        fake.token_ttl, fake.refresh_in = 1800, 1500
    assert abs(b.expires_at - (time.time() + 300)) < 3


async def test_bearer_with_header_defaults(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    fake.chat_headers["editor-version"] = "vscode/1.105.0"
    ctx = context(fake, http, header_defaults={"Editor-Version": "vscode/1.105.0"})
    b = await login.bearer(ctx, {"access_token": fake.github_token()})
    assert b.token


async def test_bearer_without_subscription_needs_login(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    ghu = fake.github_token("nosub")
    fake.unsubscribed.add("nosub")
    with pytest.raises(InvalidGrant) as e:
        await login.bearer(context(fake, http), {"access_token": ghu})
    assert "No access to GitHub Copilot" in str(e.value)
    assert "403" in str(e.value)
    assert ghu not in str(e.value)


async def test_bearer_with_a_revoked_github_token(fake: FakeCopilot, http: httpx.AsyncClient) -> None:
    with pytest.raises(InvalidGrant) as e:
        await login.bearer(context(fake, http), {"access_token": "ghu_revoked"})
    assert "Bad credentials" in str(e.value)
    with pytest.raises(InvalidGrant):
        await login.bearer(context(fake, http), {"type": "github-copilot"})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"expires_at": 2000, "refresh_in": 1500}, 1500.0),
        ({"expires_at": 1600, "refresh_in": 1500}, 1300.0),
        ({"expires_at": 2000}, 1700.0),
        ({"refresh_in": 100}, 100.0),
        ({}, 1500.0),
    ],
)
def test_use_until(answer: dict, expected: float) -> None:
    assert login._use_until(answer, 0.0) == expected
