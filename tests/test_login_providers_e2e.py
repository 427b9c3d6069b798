"""Every device-code, browser and service-account login the seed promises, end to end.

For Qwen, GitHub Copilot, Kiro (device codes), iFlow (browser) and Vertex
(service-account import): log in through the management routes of the real
gateway, then send an OpenAI-SDK and an Anthropic-SDK request that the new
account serves; and log in once more through `quotio login` against the
same fakes. (Claude, Codex and Gemini: tests/test_oauth_e2e.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import yaml

from tests.conftest import CLIENT_KEY, MGMT_KEY
from tests.fakes.github_copilot import FakeCopilot
from tests.fakes.iflow import FakeIFlow
from tests.fakes.kiro import FakeKiro
from tests.fakes.qwen import FakeQwen
from tests.fakes.vertex import FakeVertex
from tests.gateway_proc import GatewayProcess, start_gateway

MGMT = {"authorization": f"Bearer {MGMT_KEY}"}
QUOTIO = Path(sys.executable).parent / "quotio"
# provider -> the model a client names (the provider head picks the provider)
MODELS = {
    "qwen": "qwen/qwen3-coder-plus",
    "github-copilot": "github-copilot/gpt-4.1",
    "kiro": "kiro/claude-sonnet-4.5",
    "iflow": "iflow/kimi-k2",
    "vertex": "vertex/gemini-2.5-pro",
}
REPLIES = {p: f"Hello from the {p} account" for p in MODELS}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict]:
    made = {"qwen": FakeQwen(), "github-copilot": FakeCopilot(), "kiro": FakeKiro(), "iflow": FakeIFlow(),
            "vertex": FakeVertex()}
    for name, fake in made.items():
        fake.start()
        if hasattr(fake, "slow_down"):
            fake.slow_down = False  # covered by the login-module tests; here it would only add waiting
        if hasattr(fake, "pending_polls"):
            fake.pending_polls = 1
        target = fake if name == "kiro" else fake.model
        target.reply_text = REPLIES[name]
    made["github-copilot"].interval = 1
    yield made
    for fake in made.values():
        fake.stop()


def config_for(fakes: dict) -> dict:
    return {
        "api-keys": [CLIENT_KEY],
        "remote-management": {"secret-key": MGMT_KEY},
        "upstreams": {name: fake.upstreams for name, fake in fakes.items()},
        "oauth": {"callback-ports": {"iflow": 0}},
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, fakes) -> Iterator[GatewayProcess]:
    g = start_gateway(tmp_path_factory.mktemp("logins-gw"), config_for(fakes), confdir=confdir)
    yield g
    g.stop()


def mgmt(gw: GatewayProcess, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{gw.url}/v0/management{path}", headers=MGMT, timeout=15, **kw)


def wait_for(pred, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := pred()):
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def login_through_management(gw: GatewayProcess, fakes: dict, provider: str) -> str:
    """Log in with the routes the provider's flow uses; returns the auth file's name."""
    if provider == "vertex":
        key = fakes["vertex"].new_service_account()
        r = mgmt(gw, "POST", "/oauth/import-service-account", json={"provider": "vertex", "key_file": json.dumps(key)})
        assert r.status_code == 200, r.text
        assert r.json()["project_id"] == "quotio-test"
        return r.json()["file"]
    if provider == "iflow":
        start = mgmt(gw, "GET", "/iflow-auth-url").json()
        assert start["status"] == "ok", start
        page = httpx.get(start["url"], follow_redirects=True, timeout=15, trust_env=False)
        assert page.status_code == 200, page.text
        wait_for(lambda: mgmt(gw, "GET", "/get-auth-status", params={"state": start["state"]}).json()["status"] == "ok",
                 what="iflow login")
        return mgmt(gw, "GET", "/oauth/status", params={"state": start["state"]}).json()["file"]
    dev = mgmt(gw, "POST", "/oauth/device-start", json={"provider": provider})
    assert dev.status_code == 200, dev.text
    d = dev.json()
    assert d["user_code"] and d["verification_uri"]

    def finished():
        r = mgmt(gw, "POST", "/oauth/device-poll", json={"provider": provider, "device_code": d["device_code"]}).json()
        return r if r["status"] != "pending" else None

    done = wait_for(finished, what=f"{provider} device login")
    assert done["status"] == "completed", done
    return done["file"]


def ask(gw: GatewayProcess, provider: str) -> tuple[str, str]:
    model = MODELS[provider]
    oa = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    a = oa.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello there"}])
    an = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0)
    with an.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": "hello there"}]) as s:
        b = s.get_final_message()
    return a.choices[0].message.content or "", "".join(x.text for x in b.content if x.type == "text")


@pytest.mark.parametrize("provider", list(MODELS))
def test_login_through_the_management_routes_then_both_sdks_are_served(gw, fakes, provider):
    name = login_through_management(gw, fakes, provider)
    assert name.startswith(f"{provider}-") and name.endswith(".json")
    path = gw.auth_dir / name
    assert path.stat().st_mode & 0o777 == 0o600
    wait_for(lambda: any(f["name"] == name and f["status"] == "ready" for f in mgmt(gw, "GET", "/auth-files").json()["files"]),
             what=f"{name} ready")
    assert ask(gw, provider) == (REPLIES[provider], REPLIES[provider])
    # Nothing secret about the account leaks into the listing.
    listing = mgmt(gw, "GET", "/auth").text
    data = json.loads(path.read_text())
    for field in ("access_token", "accessToken", "refresh_token", "refreshToken", "api_key"):
        if data.get(field):
            assert data[field] not in listing


@pytest.mark.parametrize("provider", list(MODELS))
def test_quotio_login_writes_a_file_the_gateway_serves_with(gw, fakes, provider, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config_for(fakes)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "QUOTIO_AUTH_DIR": str(gw.auth_dir)}
    args = [str(QUOTIO), "login", provider, "--no-browser", "--config", str(cfg)]
    if provider == "vertex":
        key = tmp_path / "sa.json"
        key.write_text(json.dumps(fakes["vertex"].new_service_account(name="cli")))
        args += ["--key-file", str(key)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        if provider == "iflow":
            for line in proc.stdout:
                if line.startswith("http://127.0.0.1"):
                    assert httpx.get(line.strip(), follow_redirects=True, timeout=15, trust_env=False).status_code == 200
                    break
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    written = Path(out.strip().splitlines()[-1].split("wrote ", 1)[1])
    assert written.parent == gw.auth_dir and written.name.startswith(f"{provider}-")
    assert written.stat().st_mode & 0o777 == 0o600
    wait_for(lambda: any(f["name"] == written.name and f["status"] == "ready"
                         for f in mgmt(gw, "GET", "/auth-files").json()["files"]), what="CLI login picked up")
    assert ask(gw, provider)[0] == REPLIES[provider]


@pytest.mark.parametrize("provider", ["qwen", "kiro", "github-copilot"])
def test_device_login_through_cliproxyapi_names(gw, fakes, provider):
    """The quotio app's `<provider>-auth-url` + `get-auth-status` for device-code providers."""
    start = mgmt(gw, "GET", f"/{provider}-auth-url")
    assert start.status_code == 200, start.text
    body = start.json()
    assert body["status"] == "ok" and body["url"] and body["state"] and body["user_code"]
    wait_for(lambda: mgmt(gw, "GET", "/get-auth-status", params={"state": body["state"]}).json()["status"] == "ok",
             what=f"{provider} device login")
    name = mgmt(gw, "GET", "/oauth/status", params={"state": body["state"]}).json()["file"]
    wait_for(lambda: any(f["name"] == name and f["status"] == "ready"
                         for f in mgmt(gw, "GET", "/auth-files").json()["files"]), what=f"{name} ready")
    assert ask(gw, provider) == (REPLIES[provider], REPLIES[provider])
