"""Usage, metrics, overhead header and logs through the real gateway."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CLIENT_KEY, MGMT_KEY, claude_file
from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway

TOKEN = "sk-ant-oat01-usage-token-zzzz"
MGMT = {"authorization": f"Bearer {MGMT_KEY}"}
REPLY = "one two three four"  # four output tokens at the fake


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(REPLY) as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, up) -> Iterator[GatewayProcess]:
    config = {
        "api-keys": [CLIENT_KEY],
        "remote-management": {"secret-key": MGMT_KEY},
        "upstreams": {"claude": {"base-url": up.url}},
    }
    g = start_gateway(
        tmp_path_factory.mktemp("usage-gw"), config, confdir=confdir,
        auth_files={"claude-u@example.com.json": claude_file(TOKEN, "u@example.com")},
    )
    yield g
    g.stop()


def usage(gw: GatewayProcess, path: str = "/usage", **params) -> dict:
    r = httpx.get(f"{gw.url}/v0/management{path}", headers=MGMT, params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_usage_figures_equal_the_upstream_token_counts(gw, up):
    httpx.post(f"{gw.url}/v0/management/usage/reset", headers=MGMT, timeout=10).raise_for_status()
    time.sleep(0.01)
    oa = openai.OpenAI(base_url=f"{gw.url}/v1", api_key=CLIENT_KEY)
    an = anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY)
    oa.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "a b c"}])
    with an.messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "d e"}]) as s:
        "".join(s.text_stream)
    an.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "f"}])

    def settled():
        u = usage(gw, window="1h")
        return u if u["totals"]["requests"] == 3 else None

    deadline = time.monotonic() + 5
    while (u := settled()) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert u is not None, usage(gw, window="1h")["totals"]
    t = u["totals"]
    assert t["input_tokens"] == 3 + 2 + 1  # words of each prompt
    assert t["output_tokens"] == 3 * 4
    assert t["errors"] == 0 and t["latency_ms"]["p50"] > 0 and t["ttfb_ms"]["p95"] is not None
    assert [p["provider"] for p in u["by_provider"]] == ["claude"]
    assert u["by_credential"][0]["credential_id"] == "claude-u@example.com.json"
    assert u["by_model"][0]["model"] == "claude-sonnet-4-5"
    assert sum(p["tokens"] for p in u["timeseries"]["points"]) == 18
    # The seed's and CLIProxyAPI's shapes ride along.
    assert u["totalRequests"] == 3 and u["totalTokens"] == 18 and u["byProvider"][0]["requests"] == 3
    assert u["usage"]["total_requests"] == 3 and u["usage"]["success_count"] == 3
    per = usage(gw, "/usage/claude", window="1h")
    assert per["provider"] == "claude" and per["requests"] == 3 and per["tokens"] == 18

    # A reset moves the baseline; the records stay.
    httpx.post(f"{gw.url}/v0/management/usage/reset", headers=MGMT, timeout=10).raise_for_status()
    assert usage(gw, window="1h")["totals"]["requests"] == 0
    assert usage(gw, window="1h", all="true")["totals"]["requests"] >= 3
    bad = httpx.get(f"{gw.url}/v0/management/usage", headers=MGMT, params={"window": "2y"}, timeout=10)
    assert bad.status_code == 400 and "window" in bad.json()["error"]


def test_metrics_need_the_key_and_parse(gw):
    assert httpx.get(f"{gw.url}/metrics", timeout=10).status_code == 401
    openai.OpenAI(base_url=f"{gw.url}/v1", api_key=CLIENT_KEY).chat.completions.create(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}]
    )
    r = httpx.get(f"{gw.url}/metrics", headers=MGMT, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert {"quotio_requests", "quotio_tokens", "quotio_request_latency_seconds",
            "quotio_time_to_first_byte_seconds", "quotio_credential_up", "quotio_cooldown_seconds",
            "quotio_breaker_state", "quotio_quota_remaining_percent"} <= families.keys()
    ups = {s.labels["credential"]: s.value for s in families["quotio_credential_up"].samples}
    assert ups["claude-u@example.com.json"] == 1.0
    assert TOKEN not in r.text and CLIENT_KEY not in r.text


@pytest.mark.parametrize("stream", [False, True])
def test_every_response_carries_overhead_and_request_id(gw, stream):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 20, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{gw.url}/v1/messages", json=body, headers=headers, timeout=10) as r:
        r.read()
    assert r.status_code == 200
    overhead = float(r.headers["x-quotio-overhead-ms"])
    assert 0 <= overhead < 5000
    rid = r.headers["x-quotio-request-id"]
    assert rid
    logs = httpx.get(f"{gw.url}/v0/management/logs/{rid}", headers=MGMT, timeout=10)
    deadline = time.monotonic() + 5
    while logs.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.1)
        logs = httpx.get(f"{gw.url}/v0/management/logs/{rid}", headers=MGMT, timeout=10)
    assert logs.json()["requestId"] == rid
    # Answered by the gateway itself: the whole time is overhead.
    mgmt = httpx.get(f"{gw.url}/v0/management/pool", headers=MGMT, timeout=10)
    assert float(mgmt.headers["x-quotio-overhead-ms"]) >= 0


def test_logs_are_json_lines_without_secrets(gw):
    lines = [ln for ln in gw.log().splitlines() if ln.startswith("{")]
    parsed = [json.loads(ln) for ln in lines]
    assert any(p["logger"] == "quotio" and "credentials" in p["msg"] for p in parsed)
    text = gw.log()
    for secret in (TOKEN, CLIENT_KEY, MGMT_KEY, "rt-" + TOKEN):
        assert secret not in text
