"""iFlow: the signed executor request, and the phone login + API key lookup against the fake."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from quotio_core.pool.credentials import Credential, credential_from_auth_file
from quotio_core.providers.login import AuthCodeStart, InvalidGrant, LoginContext, LoginError
from quotio_core.providers import login_module
from quotio_core.providers.iflow import login
from quotio_core.providers import Call, executor_for, format_of
from quotio_core.providers.iflow import call as executor
from quotio_core.providers import merge_upstreams
from tests.fakes.iflow import FakeIFlow

UPSTREAMS = merge_upstreams(None)
REDIRECT = "http://localhost:11451/oauth2callback"


def cred(secret: str = "sk-test-key", **kw) -> Credential:
    return Credential(id="iflow-a.json", provider="iflow", kind="oauth", source="file", secret=secret, **kw)


def call(c: Credential, header_defaults: dict | None = None) -> Call:
    return Call(
        credential=c, upstreams=UPSTREAMS, client_headers={}, endpoint="chat", model="kimi-k2",
        header_defaults=header_defaults or {},
    )


# --- executor ---------------------------------------------------------------------------


def test_signature_vector() -> None:
    # Independently computed: openssl dgst -sha256 -hmac sk-test-key.
    assert executor.signature(
        "sk-test-key", "iFlow-Cli", "session-00000000-0000-4000-8000-000000000000", "1700000000000"
    ) == "8bdcc1bb283ecbcdbe8bcf9fc6d5c955e7b6189ca24f0cfba2d97c38ffbd1e98"


def test_prepare_signs_each_request() -> None:
    assert executor_for(cred()) is executor and format_of(cred()) == "openai"
    before = int(time.time() * 1000)
    up = executor.prepare(call(cred()))
    after = int(time.time() * 1000)
    h = up.headers
    assert up.url == "https://apis.iflow.cn/v1/chat/completions"
    assert h["authorization"] == "Bearer sk-test-key"
    assert h["user-agent"] == "iFlow-Cli"
    assert re.fullmatch(r"session-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", h["session-id"])
    assert before <= int(h["x-iflow-timestamp"]) <= after
    message = f"iFlow-Cli:{h['session-id']}:{h['x-iflow-timestamp']}".encode()
    assert h["x-iflow-signature"] == hmac.new(b"sk-test-key", message, hashlib.sha256).hexdigest()
    assert up.secret_headers == ("authorization",)
    assert executor.prepare(call(cred())).headers["session-id"] != h["session-id"]


def test_overridden_user_agent_is_what_gets_signed() -> None:
    up = executor.prepare(call(cred(), {"user-agent": "iFlow-Cli/0.3"}))
    h = up.headers
    assert h["user-agent"] == "iFlow-Cli/0.3"
    assert h["x-iflow-signature"] == executor.signature(
        "sk-test-key", "iFlow-Cli/0.3", h["session-id"], h["x-iflow-timestamp"]
    )


def test_the_api_key_is_the_secret() -> None:
    c = credential_from_auth_file("iflow-a-1.json", {"type": "iflow", "access_token": "at", "api_key": "sk-k",
                                                      "expired": "2099-01-01T00:00:00Z"})
    assert c.secret == "sk-k"
    assert executor.prepare(call(c)).headers["authorization"] == "Bearer sk-k"


# --- login module -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeIFlow]:
    with FakeIFlow() as f:
        yield f


@pytest.fixture(autouse=True)
def _fresh(fake: FakeIFlow) -> None:
    fake.clear()
    fake.rotate_refresh = True
    fake.emails.clear()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        yield client


def context(fake: FakeIFlow, http: httpx.AsyncClient, **options) -> LoginContext:
    urls = merge_upstreams({"iflow": fake.upstreams})["iflow"]
    return LoginContext(urls=urls, http=http, redirect_uri=REDIRECT, options=options)


async def browse(http: httpx.AsyncClient, start: AuthCodeStart) -> dict[str, str]:
    """Be the browser: open the authorize URL and read where it sends us back."""
    resp = await http.get(start.url, follow_redirects=False)
    assert resp.status_code == 302, resp.text
    location = urlsplit(resp.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == start.redirect_uri
    return {k: v[-1] for k, v in parse_qs(location.query).items()}


async def logged_in(fake: FakeIFlow, http: httpx.AsyncClient) -> dict:
    ctx = context(fake, http)
    start = login.authorize(ctx)
    back = await browse(http, start)
    return await login.exchange(ctx, start, back["code"])


def test_module_contract() -> None:
    assert login_module("iflow") is login
    assert login.FLOWS == ("auth-code",)
    assert (login.CALLBACK_PORT, login.CALLBACK_PATH) == (11451, "/oauth2callback")
    assert login.REFRESH_LEAD == timedelta(hours=24)


def test_authorize_url(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    start = login.authorize(context(fake, http))
    url = urlsplit(start.url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fake.url}/oauth"
    q = parse_qs(url.query)
    assert q == {
        "loginMethod": ["phone"], "type": ["phone"], "redirect": [REDIRECT],
        "state": [start.state], "client_id": ["10009311001"],
    }
    assert start.verifier == ""  # iFlow's login has no PKCE
    assert login.authorize(context(fake, http)).state != start.state


async def test_full_login(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    ctx = context(fake, http)
    start = login.authorize(ctx)
    back = await browse(http, start)
    assert back["state"] == start.state
    data = await login.exchange(ctx, start, back["code"])

    assert data["type"] == "iflow"
    assert data["email"] == fake.default_account
    assert data["api_key"] == fake.api_key()
    assert data["access_token"] and data["refresh_token"]
    assert set(data) >= {"expired", "last_refresh", "token_type", "scope"}
    assert re.fullmatch(r"iflow-flow@example\.com-\d{10}\.json", login.file_name(data))
    token_req = fake.on("/oauth/token")[-1]
    assert token_req.headers["authorization"].startswith("Basic ")
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A11451%2Foauth2callback" in token_req.body.decode()
    info = fake.on("/api/oauth/getUserInfo")[-1]
    assert info.query == {"accessToken": data["access_token"]}
    c = credential_from_auth_file(login.file_name(data), data)
    assert c.secret == data["api_key"] and c.email == fake.default_account


async def test_phone_only_account(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    fake.emails[fake.default_account] = ""
    data = await logged_in(fake, http)
    assert data["email"] == "13800000000"


async def test_denied_login_comes_back_with_an_error(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    fake.deny_next()
    start = login.authorize(context(fake, http))
    back = await browse(http, start)
    assert back == {"error": "access_denied", "state": start.state}


async def test_a_code_is_good_once_and_for_its_redirect(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    ctx = context(fake, http)
    start = login.authorize(ctx)
    code = (await browse(http, start))["code"]
    elsewhere = AuthCodeStart(start.url, start.state, "", "http://localhost:9999/cb")
    with pytest.raises(InvalidGrant):
        await login.exchange(ctx, elsewhere, code)
    start = login.authorize(ctx)
    code = (await browse(http, start))["code"]
    await login.exchange(ctx, start, code)
    with pytest.raises(InvalidGrant):
        await login.exchange(ctx, start, code)


async def test_wrong_client_secret(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    ctx = context(fake, http, client_secret="not-the-secret")
    start = login.authorize(ctx)
    code = (await browse(http, start))["code"]
    with pytest.raises(LoginError) as e:
        await login.exchange(ctx, start, code)
    assert e.value.code == "invalid_client" and not isinstance(e.value, InvalidGrant)
    assert "not-the-secret" not in str(e.value)
    data = await logged_in(fake, http)
    with pytest.raises(LoginError) as e:
        await login.refresh(ctx, dict(data))
    assert not isinstance(e.value, InvalidGrant)


async def test_refresh_rotates_and_fetches_the_key_again(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    data = await logged_in(fake, http)
    ctx = context(fake, http)
    fake.clear()
    new = await login.refresh(ctx, dict(data))
    assert new["access_token"] != data["access_token"]
    assert new["refresh_token"] != data["refresh_token"]
    assert new["api_key"] == fake.api_key()
    assert fake.on("/api/oauth/getUserInfo")[-1].query == {"accessToken": new["access_token"]}
    body = fake.on("/oauth/token")[-1].body.decode()
    assert "grant_type=refresh_token" in body and "client_secret=" in body
    with pytest.raises(InvalidGrant):
        await login.refresh(ctx, dict(data))


async def test_refresh_keeps_the_old_refresh_token_when_none_comes_back(
    fake: FakeIFlow, http: httpx.AsyncClient
) -> None:
    data = await logged_in(fake, http)
    fake.rotate_refresh = False
    new = await login.refresh(context(fake, http), dict(data))
    assert new["refresh_token"] == data["refresh_token"]


async def test_refresh_of_a_revoked_token(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    data = await logged_in(fake, http)
    fake.revoke(data["refresh_token"])
    with pytest.raises(InvalidGrant):
        await login.refresh(context(fake, http), dict(data))


async def test_user_info_refused(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    with pytest.raises(LoginError) as e:
        await login._user_info(context(fake, http), "iflow-at-unknown")
    assert "iflow-at-unknown" not in str(e.value)


async def test_signed_request_is_accepted_by_the_fake(fake: FakeIFlow, http: httpx.AsyncClient) -> None:
    data = await logged_in(fake, http)
    up = executor.prepare(Call(
        credential=credential_from_auth_file("iflow-x.json", data),
        upstreams=merge_upstreams({"iflow": fake.upstreams}), client_headers={}, endpoint="chat", model="kimi-k2",
    ))
    body = {"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]}
    resp = await http.post(up.url, headers=dict(up.headers), json=body)
    assert resp.status_code == 200, resp.text
    forged = {**up.headers, "x-iflow-signature": "0" * 64}
    resp = await http.post(up.url, headers=forged, json=body)
    assert resp.status_code == 400 and "signature" in resp.json()["error"]["message"]
