import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quotio_core.config import load_config
from quotio_core.gateway import Gateway
from quotio_core.admin.state import AdminState
from quotio_core.admin.management import Management, Reply, management_access
from quotio_core.records import Record

SECRET = "mgmt-secret-0123"
TOKEN_A = "sk-ant-oat01-token-aaaa"
TOKEN_B = "sk-ant-oat01-token-bbbb"
CODEX_TOKEN = "codex-access-cccc"
CONFIG_KEY = "sk-ant-api03-config-dddd"
COMPAT_KEY = "sk-compat-eeee"
ALL_SECRETS = (SECRET, TOKEN_A, TOKEN_B, CODEX_TOKEN, CONFIG_KEY, COMPAT_KEY)


# --- management_access ----------------------------------------------------------------------------------

LOCAL = ["127.0.0.1", "::1", "::ffff:127.0.0.1"]
REMOTE = ["10.0.0.5", "192.168.1.9", "2001:db8::1"]


@pytest.mark.parametrize("ip", LOCAL)
@pytest.mark.parametrize("allow_remote", [False, True])
def test_no_secret_loopback_ok(ip: str, allow_remote: bool) -> None:
    assert management_access("", allow_remote, {}, ip) is None


@pytest.mark.parametrize("ip", REMOTE)
@pytest.mark.parametrize("allow_remote", [False, True])
def test_no_secret_remote_refused(ip: str, allow_remote: bool) -> None:
    reply = management_access("", allow_remote, {"authorization": "Bearer anything"}, ip)
    assert reply is not None and reply.status == 403
    assert "secret-key" in reply.body["error"]


@pytest.mark.parametrize(
    ("headers", "ip", "allow_remote", "status"),
    [
        ({}, "127.0.0.1", False, 401),
        ({"authorization": "Bearer wrong"}, "127.0.0.1", False, 401),
        ({"x-management-key": "wrong"}, "127.0.0.1", False, 401),
        ({"authorization": "Bearer "}, "127.0.0.1", False, 401),
        ({"authorization": f"Bearer {SECRET}"}, "127.0.0.1", False, None),
        ({"authorization": f"bearer {SECRET}"}, "::1", False, None),
        ({"x-management-key": SECRET}, "127.0.0.1", False, None),
        ({"authorization": f"Basic {SECRET}", "x-management-key": SECRET}, "127.0.0.1", False, None),
        # Remote callers need allow-remote, even with the right key.
        ({"authorization": f"Bearer {SECRET}"}, "10.0.0.5", False, 403),
        ({}, "10.0.0.5", False, 403),
        ({"authorization": f"Bearer {SECRET}"}, "10.0.0.5", True, None),
        ({"x-management-key": SECRET}, "10.0.0.5", True, None),
        ({"x-management-key": "wrong"}, "10.0.0.5", True, 401),
        ({}, "10.0.0.5", True, 401),
    ],
)
def test_secret_set(headers: dict, ip: str, allow_remote: bool, status: int | None) -> None:
    reply = management_access(SECRET, allow_remote, headers, ip)
    if status is None:
        assert reply is None
    else:
        assert reply is not None and reply.status == status
        assert SECRET not in json.dumps(reply.body)


def test_missing_and_invalid_say_which() -> None:
    missing = management_access(SECRET, False, {}, "127.0.0.1")
    invalid = management_access(SECRET, False, {"x-management-key": "nope"}, "127.0.0.1")
    remote = management_access(SECRET, False, {}, "10.0.0.5")
    assert "missing" in missing.body["error"]
    assert "invalid" in invalid.body["error"]
    assert "allow-remote" in remote.body["error"]


# --- Management routes on a real Gateway -----------------------------------------------------------

CONFIG = f"""\
remote-management:
  secret-key: {SECRET}
claude-api-key:
  - api-key: {CONFIG_KEY}
openai-compatibility:
  - name: router
    base-url: https://router.example/v1
    api-key-entries:
      - api-key: {COMPAT_KEY}
    models:
      - name: some/model
        alias: some
"""


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data))


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    cfg_dir, auth_dir = tmp_path / "cfg", tmp_path / "auth"
    cfg_dir.mkdir()
    auth_dir.mkdir()
    (cfg_dir / "config.yaml").write_text(CONFIG)
    write_json(auth_dir / "claude-a@example.com.json",
               {"type": "claude", "email": "a@example.com", "access_token": TOKEN_A,
                "refresh_token": "rt-" + TOKEN_A, "expired": "2099-01-01T00:00:00Z"})
    write_json(auth_dir / "claude-b@example.com.json",
               {"type": "claude", "email": "b@example.com", "access_token": TOKEN_B,
                "refresh_token": "rt-" + TOKEN_B, "expired": "2099-01-01T00:00:00Z", "disabled": True})
    write_json(auth_dir / "codex-c@example.com.json",
               {"type": "codex", "email": "c@example.com", "access_token": CODEX_TOKEN,
                "id_token": "idt", "account_id": "acct"})
    config = load_config(env={"QUOTIO_CONFIG_DIR": str(cfg_dir), "QUOTIO_AUTH_DIR": str(auth_dir)})
    gw = Gateway(config)
    gw.rescan()
    gw.records.start()
    yield gw
    gw.records.close()


@pytest.fixture
def mgmt(gateway: Gateway) -> Management:
    return Management(gateway, AdminState())


def no_secrets(reply: Reply) -> None:
    dumped = json.dumps(reply.body)
    for secret in ALL_SECRETS:
        assert secret not in dumped
    assert "rt-" not in dumped


async def test_list_auth(mgmt: Management) -> None:
    reply = await mgmt.handle("GET", "/auth", {})
    assert reply.status == 200
    no_secrets(reply)
    entries = {e["id"]: e for e in reply.body["auth_files"]}
    assert set(entries) == {
        "claude-api-key[0]",
        "openai-compatibility:router[0]",
        "claude-a@example.com.json",
        "claude-b@example.com.json",
        "codex-c@example.com.json",
    }
    a = entries["claude-a@example.com.json"]
    assert (a["provider"], a["source"], a["email"], a["status"], a["name"]) == (
        "claude", "file", "a@example.com", "ready", "a@example.com")
    assert a["created_at"] and a["updated_at"]
    assert entries["claude-b@example.com.json"]["status"] == "disabled"
    key = entries["claude-api-key[0]"]
    assert (key["source"], key["kind"]) == ("config", "api-key")
    assert entries["openai-compatibility:router[0]"]["models"] == ["some"]


async def test_list_auth_trailing_slash_and_head(mgmt: Management) -> None:
    assert (await mgmt.handle("GET", "/auth/", {})).status == 200
    head = await mgmt.handle("HEAD", "/auth", {})
    assert head.status == 200


async def test_list_auth_by_provider(mgmt: Management) -> None:
    reply = await mgmt.handle("GET", "/auth/claude", {})
    assert reply.status == 200
    no_secrets(reply)
    ids = sorted(e["id"] for e in reply.body["auth_files"])
    assert ids == ["claude-a@example.com.json", "claude-api-key[0]", "claude-b@example.com.json"]
    assert (await mgmt.handle("GET", "/auth/nosuch", {})).body == {"auth_files": []}


async def test_delete_auth_moves_file(mgmt: Management, gateway: Gateway) -> None:
    auth_dir = gateway.config.auth_dir
    original = (auth_dir / "claude-a@example.com.json").read_bytes()
    reply = await mgmt.handle("DELETE", "/auth/claude-a@example.com.json", {})
    assert reply.status == 200
    no_secrets(reply)
    assert reply.body["success"] is True
    moved = auth_dir / reply.body["moved_to"]
    assert moved.parent == auth_dir / ".removed"
    assert moved.read_bytes() == original
    assert not (auth_dir / "claude-a@example.com.json").exists()
    ids = [e["id"] for e in (await mgmt.handle("GET", "/auth", {})).body["auth_files"]]
    assert "claude-a@example.com.json" not in ids
    # The router no longer offers the removed account.
    assert all(c.id != "claude-a@example.com.json" for c in gateway.router.credentials)
    # Deleting it again: it is gone.
    assert (await mgmt.handle("DELETE", "/auth/claude-a@example.com.json", {})).status == 404


async def test_delete_config_entry_is_400(mgmt: Management, gateway: Gateway) -> None:
    before = sorted(p.name for p in gateway.config.auth_dir.iterdir())
    for cred_id in ("claude-api-key[0]", "openai-compatibility:router[0]"):
        reply = await mgmt.handle("DELETE", f"/auth/{cred_id}", {})
        assert reply.status == 400
        assert "config" in reply.body["error"]
        no_secrets(reply)
    assert sorted(p.name for p in gateway.config.auth_dir.iterdir()) == before


async def test_delete_unknown_is_404(mgmt: Management) -> None:
    reply = await mgmt.handle("DELETE", "/auth/nope.json", {})
    assert reply.status == 404


async def test_delete_by_provider(mgmt: Management, gateway: Gateway) -> None:
    reply = await mgmt.handle("DELETE", "/auth/provider/claude", {})
    assert reply.status == 200
    no_secrets(reply)
    assert sorted(reply.body["removed"]) == ["claude-a@example.com.json", "claude-b@example.com.json"]
    assert len(reply.body["moved_to"]) == 2
    left = sorted(p.name for p in gateway.config.auth_dir.glob("*.json"))
    assert left == ["codex-c@example.com.json"]
    assert len(list((gateway.config.auth_dir / ".removed").iterdir())) == 2
    # Config entries stay.
    ids = [e["id"] for e in (await mgmt.handle("GET", "/auth/claude", {})).body["auth_files"]]
    assert ids == ["claude-api-key[0]"]


@pytest.mark.parametrize("path", ["/nope", "/", "", "/auth/a/b/c", "/v1/messages"])
async def test_unknown_route_404(mgmt: Management, path: str) -> None:
    reply = await mgmt.handle("GET", path, {})
    assert reply.status == 404
    assert "unknown management route" in reply.body["error"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/auth", "GET"),
        ("PUT", "/auth/claude", "DELETE, GET"),
        ("GET", "/auth/provider/claude", "DELETE"),
        ("POST", "/logs", "DELETE, GET"),
        ("DELETE", "/health", "GET"),
    ],
)
async def test_wrong_method_405(mgmt: Management, method: str, path: str, allowed: str) -> None:
    reply = await mgmt.handle(method, path, {})
    assert reply.status == 405
    assert allowed in reply.body["error"]


async def test_health_ready_live(mgmt: Management) -> None:
    health = await mgmt.handle("GET", "/health", {})
    assert health.status == 200
    assert health.body["status"] == "ok"
    assert health.body["credentials"] == {
        "total": 5, "ready": 4, "by_provider": {"claude": 3, "openai-compatibility": 1, "codex": 1}
    }
    assert health.body["records"] == 0
    assert (await mgmt.handle("GET", "/ready", {})).body == {"ready": True, "credentials": 4}
    assert (await mgmt.handle("GET", "/live", {})).body == {"alive": True}
    no_secrets(health)


# --- logs ---------------------------------------------------------------------------------------------------


def record(n: int, **kw) -> Record:
    fields = {
        "ts": time.time() - 100 + n, "request_id": f"req-{n}", "method": "POST",
        "route": "/v1/messages", "client_format": "anthropic", "provider": "claude",
        "credential_id": "claude-a@example.com.json", "model_requested": "claude-sonnet-4",
        "model_sent": "claude-sonnet-4", "status": 200, "latency_ms": 10.0 + n, "ttfb_ms": 5.0,
        "input_tokens": n, "output_tokens": 2 * n,
    }
    return Record(**(fields | kw))


@pytest.fixture
def logged(gateway: Gateway) -> Gateway:
    gateway.records.submit(record(1))
    gateway.records.submit(record(2, provider="codex", route="/v1/chat/completions",
                                  client_format="openai", status=429,
                                  error=f"upstream said: bad token {CODEX_TOKEN}"),
                           secrets=[CODEX_TOKEN])
    gateway.records.submit(record(3, status=500, error="Bearer sk-ant-oat01-token-aaaa leaked?"))
    gateway.records.submit(record(4, stream=True))
    assert gateway.records.flush()
    return gateway


async def test_logs_newest_first(mgmt: Management, logged: Gateway) -> None:
    reply = await mgmt.handle("GET", "/logs", {})
    assert reply.status == 200
    no_secrets(reply)
    assert reply.body["count"] == 4
    assert [e["requestId"] for e in reply.body["logs"]] == ["req-4", "req-3", "req-2", "req-1"]
    first = reply.body["logs"][0]
    assert first["method"] == "POST"
    assert first["path"] == "/v1/messages"
    assert first["status"] == 200
    assert first["model"] == "claude-sonnet-4"
    assert first["metadata"]["stream"] is True
    assert first["metadata"]["input_tokens"] == 4
    assert first["metadata"]["output_tokens"] == 8
    assert first["timestamp"].endswith("+00:00")


async def test_logs_limit(mgmt: Management, logged: Gateway) -> None:
    reply = await mgmt.handle("GET", "/logs", {"limit": "2"})
    assert [e["requestId"] for e in reply.body["logs"]] == ["req-4", "req-3"]
    assert (await mgmt.handle("GET", "/logs", {"limit": "0"})).body["count"] == 1
    bad = await mgmt.handle("GET", "/logs", {"limit": "many"})
    assert bad.status == 400


async def test_logs_by_provider(mgmt: Management, logged: Gateway) -> None:
    reply = await mgmt.handle("GET", "/logs/provider/codex", {})
    assert reply.status == 200
    no_secrets(reply)
    assert reply.body["provider"] == "codex"
    [entry] = reply.body["logs"]
    assert entry["requestId"] == "req-2"
    assert "[REDACTED]" in entry["error"]


@pytest.mark.parametrize(
    ("status", "ids"),
    [("2xx", ["req-4", "req-1"]), ("4xx", ["req-2"]), ("5xx", ["req-3"]),
     ("errors", ["req-3", "req-2"]), ("3xx", [])],
)
async def test_logs_by_status(mgmt: Management, logged: Gateway, status: str, ids: list[str]) -> None:
    reply = await mgmt.handle("GET", f"/logs/status/{status}", {})
    assert reply.status == 200
    assert reply.body["range"] == status
    assert [e["requestId"] for e in reply.body["logs"]] == ids
    no_secrets(reply)


async def test_log_by_id(mgmt: Management, logged: Gateway) -> None:
    reply = await mgmt.handle("GET", "/logs/req-3", {})
    assert reply.status == 200
    assert reply.body["requestId"] == "req-3"
    assert reply.body["status"] == 500
    no_secrets(reply)
    assert (await mgmt.handle("GET", "/logs/req-999", {})).status == 404


async def test_clear_logs(mgmt: Management, logged: Gateway) -> None:
    reply = await mgmt.handle("DELETE", "/logs", {})
    assert reply.body == {"success": True, "deleted": 4}
    assert (await mgmt.handle("GET", "/logs", {})).body["count"] == 0
    assert (await mgmt.handle("GET", "/health", {})).body["records"] == 0


async def test_every_route_is_secret_free(mgmt: Management, logged: Gateway) -> None:
    for method, path in [("GET", "/health"), ("GET", "/ready"), ("GET", "/auth"),
                         ("GET", "/auth/codex"), ("GET", "/logs"), ("GET", "/logs/req-2"),
                         ("GET", "/logs/status/errors"), ("DELETE", "/auth/codex-c@example.com.json")]:
        reply = await mgmt.handle(method, path, {})
        assert reply.status == 200, (method, path, reply.body)
        no_secrets(reply)
