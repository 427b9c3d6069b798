"""Nothing gets in: what a web page, a hostile local client or a guessing one can do, through the real mitmdump.

One test (or a few) per finding of the security review; image fetching is
in tests/test_image_fetching.py, hostile bodies in tests/test_hostile_bodies.py.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.conftest import CLAUDE_TOKENS, claude_file
from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, free_port, start_gateway, start_mitmweb

MGMT = "security-mgmt-key-0123456789"
CLIENT = "security-client-key-0123456789"
MODEL = "claude-sonnet-4-5"
CHAT = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream("served") as fake:
        yield fake


@pytest.fixture(scope="module")
def cliproxy() -> Iterator[FakeUpstream]:
    """Stands in for CLIProxyAPI behind the passthrough: it must see only what is meant for it."""
    with FakeUpstream("from CLIProxyAPI") as fake:
        yield fake


@pytest.fixture(scope="module")
def open_gw(tmp_path_factory, confdir, up, cliproxy) -> Iterator[GatewayProcess]:
    """The default set-up: no client keys, no management key (loopback trusted)."""
    g = start_gateway(
        tmp_path_factory.mktemp("open"),
        {"upstreams": {"claude": {"base-url": up.url}}, "allowed-hosts": ["gateway.internal"]},
        env={"QUOTIO_CLI_PROXY_PORT": str(cliproxy.port)},
        auth_files={"claude-a.json": claude_file(CLAUDE_TOKENS[0], "a@example.com")},
        confdir=confdir,
    )
    yield g
    g.stop()


@pytest.fixture(scope="module")
def keyed_gw(tmp_path_factory, confdir, up, cliproxy) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("keyed")
    g = start_gateway(
        root,
        {"api-keys": [CLIENT], "remote-management": {"secret-key": MGMT}, "upstreams": {"claude": {"base-url": up.url}}},
        env={"QUOTIO_CLI_PROXY_PORT": str(cliproxy.port)},
        args=["-w", str(root / "flows.mitm")],
        auth_files={"claude-a.json": claude_file(CLAUDE_TOKENS[0], "a@example.com")},
        confdir=confdir,
    )
    g.extra["flows"] = root / "flows.mitm"
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def _fresh(up, cliproxy):
    up.clear()
    cliproxy.clear()


def mgmt_url(gw: GatewayProcess, path: str) -> str:
    return f"{gw.url}/v0/management{path}"


# --- 1. cross-site requests and DNS rebinding ----------------------------------------------------


def test_a_web_page_cannot_plant_an_auth_file(open_gw):
    """A form post from a page (text/plain, no preflight) used to be parsed as JSON and written."""
    hostile = json.dumps(claude_file("sk-ant-oat01-attacker", "x@evil.example", base_url="http://evil.example"))
    for headers in (
        {"content-type": "text/plain;charset=UTF-8"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "application/json", "origin": "http://evil.example"},
        {"content-type": "application/json", "sec-fetch-site": "cross-site"},
        {"content-type": "application/json", "origin": "null"},
    ):
        r = httpx.post(mgmt_url(open_gw, "/auth-files"), params={"name": "claude-x.json"}, content=hostile,
                       headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"].startswith("refused")
    assert not (open_gw.auth_dir / "claude-x.json").exists()


def test_dns_rebinding_cannot_read_management_or_use_the_pool(open_gw, up):
    """A page whose own name now points at 127.0.0.1 sends its own Host."""
    r = httpx.get(mgmt_url(open_gw, "/auth-files"), headers={"host": f"evil.example:{open_gw.port}"})
    assert r.status_code == 403 and "evil.example" in r.json()["error"]
    r = httpx.post(open_gw.url + "/v1/messages", json=CHAT, headers={"host": "evil.example"})
    assert r.status_code == 403 and r.json()["type"] == "error"  # Anthropic's shape
    assert not up.requests


def test_local_clients_and_configured_names_are_served(open_gw):
    for host in (f"127.0.0.1:{open_gw.port}", f"localhost:{open_gw.port}", "gateway.internal"):
        assert httpx.get(mgmt_url(open_gw, "/auth-files"), headers={"host": host}).status_code == 200, host
    # The dashboard's own calls are same-origin.
    same = {"origin": open_gw.url, "sec-fetch-site": "same-origin"}
    assert httpx.get(mgmt_url(open_gw, "/usage"), headers=same).status_code == 200
    # The page itself may be opened from a link on another site; it holds no data.
    page = httpx.get(mgmt_url(open_gw, "/dashboard"), headers={"sec-fetch-site": "cross-site"})
    assert page.status_code == 200
    # SDKs are served as before.
    with anthropic.Anthropic(base_url=open_gw.url, api_key="unused", max_retries=0) as client:
        assert client.messages.create(**CHAT).content[0].text == "served"


def test_api_writes_from_a_page_are_refused_without_client_keys(open_gw, up):
    r = httpx.post(open_gw.url + "/v1/chat/completions", content=json.dumps(CHAT),
                   headers={"content-type": "text/plain"})
    assert r.status_code == 403 and "application/json" in r.json()["error"]["message"]
    r = httpx.post(open_gw.url + "/v1/chat/completions", json=CHAT, headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    assert not up.requests


def test_with_client_keys_the_key_decides(keyed_gw, up):
    r = httpx.post(keyed_gw.url + "/v1/messages", json=CHAT, headers={"x-api-key": CLIENT, "host": "my-box:8317"})
    assert r.status_code == 200


# --- 3. file names that could leave the auth dir --------------------------------------------------


def test_a_file_name_cannot_leave_the_auth_dir(open_gw, tmp_path):
    victim = open_gw.root / "victim.json"
    victim.write_text("{}")
    for name in ("../victim.json", str(victim), "..%2Fvictim.json", "claude\nfake-log-line.json", "x\x00.json",
                 ".hidden.json", "a" * 300 + ".json"):
        r = httpx.delete(mgmt_url(open_gw, "/auth-files"), params={"name": name})
        assert r.status_code in (400, 404), name
        r = httpx.post(mgmt_url(open_gw, "/auth-files"), params={"name": name},
                       json=claude_file("sk-ant-oat01-x", "x@example.com"))
        assert r.status_code == 400, name
    assert victim.read_text() == "{}"
    assert not list(open_gw.root.glob(".removed/victim*")) and not list((open_gw.auth_dir / ".removed").glob("*victim*"))


def test_a_link_out_of_the_auth_dir_is_not_followed(open_gw, tmp_path):
    secret = tmp_path / "not-an-auth-file.json"
    secret.write_text(json.dumps(claude_file("sk-ant-oat01-elsewhere", "e@example.com")))
    link = open_gw.auth_dir / "claude-link.json"
    link.symlink_to(secret)
    try:
        time.sleep(0.6)  # two scans
        files = httpx.get(mgmt_url(open_gw, "/auth-files")).json()["files"]
        assert "claude-link.json" not in [f["name"] for f in files]
    finally:
        link.unlink()


# --- 4. a failing management route answers itself ----------------------------------------------------


def test_failing_management_routes_never_reach_cliproxyapi(keyed_gw, cliproxy):
    auth = {"authorization": f"Bearer {MGMT}", "content-type": "application/json"}
    calls = [
        ("POST", "/vertex/import", {"content": b'{"key_file": "{not json"}'}),
        ("POST", "/vertex/import", {"content": b'{"type": "service_account", "private_key": "garbage"}'}),
        ("DELETE", "/auth-files", {"params": {"name": "x\x00y.json"}}),
        ("GET", "/usage", {"params": {"since": "1e23"}}),
        ("GET", "/usage", {"params": {"since": "nan"}}),
        ("POST", "/reset-quota", {"content": b"[" * 50_000}),
    ]
    for method, path, kw in calls:
        r = httpx.request(method, mgmt_url(keyed_gw, path), headers=auth, timeout=10, **kw)
        assert r.headers["content-type"] == "application/json", (path, r.text[:200])
        assert r.status_code in (400, 404, 500), (path, r.status_code)
        if r.status_code == 500:
            assert r.json()["request_id"]
    assert not cliproxy.requests, "a management request was passed on to CLIProxyAPI"
    assert httpx.get(mgmt_url(keyed_gw, "/health"), headers=auth).status_code == 200


# --- 5. secrets on saved flows and in the web UI -----------------------------------------------------


def test_a_refused_management_request_does_not_keep_its_key(keyed_gw):
    wrong = "wrong-management-key-0123456789"
    assert httpx.get(mgmt_url(keyed_gw, "/auth-files"), headers={"authorization": f"Bearer {wrong}"}).status_code == 401
    assert httpx.get(mgmt_url(keyed_gw, "/auth-files"),
                     headers={"authorization": f"Bearer {MGMT}"}).status_code == 200
    uploaded = claude_file("sk-ant-oat01-uploaded-secret", "u@example.com")
    assert httpx.post(mgmt_url(keyed_gw, "/auth-files"), params={"name": "claude-u.json"}, json=uploaded,
                      headers={"authorization": f"Bearer {MGMT}"}).status_code == 200
    time.sleep(0.5)
    dump = keyed_gw.extra["flows"].read_bytes()
    for secret in (wrong, MGMT, "sk-ant-oat01-uploaded-secret"):
        assert secret.encode() not in dump


def test_mitmweb_never_shows_a_live_credential(tmp_path, confdir):
    """While a request is in flight its flow carries the injected token; the UI must not show it."""
    with FakeUpstream("slow answer") as slow:
        slow.fault_next("hang", seconds=3)
        config = {"claude-api-key": [{"api-key": "sk-ant-api03-live-secret-0000"}],
                  "upstreams": {"claude": {"base-url": slow.url}}}
        gw, web_port = start_mitmweb(tmp_path, config, confdir, "ui-test")
        try:
            import threading

            asker = threading.Thread(target=lambda: httpx.post(
                gw.url + "/v1/messages", json=CHAT, headers={"x-api-key": "client-side-key-9999"}, timeout=20))
            asker.start()
            time.sleep(1.0)  # in flight: the upstream holds the answer
            flows = httpx.get(f"http://127.0.0.1:{web_port}/flows", headers={"authorization": "Bearer ui-test"}).text
            assert "/v1/messages" in flows
            assert "sk-ant-api03-live-secret-0000" not in flows and "client-side-key-9999" not in flows
            asker.join(20)
            flows = httpx.get(f"http://127.0.0.1:{web_port}/flows", headers={"authorization": "Bearer ui-test"}).text
            assert "sk-ant-api03-live-secret-0000" not in flows
        finally:
            gw.stop()


# --- 7. request body limit --------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_in_the_clients_shape(tmp_path, confdir, up):
    gw = start_gateway(tmp_path, {"upstreams": {"claude": {"base-url": up.url}}, "max-request-body-mb": 1},
                       auth_files={"claude-a.json": claude_file(CLAUDE_TOKENS[0], "a@example.com")}, confdir=confdir)
    try:
        big = {**CHAT, "messages": [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]}
        r = httpx.post(gw.url + "/v1/messages", json=big, timeout=20)
        assert r.status_code == 413
        assert r.json()["type"] == "error" and "max-request-body-mb" in r.json()["error"]["message"]

        def chunks():
            raw = json.dumps(big).encode()
            for i in range(0, len(raw), 64 * 1024):
                yield raw[i:i + 64 * 1024]

        r = httpx.post(gw.url + "/v1/chat/completions", content=chunks(), timeout=20,
                       headers={"content-type": "application/json"})
        assert r.status_code == 413 and "error" in r.json()
        assert not up.requests
        with anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0) as client:
            assert client.messages.create(**CHAT).content[0].text == "served"
    finally:
        gw.stop()


# --- 9. the smaller ones ------------------------------------------------------------------------------


def test_an_ipv6_wildcard_host_listens(tmp_path, confdir, up):
    port = free_port()
    gw = start_gateway(tmp_path, {"upstreams": {"claude": {"base-url": up.url}}},
                       env={"QUOTIO_HOST": "::"}, port=port, wait=False,
                       auth_files={"claude-a.json": claude_file(CLAUDE_TOKENS[0], "a@example.com")}, confdir=confdir)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"http://[::1]:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert gw.proc.poll() is None, gw.log()
                time.sleep(0.1)
        assert r.status_code == 200
    finally:
        gw.stop()


def test_a_listener_that_cannot_start_stops_the_gateway(tmp_path, confdir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        gw = start_gateway(tmp_path, {}, port=port, wait=False, confdir=confdir)
        try:
            gw.proc.wait(30)
        finally:
            gw.stop()
    assert f"127.0.0.1:{port}" in gw.log()
    assert "address already in use" in gw.log().lower()


def test_files_the_gateway_makes_are_private(tmp_path, confdir, up):
    root = tmp_path / "fresh-config-dir"
    gw = start_gateway(root, {"api-keys": [CLIENT], "upstreams": {"claude": {"base-url": up.url}}},
                       auth_files={"claude-a.json": claude_file(CLAUDE_TOKENS[0], "a@example.com")}, confdir=confdir)
    try:
        with anthropic.Anthropic(base_url=gw.url, api_key=CLIENT, max_retries=0) as client:
            client.messages.create(**CHAT)
        time.sleep(0.5)
        for name in ("quotio.db", "quotio.db-wal", "quotio.db-shm", "install-secret"):
            path = root / name
            if path.exists():
                assert oct(path.stat().st_mode & 0o777) == "0o600", name
        # The client key's id in the records is keyed with this installation's secret.
        import sqlite3

        with sqlite3.connect(root / "quotio.db") as con:
            [(kid,)] = con.execute("SELECT DISTINCT client_key_id FROM requests WHERE route = '/v1/messages'")
        assert kid != hashlib.sha256(CLIENT.encode()).hexdigest()[:12]
    finally:
        gw.stop()
    assert "readable by other users" in gw.log()  # the test's auth dir is 0755


def test_the_passthrough_says_who_sent_the_request(keyed_gw, cliproxy):
    r = httpx.get(keyed_gw.url + "/v0/something-cliproxyapi-serves",
                  headers={"authorization": f"Bearer {CLIENT}", "x-forwarded-for": "6.6.6.6"})
    assert r.status_code == 404  # the fake's own answer: the request reached it
    seen = cliproxy.last.headers
    assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-real-ip"] == "127.0.0.1"
    assert seen["host"] == f"127.0.0.1:{cliproxy.port}"


def test_an_unauthorized_request_never_reaches_cliproxyapi(keyed_gw, cliproxy):
    r = httpx.get(keyed_gw.url + "/v0/something-cliproxyapi-serves", headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert not cliproxy.requests


# --- brute force -------------------------------------------------------------------------------------


def test_five_wrong_management_keys_lock_an_address_out(keyed_gw):
    def from_(address: str) -> httpx.Client:
        return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=5)

    with from_("127.0.0.3") as guesser, from_("127.0.0.4") as admin:
        for i in range(5):
            r = guesser.get(mgmt_url(keyed_gw, "/pool"), headers={"authorization": f"Bearer guess-{i}"})
            assert r.status_code == 401
        r = guesser.get(mgmt_url(keyed_gw, "/pool"), headers={"authorization": f"Bearer {MGMT}"})
        assert r.status_code == 403 and "too many wrong management keys" in r.json()["error"]
        pool = admin.get(mgmt_url(keyed_gw, "/pool"), headers={"authorization": f"Bearer {MGMT}"}).json()
        assert [entry["address"] for entry in pool["management_lockouts"]] == ["127.0.0.3"]
        assert pool["management_lockouts"][0]["locked_seconds"] > 1700
