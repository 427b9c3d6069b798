"""Usage figures from record rows, quota steering, metrics text and log redaction."""

from __future__ import annotations

import io
import json
import logging
import time
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from quotio_core.pool.cooldown import CooldownBook
from quotio_core.pool.credentials import Credential
from quotio_core.admin.logs import install
from quotio_core.admin.metrics import Metrics
from quotio_core.pool.quota import QUOTA_REASON, QuotaBook
from quotio_core.providers import QuotaReport, Window
from quotio_core.records import Record
from quotio_core.admin.usage_report import cliproxyapi_usage, parse_window, summarize

NOW = 1_800_000_000.0


def row(rid: str, ts: float, provider="claude", cred="c1", model="m", status=200, attempt=1,
        inp=10, out=5, latency=100.0, ttfb=20.0):
    return {"ts": ts, "request_id": rid, "client_key_id": "k", "provider": provider, "credential_id": cred,
            "model_requested": model, "status": status, "latency_ms": latency, "ttfb_ms": ttfb,
            "input_tokens": inp, "output_tokens": out, "cached_tokens": 0, "reasoning_tokens": 0, "attempt": attempt}


def test_a_failed_over_request_counts_once_with_its_final_outcome():
    rows = [
        row("r1", NOW - 60, cred="a", status=429, inp=0, out=0, latency=5),
        row("r1", NOW - 59, cred="b", status=200, attempt=2, latency=300),
        row("r2", NOW - 30, provider="codex", cred="x", model="gpt-5", status=500, inp=0, out=0, latency=50),
    ]
    s = summarize(rows, NOW - 3600, NOW, "1h")
    t = s["totals"]
    assert (t["requests"], t["errors"], t["attempts"]) == (2, 1, 3)
    assert t["input_tokens"] == 10 and t["output_tokens"] == 5 and t["total_tokens"] == 15
    assert t["latency_ms"]["p50"] == 50 and t["latency_ms"]["p95"] == 300
    by_cred = {c["credential_id"]: c for c in s["by_credential"]}
    assert by_cred["a"]["attempts"] == 1 and by_cred["a"]["requests"] == 0
    assert by_cred["b"]["requests"] == 1 and by_cred["b"]["provider"] == "claude"
    assert {p["provider"]: p["requests"] for p in s["by_provider"]} == {"claude": 1, "codex": 1}
    points = s["timeseries"]["points"]
    assert s["timeseries"]["bucket_seconds"] == 60
    assert sum(p["requests"] for p in points) == 2 and sum(p["tokens"] for p in points) == 15
    assert points[-1]["ts"] <= NOW


def test_a_client_hang_up_is_cancelled_not_an_error():
    rows = [
        row("r1", NOW - 60, status=499, inp=0, out=0),
        row("r2", NOW - 50, status=502),
        row("r3", NOW - 40),
    ]
    s = summarize(rows, NOW - 3600, NOW, "1h")
    t = s["totals"]
    assert (t["requests"], t["errors"], t["cancelled"], t["error_rate"]) == (3, 1, 1, 0.3333)
    assert s["by_provider"][0]["cancelled"] == 1
    assert sum(p["cancelled"] for p in s["timeseries"]["points"]) == 1
    assert cliproxyapi_usage(s, rows)["success_count"] == 1
    assert cliproxyapi_usage(s, rows)["failure_count"] == 1


def test_window_parsing():
    assert parse_window({}, NOW) == ("24h", NOW - 86400)
    assert parse_window({"window": "7d"}, NOW) == ("7d", NOW - 7 * 86400)
    assert parse_window({"since": "1700000000"}, NOW) == ("since", 1_700_000_000.0)
    assert parse_window({"since": "2023-11-14T22:13:20Z"}, NOW)[1] == 1_700_000_000.0
    with pytest.raises(ValueError, match="window must be one of"):
        parse_window({"window": "2y"}, NOW)


def cred(cid="claude-a.json") -> Credential:
    return Credential(id=cid, provider="claude", kind="oauth", source="file", secret="tok")


async def test_exhausted_window_cools_the_account_until_reset_and_room_lifts_it(monkeypatch):
    clock = [NOW]
    book_cd = CooldownBook(clock=lambda: clock[0])
    reports = [
        QuotaReport("ok", (Window("five_hour", 100, 100, 0.0, NOW + 1800), Window("seven_day", 40, 100, 60.0, NOW + 86400))),
        QuotaReport("ok", (Window("five_hour", 10, 100, 90.0, NOW + 1800),)),
    ]
    fetcher = SimpleNamespace(fetch=lambda ctx, c: _ret(reports.pop(0)))
    monkeypatch.setattr("quotio_core.pool.quota.fetcher_for", lambda provider: fetcher)
    config = SimpleNamespace(upstreams={}, headers_for=lambda p: {})
    c = cred()
    book = QuotaBook(config, lambda: [c], _ensure, book_cd, clock=lambda: clock[0])
    await book.fetch(c)
    blocked = book_cd.blocked(c.id, "any-model")
    assert blocked is not None and blocked.until == NOW + 1800 and blocked.reason.startswith(QUOTA_REASON)
    # A real error cooldown on another key is left alone by the lift.
    from quotio_core.pool.cooldown import Decision

    book_cd.cool(c.id, "m2", Decision(60, "model", "503 upstream", 503))
    await book.fetch(c)
    assert book_cd.blocked(c.id, "any-model") is None
    assert book_cd.blocked(c.id, "m2") is not None


async def test_per_model_window_cools_only_that_model(monkeypatch):
    cd = CooldownBook(clock=lambda: NOW)
    report = QuotaReport("ok", (Window("gemini-2.5-pro", remaining_pct=0.0, resets_at=NOW + 600, model="gemini-2.5-pro"),))
    monkeypatch.setattr("quotio_core.pool.quota.fetcher_for", lambda p: SimpleNamespace(fetch=lambda ctx, c: _ret(report)))
    c = cred()
    book = QuotaBook(SimpleNamespace(upstreams={}, headers_for=lambda p: {}), lambda: [c], _ensure, cd, clock=lambda: NOW)
    await book.fetch(c)
    assert cd.blocked(c.id, "gemini-2.5-pro") is not None
    assert cd.blocked(c.id, "gemini-2.5-flash") is None


async def test_provider_without_fetcher_is_unsupported_not_a_number(monkeypatch):
    monkeypatch.setattr("quotio_core.pool.quota.fetcher_for", lambda p: None)
    c = Credential(id="q.json", provider="qwen", kind="oauth", source="file", secret="t")
    book = QuotaBook(SimpleNamespace(upstreams={}, headers_for=lambda p: {}), lambda: [c], _ensure, CooldownBook())
    report = await book.fetch(c)
    assert report.status == "unsupported" and report.windows == ()


async def _ensure(c):
    return c


async def _ret(value):
    return value


def test_metrics_text_parses_and_counts_requests_once():
    m = Metrics()
    base = dict(ts=NOW, request_id="r", method="POST", route="/v1/messages", client_format="anthropic",
                provider="claude", credential_id="c", model_requested="m", latency_ms=120.0, ttfb_ms=30.0)
    m.observe(Record(status=429, **base), final=False)
    m.observe(Record(status=200, input_tokens=7, output_tokens=3, **base))
    m.observe(Record(status=499, **base))
    gw = SimpleNamespace(
        credentials=lambda: [cred()],
        cooldowns=CooldownBook(),
        breakers=SimpleNamespace(snapshot=lambda: {"c": {"state": "open"}}),
        quotas=SimpleNamespace(reports={"claude-a.json": QuotaReport("ok", (Window("five_hour", remaining_pct=42.0),))}),
    )
    families = {f.name: f for f in text_string_to_metric_families(m.render(gw).decode())}
    requests = [(s.labels, s.value) for s in families["quotio_requests"].samples if s.name.endswith("_total")]
    assert requests == [
        ({"provider": "claude", "model": "m", "status_class": "2xx"}, 1.0),
        ({"provider": "claude", "model": "m", "status_class": "4xx"}, 1.0),
    ]
    errors = [(s.labels, s.value) for s in families["quotio_errors"].samples if s.name.endswith("_total")]
    assert errors == [({"provider": "claude", "status": "429"}, 1.0)]
    cancelled = [s.value for s in families["quotio_cancelled"].samples if s.name.endswith("_total")]
    assert cancelled == [1.0]
    attempts = [s for s in families["quotio_upstream_attempts"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in attempts) == 3
    tokens = {s.labels["kind"]: s.value for s in families["quotio_tokens"].samples if s.name.endswith("_total")}
    assert tokens == {"input": 7.0, "output": 3.0}
    assert [s.value for s in families["quotio_quota_remaining_percent"].samples] == [42.0]
    assert [s.value for s in families["quotio_breaker_state"].samples] == [2.0]
    assert families["quotio_request_latency_seconds"].type == "histogram"


def test_json_logs_redact_known_secrets_and_token_shapes():
    out = io.StringIO()
    handler = install(lambda: ["sk-ant-oat01-secret-value"], stream=out)
    try:
        log = logging.getLogger("quotio_core.test")
        log.warning("refresh of %s failed: upstream said Bearer abcdefgh12345678 and %s", "c1", "sk-ant-oat01-secret-value")
    finally:
        for name in ("quotio", "quotio_core"):
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).propagate = True
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["level"] == "warning" and line["logger"] == "quotio_core.test"
    assert "sk-ant-oat01-secret-value" not in line["msg"] and "abcdefgh12345678" not in line["msg"]
    assert "c1" in line["msg"] and abs(line["ts"] - time.time()) < 60
