"""Logins and token upkeep through the real gateway (mitmdump) and the real CLI.

The fake authorization server issues the tokens; the fake API accepts only
live ones, so a request succeeds only with the token the login (or refresh)
really obtained.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.conftest import CLIENT_KEY, MGMT_KEY
from tests.fakes.oauth import CLAUDE_CLIENT, CODEX_CLIENT, GOOGLE_CLIENT, FakeAuthServer, upstream_overrides
from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway

MGMT = {"authorization": f"Bearer {MGMT_KEY}"}
QUOTIO = Path(sys.executable).parent / "quotio"


@pytest.fixture(scope="module")
def auth() -> Iterator[FakeAuthServer]:
    # Ten days: longer than every provider's refresh lead (Codex's is five),
    # so the background refresher leaves fresh logins alone.
    with FakeAuthServer(CLAUDE_CLIENT, CODEX_CLIENT, GOOGLE_CLIENT, expires_in=10 * 86400) as fake:
        yield fake


@pytest.fixture(scope="module")
def api(auth) -> Iterator[FakeUpstream]:
    with FakeUpstream("Hello from the logged-in account", require_auth=auth.access_check()) as fake:
        yield fake


def config_for(auth: FakeAuthServer, api: FakeUpstream) -> dict:
    ups = upstream_overrides(auth)
    ups["claude"]["base-url"] = api.url
    ups["codex"]["base-url"] = api.url + "/backend-api/codex"
    ups["gemini"]["base-url"] = api.url
    return {
        "api-keys": [CLIENT_KEY],
        "remote-management": {"secret-key": MGMT_KEY},
        "upstreams": ups,
        "request-retry": 2,
        "oauth": {
            "callback-ports": {"claude": 0, "codex": 0, "gemini": 0},
            "poll-seconds": 0.05,
            "refresh-check-seconds": 0.2,
        },
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, auth, api) -> Iterator[GatewayProcess]:
    g = start_gateway(tmp_path_factory.mktemp("oauth-gw"), config_for(auth, api), confdir=confdir)
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def _fresh(api, auth):
    api.clear()
    auth.rotate, auth.omit_refresh_token, auth.deny_next = True, False, False
    api.code_assist_onboarded, api.onboard_polls_left = False, 1
    yield


def mgmt(gw: GatewayProcess, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{gw.url}/v0/management{path}", headers=MGMT, timeout=10, **kw)


def browser(url: str) -> httpx.Response:
    return httpx.get(url, follow_redirects=True, timeout=10, trust_env=False)


def wait_for(pred, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := pred()):
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def openai_client(gw: GatewayProcess, retries: int = 2) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=CLIENT_KEY, max_retries=retries)


def anthropic_client(gw: GatewayProcess, retries: int = 2) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=retries)


def bearer_seen(api: FakeUpstream) -> str:
    return api.last.headers.get("authorization", "")[7:]


def file_of(gw: GatewayProcess, name: str) -> dict:
    return json.loads((gw.auth_dir / name).read_text())


def _wait_listed(gw: GatewayProcess, name: str) -> dict:
    def listed():
        files = mgmt(gw, "GET", "/auth-files").json()["files"]
        return next((f for f in files if f["name"] == name), None)

    return wait_for(listed, what=f"{name} in /auth-files")


@pytest.mark.parametrize(
    ("route", "model", "email"),
    [
        ("anthropic", "claude-sonnet-4-5", "claude-user@example.com"),
        ("codex", "gpt-5", "codex-user@example.com"),
        ("gemini-cli", "gemini-2.5-pro", "gemini-user@example.com"),
    ],
)
def test_login_through_cliproxyapi_routes_then_both_sdks_are_served(gw, api, route, model, email):
    start = mgmt(gw, "GET", f"/{route}-auth-url")
    assert start.status_code == 200, start.text
    body = start.json()
    assert body["status"] == "ok" and body["state"] and body["url"].startswith("http://127.0.0.1")
    assert mgmt(gw, "GET", "/get-auth-status", params={"state": body["state"]}).json() == {"status": "wait"}
    page = browser(body["url"])
    assert page.status_code == 200 and "Login complete" in page.text
    status = wait_for(
        lambda: (s := mgmt(gw, "GET", "/get-auth-status", params={"state": body["state"]}).json())["status"] != "wait"
        and s,
        what="login to finish",
    )
    assert status == {"status": "ok"}
    # The seed's route describes the same session.
    seed = mgmt(gw, "GET", "/oauth/status", params={"state": body["state"]}).json()
    assert seed["completed"] is True and seed["email"] == email
    entry = _wait_listed(gw, seed["file"])
    assert entry["status"] == "ready" and entry["email"] == email
    token = (file_of(gw, seed["file"]).get("token") or file_of(gw, seed["file"]))["access_token"]

    chat = openai_client(gw).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert chat.choices[0].message.content == "Hello from the logged-in account"
    assert bearer_seen(api) == token
    msg = anthropic_client(gw).messages.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.content[0].text == "Hello from the logged-in account"
    assert bearer_seen(api) == token


def test_seed_routes_start_status_and_device_flow(gw, api, auth):
    providers = mgmt(gw, "GET", "/oauth/providers").json()
    assert {"claude", "codex", "gemini"} <= set(providers["oauth"])
    assert "codex" in providers["device_code"]

    bad = mgmt(gw, "POST", "/oauth/start", json={"provider": "nonesuch"})
    assert bad.status_code == 400 and "unknown provider" in bad.json()["error"]

    dev = mgmt(gw, "POST", "/oauth/device-start", json={"provider": "codex"})
    assert dev.status_code == 200, dev.text
    d = dev.json()
    assert d["user_code"] and d["verification_uri"] and d["device_code"]
    poll = mgmt(gw, "POST", "/oauth/device-poll", json={"provider": "codex", "device_code": d["device_code"]})
    assert poll.json() == {"status": "pending", "provider": "codex"}
    auth.approve(d["user_code"])
    done = wait_for(
        lambda: (r := mgmt(gw, "POST", "/oauth/device-poll", json={"provider": "codex", "device_code": d["device_code"]}).json())[
            "status"
        ] != "pending" and r,
        what="device login",
    )
    assert done["status"] == "completed" and done["email"] == "codex-user@example.com"


@pytest.mark.parametrize(
    ("provider", "written_name"),
    [
        ("claude", "claude-claude-user@example.com.json"),
        ("codex", None),
        ("gemini", "gemini-gemini-user@example.com-fake-project-123.json"),
    ],
)
def test_cli_login_writes_the_auth_file(tmp_path, auth, api, provider, written_name):
    import yaml

    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config_for(auth, api)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "QUOTIO_AUTH_DIR": str(tmp_path / "auth")}
    proc = subprocess.Popen(
        [str(QUOTIO), "login", provider, "--no-browser", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("http://127.0.0.1"):
                break
        url = lines[-1].strip()
        assert "state=" in url and "code_challenge=" in url, lines
        assert browser(url).status_code == 200
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, "".join(lines) + (out or "")
    assert f"logged in as {provider}-user@example.com" in out
    written = Path(out.strip().splitlines()[-1].split("wrote ", 1)[1])
    if written_name:
        assert written.name == written_name
    data = json.loads(written.read_text())
    token = (data.get("token") or data)["access_token"]
    assert token in auth.valid_access_tokens
    listed = subprocess.run(
        [str(QUOTIO), "auth", "list", "--json", "--config", str(cfg)], capture_output=True, text=True, env=env
    )
    assert json.loads(listed.stdout)[0]["status"] == "ready"


def _account(gw: GatewayProcess, auth: FakeAuthServer, name: str, prefix: str, expires: timedelta, **extra) -> dict:
    tokens = auth.issue(CLAUDE_CLIENT.client_id)
    data = {
        "type": "claude",
        "email": f"{name}@example.com",
        "access_token": tokens["access_token"],
        "refresh_token": tokens["refresh_token"],
        "expired": (datetime.now(UTC) + expires).isoformat(),
        "prefix": prefix,
        **extra,
    }
    gw.write_auth(f"claude-{name}.json", data)
    wait_for(lambda: any(f["name"] == f"claude-{name}.json" for f in mgmt(gw, "GET", "/auth-files").json()["files"]))
    return data


def test_expired_token_is_refreshed_on_the_fly_and_written_back(gw, api, auth):
    # The background refresher may get to it first; either way it is refreshed once.
    before = auth.refresh_calls
    old = _account(gw, auth, "expired", "exp", timedelta(minutes=-5))
    chat = openai_client(gw).chat.completions.create(
        model="exp/claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.choices[0].message.content
    new = file_of(gw, "claude-expired.json")
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    assert bearer_seen(api) == new["access_token"]
    assert auth.refresh_calls - before == 1
    assert datetime.fromisoformat(new["expired"].replace("Z", "+00:00")) > datetime.now(UTC)


@pytest.mark.parametrize("client", ["openai-json", "anthropic-stream"])
def test_a_401_is_recovered_by_one_refresh_and_one_retry(gw, api, auth, client):
    old = _account(gw, auth, f"r401-{client}", f"r401{client[:3]}", timedelta(hours=8))
    auth.revoke_access(old["access_token"])  # the upstream now answers 401 for it
    before = auth.refresh_calls
    model = f"r401{client[:3]}/claude-sonnet-4-5"
    if client == "openai-json":
        reply = openai_client(gw).chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
    else:
        with anthropic_client(gw).messages.stream(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            text = "".join(stream.text_stream)
        assert text == "Hello from the logged-in account"
    assert auth.refresh_calls - before == 1
    new = file_of(gw, f"claude-r401-{client}.json")
    assert new["access_token"] != old["access_token"]
    assert bearer_seen(api) == new["access_token"]
    statuses = [r.headers.get("authorization", "")[7:] for r in api.requests]
    assert statuses.count(old["access_token"]) == 1  # exactly one attempt with the dead token


def test_invalid_grant_takes_the_account_out_while_another_serves(gw, api, auth):
    dead = _account(gw, auth, "dead", "ig", timedelta(hours=8))
    _account(gw, auth, "alive", "ig", timedelta(hours=8))
    auth.revoke_access(dead["access_token"])
    auth.revoke_refresh(dead["refresh_token"])
    client = openai_client(gw, retries=0)
    for _ in range(4):
        reply = client.chat.completions.create(model="ig/claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
    entry = next(a for a in mgmt(gw, "GET", "/auth").json()["auth_files"] if a["id"] == "claude-dead.json")
    assert entry["status"] == "needs-login" and "invalid_grant" in entry["last_error"]
    on_disk = file_of(gw, "claude-dead.json")
    assert on_disk["needs_login"] is True and on_disk["refresh_token"] == dead["refresh_token"]
    dead_uses = [r for r in api.requests if r.headers.get("authorization", "")[7:] == dead["access_token"]]
    assert len(dead_uses) == 1


def test_background_refresher_renews_a_token_within_its_lead(gw, api, auth):
    old = _account(gw, auth, "soon", "soon", timedelta(hours=1))  # Claude's lead is 4 h
    new = wait_for(
        lambda: (d := file_of(gw, "claude-soon.json"))["access_token"] != old["access_token"] and d,
        what="the background refresh",
    )
    assert new["refresh_token"] != old["refresh_token"]
    assert datetime.fromisoformat(new["expired"].replace("Z", "+00:00")) > datetime.now(UTC) + timedelta(minutes=30)
    assert not api.requests  # no request was needed for it


def test_refresh_route_renews_a_provider_s_accounts(gw, api, auth):
    old = _account(gw, auth, "byroute", "byroute", timedelta(hours=8))
    r = mgmt(gw, "POST", "/oauth/refresh/claude", json={"id": "claude-byroute.json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["provider"] == "claude" and body["expires_at"]
    assert [x["id"] for x in body["refreshed"]] == ["claude-byroute.json"]
    new = file_of(gw, "claude-byroute.json")
    assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
    missing = mgmt(gw, "POST", "/oauth/refresh/claude", json={"id": "claude-nope.json"})
    assert missing.status_code == 404


def test_auth_files_upload_list_and_delete(gw, auth):
    tokens = auth.issue(CLAUDE_CLIENT.client_id)
    data = {"type": "claude", "email": "up@example.com", "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"], "expired": "2099-01-01T00:00:00Z", "prefix": "up"}
    bad = httpx.post(f"{gw.url}/v0/management/auth-files", params={"name": "claude-up.json"},
                     content=b'{"no": "type"}', headers={**MGMT, "content-type": "application/json"})
    assert bad.status_code == 400 and "not a valid auth file" in bad.json()["error"]
    up = mgmt(gw, "POST", "/auth-files", params={"name": "claude-up.json"}, json=data)
    assert up.status_code == 200 and up.json() == {"status": "ok", "name": "claude-up.json"}
    assert (gw.auth_dir / "claude-up.json").stat().st_mode & 0o777 == 0o600
    entry = _wait_listed(gw, "claude-up.json")
    assert entry["type"] == "claude" and entry["status"] == "ready" and entry["email"] == "up@example.com"
    assert tokens["access_token"] not in mgmt(gw, "GET", "/auth-files").text
    gone = mgmt(gw, "DELETE", "/auth-files", params={"name": "claude-up.json"})
    assert gone.status_code == 200 and gone.json() == {"status": "ok", "deleted": 1}
    assert not (gw.auth_dir / "claude-up.json").exists()
    assert list((gw.auth_dir / ".removed").glob("claude-up.json.*"))  # moved aside, not lost
    assert mgmt(gw, "DELETE", "/auth-files", params={"name": "claude-up.json"}).status_code == 404


def test_a_redirect_pasted_from_another_machine_completes_the_login(gw, auth):
    start = mgmt(gw, "GET", "/anthropic-auth-url").json()
    # The browser ran elsewhere: take the redirect it was sent to, without following it.
    redirect = httpx.get(start["url"], follow_redirects=False, timeout=10, trust_env=False)
    assert redirect.status_code == 302
    done = mgmt(gw, "POST", "/oauth-callback", json={"redirect_url": redirect.headers["location"]})
    assert done.status_code == 200 and done.json()["status"] == "ok", done.text
    assert mgmt(gw, "GET", "/get-auth-status", params={"state": start["state"]}).json() == {"status": "ok"}
    unknown = mgmt(gw, "POST", "/oauth-callback", json={"state": "nope", "code": "x"})
    assert unknown.status_code == 404


@pytest.mark.parametrize("how", ["seed", "cliproxyapi"])
def test_a_pending_login_can_be_cancelled(gw, how):
    start = mgmt(gw, "POST", "/oauth/start", json={"provider": "claude"}).json()
    if how == "seed":
        r = mgmt(gw, "POST", "/oauth/cancel", json={"state": start["state"]})
    else:
        r = mgmt(gw, "DELETE", "/oauth-session", params={"state": start["state"]})
    assert r.status_code == 200
    status = mgmt(gw, "GET", "/oauth/status", params={"state": start["state"]}).json()
    assert status["status"] == "error" and status["error"] == "cancelled"
    # The callback listener went with it.
    from urllib.parse import parse_qs, urlsplit

    redirect_uri = parse_qs(urlsplit(start["auth_url"]).query)["redirect_uri"][0]

    def closed() -> bool:
        try:
            httpx.get(redirect_uri, timeout=2, trust_env=False)
        except httpx.ConnectError:
            return True
        return False

    wait_for(closed, what="the callback listener to close")
