"""Logins and refresh for Claude, Codex and Gemini against the fake authorization server.

These drive quotio_core.oauth (sessions, keeper, provider modules) directly;
tests/test_oauth_e2e.py does the same through the real gateway and CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from quotio_core.pool.authstore import AuthStore
from quotio_core.config import load_config
from quotio_core.providers import login_module
from quotio_core.providers.login.keeper import RefreshFailed, TokenKeeper
from quotio_core.providers.login.sessions import LoginSessions
from tests.fakes.oauth import CLAUDE_CLIENT, CODEX_CLIENT, GOOGLE_CLIENT, FakeAuthServer, upstream_overrides
from tests.fakes.upstreams import FakeUpstream


@pytest.fixture(scope="module")
def auth_server():
    with FakeAuthServer(CLAUDE_CLIENT, CODEX_CLIENT, GOOGLE_CLIENT) as fake:
        yield fake


@pytest.fixture(autouse=True)
def _reset_auth_server(auth_server):
    auth_server.rotate, auth_server.omit_refresh_token, auth_server.deny_next = True, False, False
    auth_server.device_auto_approve_after = None
    auth_server.expires_in = 3600
    yield


@pytest.fixture(scope="module")
def code_assist():
    with FakeUpstream("Hello from Code Assist") as fake:
        yield fake


def make_config(tmp_path: Path, auth_server: FakeAuthServer, code_assist: FakeUpstream | None = None, **oauth):
    ups = upstream_overrides(auth_server)
    if code_assist is not None:
        ups["gemini"]["base-url"] = code_assist.url
    cfg = {"auth-dir": str(tmp_path / "auth"), "upstreams": ups,
           "oauth": {"callback-ports": {"claude": 0, "codex": 0, "gemini": 0}, "poll-seconds": 0.05, **oauth}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(env={"QUOTIO_CONFIG_DIR": str(tmp_path)}, overrides={"config_path": str(path)})


def sessions_for(config, **kw) -> tuple[LoginSessions, AuthStore]:
    store = AuthStore(config)
    oauth = config.file.oauth
    return LoginSessions(config, store, callback_ports=oauth.callback_ports, timeout=kw.get("timeout", 10)), store


async def play_browser(url: str) -> httpx.Response:
    """What the user's browser does: open the URL, follow the redirect to the callback."""
    async with httpx.AsyncClient(follow_redirects=True, trust_env=False) as browser:
        return await browser.get(url)


@pytest.mark.parametrize(
    ("provider", "email"),
    [("claude", "claude-user@example.com"), ("codex", "codex-user@example.com"), ("gemini", "gemini-user@example.com")],
)
async def test_auth_code_login_writes_cliproxyapi_file(tmp_path, auth_server, code_assist, provider, email):
    code_assist.code_assist_onboarded, code_assist.onboard_polls_left = False, 1
    config = make_config(tmp_path, auth_server, code_assist)
    logins, store = sessions_for(config)
    try:
        session = await logins.start(provider)
        assert session.status == "wait" and f"state={session.state}" in session.auth_url
        page = await play_browser(session.auth_url)
        assert page.status_code == 200, page.text
        assert "Login complete" in page.text
        await asyncio.wait_for(logins.wait(session), 5)
    finally:
        await logins.aclose()
    assert session.status == "ok", session.error
    assert session.email == email
    path = config.auth_dir / session.file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["type"] == provider and data["email"] == email
    cred = store.get(session.file)
    assert cred is not None and cred.status == "ready"
    assert cred.secret in auth_server.valid_access_tokens
    if provider == "claude":
        assert session.file == "claude-claude-user@example.com.json"
        assert data["organization_uuid"] == "org-uuid-1" and data["refresh_token"].startswith("rt-")
    elif provider == "codex":
        assert data["account_id"] == "acct-fake-123" and data["id_token"]
        assert session.file.startswith("codex-") and session.file.endswith("-codex-user@example.com-plus.json")
    else:
        # Onboarded through Code Assist: loadCodeAssist said no tier, onboardUser gave the project.
        assert data["project_id"] == "fake-project-123" and data["auto"] is True
        assert data["token"]["refresh_token"].startswith("rt-")
        assert session.file == "gemini-gemini-user@example.com-fake-project-123.json"


async def test_callback_with_unknown_state_is_refused_and_login_stays_pending(tmp_path, auth_server):
    config = make_config(tmp_path, auth_server)
    logins, _ = sessions_for(config)
    try:
        session = await logins.start("claude")
        forged = session.auth_url.replace(session.state, "forged-state")
        page = await play_browser(forged)
        assert page.status_code == 400 and "unknown or has expired" in page.text
        assert session.status == "wait"
        # A request to another path on the listener gets nothing.
        async with httpx.AsyncClient(trust_env=False) as c:
            r = await c.get(f"http://localhost:{session.port}/other")
        assert r.status_code == 404
    finally:
        await logins.aclose()


async def test_denied_login_reports_error(tmp_path, auth_server):
    config = make_config(tmp_path, auth_server)
    logins, _ = sessions_for(config)
    auth_server.deny_next = True
    try:
        session = await logins.start("codex")
        page = await play_browser(session.auth_url)
        assert page.status_code == 400
        assert session.status == "error" and "access_denied" in session.error
    finally:
        await logins.aclose()
    assert not list(config.auth_dir.glob("*.json")) if config.auth_dir.exists() else True


async def test_pending_login_times_out_and_frees_its_port(tmp_path, auth_server):
    config = make_config(tmp_path, auth_server)
    store = AuthStore(config)
    logins = LoginSessions(config, store, callback_ports={"claude": 0}, timeout=0.3)
    try:
        session = await logins.start("claude")
        await asyncio.wait_for(logins.wait(session), 3)
        assert session.status == "error" and "within" in session.error
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(trust_env=False) as c:
                await c.get(f"http://127.0.0.1:{session.port}/callback")
        # Still answers after completion, for late status polls.
        assert logins.get(session.state) is session
    finally:
        await logins.aclose()


async def test_codex_device_login(tmp_path, auth_server):
    config = make_config(tmp_path, auth_server)
    logins, store = sessions_for(config)
    try:
        session = await logins.start("codex", "device")
        assert session.device.user_code and session.status == "wait"
        await asyncio.sleep(1.3)  # at least one poll while pending
        assert session.status == "wait"
        auth_server.approve(session.device.user_code)
        await asyncio.wait_for(logins.wait(session), 5)
    finally:
        await logins.aclose()
    assert session.status == "ok", session.error
    assert store.get(session.file).data["account_id"] == "acct-fake-123"


# --- refresh -------------------------------------------------------------------


def write_file(config, name: str, data: dict) -> None:
    config.auth_dir.mkdir(parents=True, exist_ok=True)
    (config.auth_dir / name).write_text(json.dumps(data))


def expired_claude(auth_server: FakeAuthServer) -> dict:
    tokens = auth_server.issue(CLAUDE_CLIENT.client_id)
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return {"type": "claude", "email": "old@example.com", "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"], "expired": past}


async def test_concurrent_requests_refresh_an_expired_token_once(tmp_path, auth_server):
    config = make_config(tmp_path, auth_server)
    data = expired_claude(auth_server)
    write_file(config, "claude-old.json", data)
    store = AuthStore(config)
    store.scan()
    keeper = TokenKeeper(config, store)
    before = auth_server.refresh_calls
    cred = store.get("claude-old.json")
    try:
        results = await asyncio.gather(*(keeper.ensure(cred) for _ in range(10)))
    finally:
        await keeper.aclose()
    assert auth_server.refresh_calls - before == 1
    assert len({r.secret for r in results}) == 1
    new = json.loads((config.auth_dir / "claude-old.json").read_text())
    assert new["access_token"] == results[0].secret != data["access_token"]
    assert new["refresh_token"] != data["refresh_token"]  # rotated
    assert new["email"] == "claude-user@example.com" and new["last_refresh"]
    assert stat.S_IMODE(os.stat(config.auth_dir / "claude-old.json").st_mode) == 0o600


async def test_refresh_keeps_the_refresh_token_when_the_answer_has_none(tmp_path, auth_server):
    auth_server.rotate, auth_server.omit_refresh_token = False, True
    config = make_config(tmp_path, auth_server)
    data = expired_claude(auth_server)
    write_file(config, "claude-old.json", data)
    store = AuthStore(config)
    store.scan()
    keeper = TokenKeeper(config, store)
    try:
        fresh = await keeper.refresh(store.get("claude-old.json"), force=True)
    finally:
        await keeper.aclose()
    assert fresh.data["refresh_token"] == data["refresh_token"]
    assert fresh.secret != data["access_token"]


async def test_invalid_grant_marks_needs_login_and_keeps_the_file(tmp_path, auth_server):
    config = make_config(tmp_path, auth_server)
    data = expired_claude(auth_server)
    auth_server.revoke_refresh(data["refresh_token"])
    write_file(config, "claude-old.json", data)
    store = AuthStore(config)
    store.scan()
    keeper = TokenKeeper(config, store)
    try:
        with pytest.raises(RefreshFailed) as err:
            await keeper.ensure(store.get("claude-old.json"))
    finally:
        await keeper.aclose()
    assert err.value.needs_login
    cred = store.get("claude-old.json")
    assert cred.status == "needs-login" and "invalid_grant" in cred.data["last_error"]
    on_disk = json.loads((config.auth_dir / "claude-old.json").read_text())
    assert on_disk["refresh_token"] == data["refresh_token"] and on_disk["needs_login"] is True
    assert not keeper.due(cred)


@pytest.mark.parametrize("provider", ["codex", "gemini"])
async def test_refresh_for_codex_and_gemini(tmp_path, auth_server, provider):
    config = make_config(tmp_path, auth_server)
    client = CODEX_CLIENT if provider == "codex" else GOOGLE_CLIENT
    tokens = auth_server.issue(client.client_id)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    if provider == "codex":
        data = {"type": "codex", "email": "c@example.com", "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"], "id_token": tokens["id_token"], "expired": past}
    else:
        data = {"type": "gemini", "email": "g@example.com", "project_id": "p1",
                "token": {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
                          "expiry": past, "token_type": "Bearer"}}
    write_file(config, f"{provider}-x.json", data)
    store = AuthStore(config)
    store.scan()
    keeper = TokenKeeper(config, store)
    try:
        assert keeper.due(store.get(f"{provider}-x.json"))
        assert await keeper.refresh_due() == [f"{provider}-x.json"]
    finally:
        await keeper.aclose()
    cred = store.get(f"{provider}-x.json")
    assert cred.secret in auth_server.valid_access_tokens and not cred.is_expired
    if provider == "gemini":
        assert cred.data["project_id"] == "p1" and cred.data["token"]["client_id"] == GOOGLE_CLIENT.client_id


def test_refresh_lead_per_provider():
    assert login_module("claude").REFRESH_LEAD == timedelta(hours=4)
    assert login_module("codex").REFRESH_LEAD == timedelta(days=5)


def test_due_respects_lead_and_per_file_interval(tmp_path, auth_server):
    config = make_config(tmp_path, auth_server)
    soon = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=5)).isoformat()
    write_file(config, "claude-a.json", {"type": "claude", "access_token": "a", "refresh_token": "r", "expired": soon})
    write_file(config, "claude-b.json", {"type": "claude", "access_token": "b", "refresh_token": "r", "expired": later})
    write_file(config, "claude-c.json", {"type": "claude", "access_token": "c", "refresh_token": "r", "expired": later,
                                         "refresh_interval_seconds": 6 * 3600})
    store = AuthStore(config)
    store.scan()
    keeper = TokenKeeper(config, store)
    assert keeper.due(store.get("claude-a.json"))  # within Claude's 4 h lead
    assert not keeper.due(store.get("claude-b.json"))
    assert keeper.due(store.get("claude-c.json"))  # the file's own interval wins


async def test_a_second_401_for_the_old_token_reuses_the_first_refresh(tmp_path, auth_server):
    config = make_config(tmp_path, auth_server)
    tokens = auth_server.issue(CLAUDE_CLIENT.client_id)
    later = (datetime.now(UTC) + timedelta(hours=8)).isoformat()
    write_file(config, "claude-x.json", {"type": "claude", "access_token": tokens["access_token"],
                                         "refresh_token": tokens["refresh_token"], "expired": later})
    store = AuthStore(config)
    store.scan()
    keeper = TokenKeeper(config, store)
    sent_with = store.get("claude-x.json")
    before = auth_server.refresh_calls
    try:
        first = await keeper.recover(sent_with)
        second = await keeper.recover(sent_with)  # a request that left with the old token too
    finally:
        await keeper.aclose()
    assert auth_server.refresh_calls - before == 1
    assert first.secret == second.secret != sent_with.secret
