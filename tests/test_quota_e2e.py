"""Quotas through the real gateway: fetched in the background, cached, steering the pool."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import CLIENT_KEY, MGMT_KEY, claude_file
from tests.fakes.quota import FakeQuota
from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway

MGMT = {"authorization": f"Bearer {MGMT_KEY}"}
TOK_A, TOK_B = "sk-ant-oat01-quota-aaaa", "sk-ant-oat01-quota-bbbb"
TOK_CODEX = "codex-access-quota-cccc"


@pytest.fixture(scope="module")
def quota() -> Iterator[FakeQuota]:
    with FakeQuota() as fake:
        fake.add("claude", TOK_A)
        fake.add("claude", TOK_B)
        fake.add("codex", TOK_CODEX, account_id="acct-q")
        yield fake


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream("quota-steered answer") as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, quota, up) -> Iterator[GatewayProcess]:
    ups = quota.upstreams
    ups["claude"]["base-url"] = up.url
    config = {
        "api-keys": [CLIENT_KEY],
        "remote-management": {"secret-key": MGMT_KEY},
        "upstreams": {"claude": ups["claude"], "codex": ups["codex"]},
        "routing": {"strategy": "round-robin"},
        "quota-refresh-seconds": 1,
        # A plain API key has no subscription window to report.
        "claude-api-key": [{"api-key": "sk-ant-api03-quota-key", "prefix": "key"}],
    }
    files = {
        "claude-a.json": claude_file(TOK_A, "a@example.com"),
        "claude-b.json": claude_file(TOK_B, "b@example.com"),
        "codex-q.json": {"type": "codex", "email": "q@example.com", "access_token": TOK_CODEX,
                         "refresh_token": "rt-q", "account_id": "acct-q", "expired": "2099-01-01T00:00:00Z"},
    }
    g = start_gateway(tmp_path_factory.mktemp("quota-gw"), config, confdir=confdir, auth_files=files)
    yield g
    g.stop()


def quotas(gw: GatewayProcess, **params) -> dict[str, dict]:
    r = httpx.get(f"{gw.url}/v0/management/usage/quotas/all", headers=MGMT, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return {q["id"]: q for q in r.json()["quotas"]}


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (v := pred()):
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_quotas_are_fetched_in_the_background_and_cached(gw, quota):
    q = wait_for(lambda: (q := quotas(gw)) and all(q[i]["status"] == "ok" for i in ("claude-a.json", "codex-q.json")) and q,
                 what="first background fetch")
    a = q["claude-a.json"]
    names = {w["name"] for w in a["windows"]}
    assert {"five_hour", "seven_day"} <= names
    five = next(w for w in a["windows"] if w["name"] == "five_hour")
    assert 0 <= five["remaining_pct"] <= 100 and five["resets_at"] and a["fetched_at"]
    assert q["codex-q.json"]["plan"] == "plus"
    # Cached: reading twice does not call the provider again within the refresh interval.
    n = len(quota.requests)
    quotas(gw)
    assert len(quota.requests) - n <= 3  # at most the background round that may be under way
    # On demand.
    before = len(quota.requests)
    quotas(gw, refresh="true")
    assert len(quota.requests) >= before + 3


def test_exhausted_window_cools_the_account_before_any_429_and_a_reset_brings_it_back(gw, quota, up):
    up.clear()
    quota.exhaust(TOK_A, "five_hour", resets_in=3600)
    q = wait_for(lambda: (q := quotas(gw))["claude-a.json"]["cooldownUntil"] and q, what="quota cooldown")
    assert q["claude-a.json"]["remaining_pct"] == 0
    pool = httpx.get(f"{gw.url}/v0/management/pool", headers=MGMT, timeout=10).json()
    assert any(c["credential_id"] == "claude-a.json" and "quota window exhausted" in c["reason"] for c in pool["cooldowns"])
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    for _ in range(4):
        client.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    used = [r.headers.get("authorization", "")[7:] for r in up.requests]
    assert used == [TOK_B] * 4  # the exhausted account got no request, so no 429 either

    quota.set_used(TOK_A, "five_hour", 10.0)  # the window reset
    wait_for(lambda: quotas(gw)["claude-a.json"]["cooldownUntil"] is None, what="cooldown lifted")
    up.clear()
    for _ in range(4):
        client.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    assert {r.headers.get("authorization", "")[7:] for r in up.requests} == {TOK_A, TOK_B}


def test_forbidden_account_is_marked_and_unsupported_providers_say_so(gw, quota):
    quota.fail(TOK_B, 403)
    try:
        q = wait_for(lambda: (q := quotas(gw, refresh="true"))["claude-b.json"]["status"] == "forbidden" and q,
                     what="forbidden")
        assert q["claude-b.json"]["windows"] == []
    finally:
        quota.fail(TOK_B, None)
    q = quotas(gw, refresh="true")
    key = q["claude-api-key[0]"]
    assert key["status"] == "unsupported" and key["windows"] == [] and key["remaining_pct"] is None


def test_metrics_show_quota_remaining(gw):
    r = httpx.get(f"{gw.url}/metrics", headers=MGMT, timeout=10)
    assert 'quotio_quota_remaining_percent{credential="claude-a.json"' in r.text
