"""Kiro login (AWS Builder ID device flow) and refresh, against the Kiro fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from quotio_core.pool.credentials import credential_from_auth_file
from quotio_core.providers.login import InvalidGrant, LoginContext, LoginError, SlowDown
from quotio_core.providers import login_module
from quotio_core.providers.kiro import login
from quotio_core.providers import Call
from quotio_core.providers.kiro import call as executor
from quotio_core.providers import DEFAULT_UPSTREAMS, merge_upstreams
from tests.fakes.kiro import FakeKiro


@pytest.fixture
def fake() -> Iterator[FakeKiro]:
    with FakeKiro() as f:
        yield f


@pytest.fixture
async def ctx(fake) -> AsyncIterator[LoginContext]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield LoginContext(urls=merge_upstreams({"kiro": fake.upstreams})["kiro"], http=http)


async def _login(ctx: LoginContext) -> tuple[dict, list[str]]:
    start = await login.device_start(ctx)
    seen = []
    for _ in range(10):
        try:
            data = await login.device_poll(ctx, start)
        except SlowDown as e:
            seen.append(f"slow_down:{e.interval}")
            continue
        if data is not None:
            return data, seen
        seen.append("pending")
    raise AssertionError(f"no token after {seen}")


def test_registered_and_contract():
    assert login_module("kiro") is login
    assert login_module("kiro-aws") is login
    assert login.FLOWS == ("device",)
    assert login.REFRESH_LEAD == timedelta(minutes=5)
    assert DEFAULT_UPSTREAMS["kiro"]["oidc-url"] == "https://oidc.{region}.amazonaws.com"


async def test_builder_id_login_end_to_end(fake, ctx):
    data, seen = await _login(ctx)
    assert seen == ["pending", "pending", "slow_down:6.0"]
    assert data["type"] == "kiro" and data["authMethod"] == "builder-id"
    assert data["region"] == "us-east-1" and "startUrl" not in data
    assert fake.token_valid(data["accessToken"]) and fake.refresh_valid(data["refreshToken"])
    assert data["clientId"].startswith("kiro-client-") and data["clientSecret"]
    expires = datetime.fromisoformat(data["expiresAt"])
    assert timedelta(minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=1)
    # The requests the login made, in AWS SSO-OIDC's JSON shapes.
    register, device, *polls = [r for r in fake.requests]
    assert (register.path, device.path) == ("/client/register", "/device_authorization")
    assert register.json == {"clientName": "Kiro IDE", "clientType": "public", "scopes": list(login.SCOPES)}
    assert device.json == {"clientId": data["clientId"], "clientSecret": data["clientSecret"],
                           "startUrl": "https://view.awsapps.com/start"}
    assert polls[0].json["grantType"] == "urn:ietf:params:oauth:grant-type:device_code"
    assert all(r.headers["content-type"] == "application/json" for r in fake.requests)
    # The written file is a working credential for the executor, and names itself stably.
    cred = credential_from_auth_file(login.file_name(data), data)
    assert cred.secret == data["accessToken"] and not cred.is_expired
    assert login.file_name(data).startswith("kiro-builder-id-") and login.file_name(data).endswith(".json")
    refreshed = await login.refresh(ctx, data)
    assert login.file_name(refreshed) == login.file_name(data)


async def test_device_start_shape(fake, ctx):
    start = await login.device_start(ctx)
    public = start.public()
    assert public["user_code"] == start.user_code and public["interval"] == 1
    assert public["verification_uri_complete"].endswith(f"user_code={start.user_code}")
    assert "client_secret" not in json.dumps(public)  # the registered client stays server side


async def test_waits_for_approval_then_denial(fake, ctx):
    fake.auto_approve, fake.pending_polls, fake.slow_down = False, 0, False
    start = await login.device_start(ctx)
    assert await login.device_poll(ctx, start) is None
    fake.approve(start.user_code)
    assert (await login.device_poll(ctx, start))["accessToken"]
    denied = await login.device_start(ctx)
    fake.deny(denied.user_code)
    with pytest.raises(LoginError) as e:
        await login.device_poll(ctx, denied)
    assert e.value.code == "access_denied"


async def test_expired_device_code(fake, ctx):
    start = await login.device_start(ctx)
    fake.expire(start.user_code)
    with pytest.raises(LoginError) as e:
        await login.device_poll(ctx, start)
    assert e.value.code == "expired_token" and "expired" in str(e.value)


async def test_idc_login_uses_the_start_url_and_region(fake):
    fake.start_url = "https://my-org.awsapps.com/start"
    fake.pending_polls, fake.slow_down = 0, False
    async with httpx.AsyncClient(trust_env=False) as http:
        ctx = LoginContext(urls=fake.upstreams, http=http,
                           options={"start_url": fake.start_url, "region": "eu-west-1"})
        data, _ = await _login(ctx)
    assert (data["authMethod"], data["region"], data["startUrl"]) == ("idc", "eu-west-1", fake.start_url)


async def test_refresh_rotates_and_the_old_token_is_dead(fake, ctx):
    data, _ = await _login(ctx)
    new = await login.refresh(ctx, data)
    assert new["accessToken"] != data["accessToken"] and new["refreshToken"] != data["refreshToken"]
    assert fake.token_valid(new["accessToken"]) and not fake.refresh_valid(data["refreshToken"])
    assert new["clientId"] == data["clientId"] and new["last_refresh"]
    body = fake.last.json
    assert body == {"clientId": data["clientId"], "clientSecret": data["clientSecret"],
                    "refreshToken": data["refreshToken"], "grantType": "refresh_token"}
    with pytest.raises(InvalidGrant):
        await login.refresh(ctx, data)


async def test_refresh_keeps_the_refresh_token_when_the_answer_has_none(fake, ctx):
    data, _ = await _login(ctx)
    fake.rotate_refresh = False
    new = await login.refresh(ctx, data)
    assert new["refreshToken"] == data["refreshToken"]
    assert new["accessToken"] != data["accessToken"]
    assert (await login.refresh(ctx, new))["refreshToken"] == data["refreshToken"]


async def test_revoked_or_missing_refresh_token(fake, ctx):
    data, _ = await _login(ctx)
    fake.revoke(data["refreshToken"])
    with pytest.raises(InvalidGrant):
        await login.refresh(ctx, data)
    with pytest.raises(LoginError) as e:
        await login.refresh(ctx, {"type": "kiro", "authMethod": "builder-id"})
    assert e.value.code == "invalid_grant"


async def test_social_refresh_learns_the_profile_arn(fake, ctx):
    fake.add_social_refresh_token("social-rt-1")
    old = {"type": "kiro", "accessToken": "old", "refreshToken": "social-rt-1", "authMethod": "social",
           "expiresAt": "2020-01-01T00:00:00Z", "email": "me@example.com"}
    new = await login.refresh(ctx, old)
    assert fake.last.path == "/refreshToken" and fake.last.json == {"refreshToken": "social-rt-1"}
    assert fake.last.headers["user-agent"].startswith("KiroIDE-")
    assert new["profileArn"] == fake.profile_arn and new["refreshToken"] != "social-rt-1"
    assert new["email"] == "me@example.com"
    assert login.file_name(new) == "kiro-social-me@example.com.json"
    # The refreshed social token works, with the profile ARN the API wants for it.
    cred = credential_from_auth_file("kiro-social.json", new)
    call = Call(cred, {"kiro": fake.upstreams}, {}, "generateAssistantResponse", "claude-sonnet-4-5")
    up = executor.prepare(call)
    body = executor.wrap({"conversationState": {
        "chatTriggerType": "MANUAL", "conversationId": "c",
        "currentMessage": {"userInputMessage": {"content": "hi", "modelId": "x", "origin": "AI_EDITOR"}}}}, call)
    r = await ctx.http.post(up.url, headers=dict(up.headers), content=json.dumps(body))
    assert r.status_code == 200, r.text
    with pytest.raises(InvalidGrant):
        await login.refresh(ctx, old)  # rotated: the old one is gone


async def test_snake_case_files_are_refreshed_in_their_own_spelling(fake, ctx):
    data, _ = await _login(ctx)
    snake = {"type": "kiro", "access_token": data["accessToken"], "refresh_token": data["refreshToken"],
             "expires_at": data["expiresAt"], "auth_method": "IdC", "client_id": data["clientId"],
             "client_secret": data["clientSecret"], "region": "us-east-1"}
    new = await login.refresh(ctx, snake)
    assert set(new) - {"last_refresh"} == set(snake)
    assert new["access_token"] != snake["access_token"]
    assert credential_from_auth_file("f.json", new).secret == new["access_token"]


async def test_upstream_trouble_is_not_invalid_grant(fake):
    async with httpx.AsyncClient(trust_env=False) as http:
        ctx = LoginContext(urls={**fake.upstreams, "oidc-url": "http://127.0.0.1:9"}, http=http)
        with pytest.raises(LoginError) as e:
            await login.refresh(ctx, {"refreshToken": "rt-secret-1", "clientId": "c", "clientSecret": "cs-secret-1"})
    assert not isinstance(e.value, InvalidGrant)
    assert "cannot reach" in str(e.value)
    assert "secret" not in str(e.value)


def test_file_names():
    assert login.file_name({"authMethod": "builder-id", "clientId": "abc"}).startswith("kiro-builder-id-")
    assert login.file_name({"auth_method": "Social", "email": "a@b.c"}) == "kiro-social-a@b.c.json"
    with_arn = {"authMethod": "social", "profileArn": "arn:1", "refreshToken": "x"}
    assert login.file_name(with_arn) == login.file_name({**with_arn, "refreshToken": "y"})
