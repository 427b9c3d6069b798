"""What happens around the traffic must not disturb it: auth files changing,
the records database going away, the gateway killed in a token refresh.

Each test drives the real mitmdump with the official SDK while the operation
happens, and checks that every request was served and nothing was lost.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.conftest import CLIENT_KEY, MGMT_KEY, claude_file
from tests.fakes.oauth import CLAUDE_CLIENT, FakeAuthServer, upstream_overrides
from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway, wait_ready

MODEL = "claude-sonnet-4-5"


def ask(gw: GatewayProcess, stream: bool = False) -> str:
    with anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0, timeout=20) as client:
        kw = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            with client.messages.stream(**kw) as s:
                return s.get_final_message().content[0].text
        return client.messages.create(**kw).content[0].text


def record_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT count(*) FROM requests WHERE route NOT LIKE '/v0/%'").fetchone()[0]
    except sqlite3.Error:
        return -1


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def health(gw: GatewayProcess) -> dict:
    return httpx.get(gw.url + "/v0/management/health", headers={"authorization": f"Bearer {MGMT_KEY}"}).json()


def test_auth_files_changing_under_traffic_cost_no_request(tmp_path, confdir):
    """A refresh rewriting one file, another rewritten from outside, a third added and removed."""
    with FakeAuthServer(CLAUDE_CLIENT) as auth, \
            FakeUpstream("served", require_auth=auth.access_check(), stream_delay=0.01) as api:
        ups = upstream_overrides(auth)
        ups["claude"]["base-url"] = api.url
        tokens = [auth.issue(CLAUDE_CLIENT.client_id) for _ in range(3)]
        expiring = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        gw = start_gateway(
            tmp_path,
            {"api-keys": [CLIENT_KEY], "remote-management": {"secret-key": MGMT_KEY}, "upstreams": ups,
             "oauth": {"refresh-check-seconds": 0.2}},
            auth_files={
                # Expires in a second: the background refresher rewrites it mid-traffic.
                "claude-r.json": claude_file(tokens[0]["access_token"], "r@example.com",
                                             refresh_token=tokens[0]["refresh_token"], expired=expiring),
                "claude-a.json": claude_file(tokens[1]["access_token"], "a@example.com",
                                             refresh_token=tokens[1]["refresh_token"]),
            },
            confdir=confdir,
        )
        try:
            stop = threading.Event()

            def churn() -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    data = claude_file(tokens[1]["access_token"], "a@example.com",
                                       refresh_token=tokens[1]["refresh_token"], note=f"rewrite {n}")
                    gw.write_auth("claude-a.json", data)
                    if n % 3 == 0:
                        gw.write_auth("claude-c.json", claude_file(tokens[2]["access_token"], "c@example.com",
                                                                   refresh_token=tokens[2]["refresh_token"]))
                    elif n % 3 == 2:
                        (gw.auth_dir / "claude-c.json").unlink(missing_ok=True)
                    time.sleep(0.03)

            outcomes: list[str] = []

            def traffic() -> None:
                for i in range(30):
                    try:
                        outcomes.append(ask(gw, stream=i % 2 == 0))
                    except Exception as e:  # noqa: BLE001 - every failure is reported below
                        outcomes.append(f"{type(e).__name__}: {e}")

            before = auth.refresh_calls
            threads = [threading.Thread(target=churn), threading.Thread(target=traffic),
                       threading.Thread(target=traffic)]
            for t in threads:
                t.start()
            threads[1].join(60)
            threads[2].join(60)
            stop.set()
            threads[0].join(10)
            assert outcomes == ["served"] * 60, [o for o in outcomes if o != "served"]
            assert auth.refresh_calls - before >= 1, "the refresh did not happen during the traffic"
            refreshed = json.loads((gw.auth_dir / "claude-r.json").read_text())
            assert refreshed["access_token"] != tokens[0]["access_token"]
            wait_for(lambda: record_count(tmp_path / "quotio.db") == 60, 10, "60 records")
        finally:
            gw.stop()


LOCKER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
"""


def test_a_locked_records_database_costs_no_request_and_no_record(tmp_path, confdir):
    with FakeUpstream("served") as api:
        gw = start_gateway(
            tmp_path,
            {"api-keys": [CLIENT_KEY], "remote-management": {"secret-key": MGMT_KEY},
             "upstreams": {"claude": {"base-url": api.url}}},
            auth_files={"claude-a.json": claude_file("sk-ant-oat01-locked", "a@example.com")},
            confdir=confdir,
        )
        db = tmp_path / "quotio.db"
        try:
            assert ask(gw) == "served"
            wait_for(lambda: record_count(db) == 1, 10, "the first record")
            # Another process holds the write lock longer than the writer's busy timeout.
            locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), "8"], stdout=subprocess.PIPE, text=True)
            assert locker.stdout.readline().strip() == "locked"
            for i in range(20):
                started = time.monotonic()
                assert ask(gw, stream=i % 2 == 0) == "served"
                assert time.monotonic() - started < 2, "serving waited on the database"
            wait_for(lambda: health(gw)["records_store"]["ok"] is False, 10, "health to say records are held")
            assert health(gw)["records_store"]["pending"] >= 1
            locker.wait(20)
            # Everything held back is written once the lock is gone.
            wait_for(lambda: record_count(db) == 21, 30, "21 records after the lock")
            wait_for(lambda: health(gw)["records_store"]["ok"] is True, 10, "health to recover")
        finally:
            gw.stop()


def test_a_records_database_that_cannot_be_opened_does_not_stop_serving(tmp_path, confdir):
    blocker = tmp_path / "records"
    blocker.write_text("a file where the records directory should be")
    db = blocker / "quotio.db"
    with FakeUpstream("served") as api:
        gw = start_gateway(
            tmp_path,
            {"api-keys": [CLIENT_KEY], "remote-management": {"secret-key": MGMT_KEY},
             "upstreams": {"claude": {"base-url": api.url}}, "records-db": str(db)},
            auth_files={"claude-a.json": claude_file("sk-ant-oat01-nodb", "a@example.com")},
            confdir=confdir,
        )
        try:
            for i in range(5):
                assert ask(gw, stream=i % 2 == 1) == "served"
            status = health(gw)["records_store"]
            assert status["ok"] is False and status["pending"] == 5
            blocker.unlink()
            blocker.mkdir()
            wait_for(lambda: record_count(db) == 5, 30, "the 5 held records")
        finally:
            gw.stop()


@pytest.mark.parametrize("kill_after", [0.05, 0.25, 0.3, 0.33, 0.4, 0.8])
def test_kill_9_during_a_token_refresh_leaves_the_old_file_or_the_new(tmp_path, confdir, kill_after):
    with FakeAuthServer(CLAUDE_CLIENT) as auth, FakeUpstream("served", require_auth=auth.access_check()) as api:
        auth.token_delay = 0.3
        ups = upstream_overrides(auth)
        ups["claude"]["base-url"] = api.url
        tokens = auth.issue(CLAUDE_CLIENT.client_id)
        old = claude_file(tokens["access_token"], "k@example.com", refresh_token=tokens["refresh_token"],
                          expired=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())
        config = {"api-keys": [CLIENT_KEY], "upstreams": ups, "oauth": {"refresh-check-seconds": 3600},
                  "remote-management": {"secret-key": MGMT_KEY}}
        gw = start_gateway(tmp_path, config, auth_files={"claude-k.json": old}, confdir=confdir)
        path = gw.auth_dir / "claude-k.json"
        try:
            # The request finds the token expired and refreshes it first.
            asker = threading.Thread(target=lambda: _ignore(lambda: ask(gw)))
            asker.start()
            time.sleep(kill_after)
            os.kill(gw.proc.pid, signal.SIGKILL)
            gw.proc.wait(10)
            asker.join(30)
            on_disk = json.loads(path.read_text())  # whole JSON, never truncated
            assert on_disk == old or (
                on_disk["access_token"] in auth.valid_access_tokens and on_disk["access_token"] != old["access_token"]
            )
            assert oct(path.stat().st_mode & 0o777) in ("0o600", "0o644")
            # A restarted gateway reads whichever file it finds. (When the kill
            # came after the server rotated the refresh token but before the
            # answer arrived, that account needs a login: nothing on disk could help.)
            gw.proc = subprocess.Popen(gw.proc.args, cwd=tmp_path, env=_env(gw),
                                       stdout=gw.log_path.open("a"), stderr=subprocess.STDOUT)
            wait_ready(gw)
            try:
                assert ask(gw) == "served"
            except anthropic.NotFoundError:
                assert json.loads(path.read_text()).get("needs_login") is True
        finally:
            gw.stop()


def _ignore(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - the gateway is killed under this request on purpose
        pass


def _env(gw: GatewayProcess) -> dict[str, str]:
    return {
        **os.environ, "HOME": str(gw.root), "QUOTIO_CONFIG": str(gw.config_path), "QUOTIO_CONFIG_DIR": str(gw.root),
        "QUOTIO_AUTH_DIR": str(gw.auth_dir), "QUOTIO_HOST": "127.0.0.1", "QUOTIO_PORT": str(gw.port),
    }
