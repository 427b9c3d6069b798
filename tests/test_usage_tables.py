"""The terminal tables of `quotio usage` and `quotio quotas`, from API-shaped JSON."""

from __future__ import annotations

import pytest

from quotio_core.admin.usage_tables import account_status, duration, quota_tables, table, usage_tables


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (-3, "now"), (0, "now"), (0.4, "now"), (42, "42s"), (61, "1m 1s"), (3 * 3600 + 125, "3h 2m"),
     (4 * 86400 - 5, "3d 23h"), (9 * 86400, "9d 0h")],
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_table_aligns_text_left_and_numbers_right():
    out = table(("NAME", "N", "NOTE"), [("a", 5, "x"), ("long-name", 1234, None)], "lrl")
    assert out.splitlines() == [
        "NAME          N  NOTE",
        "a             5  x",
        "long-name  1234  -",
    ]


def _totals(**kw):
    base = {
        "requests": 0, "errors": 0, "error_rate": 0.0, "attempts": 0, "input_tokens": 0, "output_tokens": 0,
        "cached_tokens": 0, "reasoning_tokens": 0, "total_tokens": 0,
        "latency_ms": {"p50": None, "p95": None, "avg": None}, "ttfb_ms": {"p50": None, "p95": None},
    }
    return {**base, **kw}


def test_usage_without_requests_says_so():
    summary = {"window": "since", "since": "2025-01-01T00:00:00+00:00", "until": "2025-01-02T00:00:00+00:00",
               "baseline": "2025-01-01T00:00:00+00:00", "totals": _totals(),
               "by_provider": [], "by_credential": [], "by_model": []}
    out = usage_tables(summary)
    assert out.splitlines()[0] == "Usage (2025-01-01T00:00:00+00:00 to 2025-01-02T00:00:00+00:00)"
    assert "Latency: p50 -, p95 -; first byte: p50 -, p95 -" in out
    assert "Counted from the reset at 2025-01-01T00:00:00+00:00" in out
    assert out.endswith("\n\nNo requests in this window.")


def test_usage_rows_carry_every_figure():
    row = _totals(requests=1200, errors=3, error_rate=0.0025, cancelled=4, attempts=1210, input_tokens=1_500_000,
                  output_tokens=2000, cached_tokens=7, total_tokens=1_502_000,
                  latency_ms={"p50": 812.4, "p95": 2400.0, "avg": 900}, ttfb_ms={"p50": 95.5, "p95": 300})
    summary = {"window": "7d", "since": "s", "until": "u", "totals": row,
               "by_provider": [{"provider": "claude", **row}],
               "by_credential": [{"credential_id": "claude-a.json", "provider": "claude", **row}],
               "by_model": [{"model": "claude-opus-4", **row}]}
    out = usage_tables(summary)
    assert "Usage, last 7d (s to u)" in out
    assert "Requests: 1,200 (1,210 attempts), errors: 3 (0.2%), cancelled by the client: 4" in out
    assert "Latency: p50 812 ms, p95 2,400 ms; first byte: p50 96 ms, p95 300 ms" in out
    figures = "3        0.2%          4  1,500,000       2,000       7  812 ms  2,400 ms     96 ms"
    assert f"\nclaude       1,200       {figures}\n" in out
    assert f"\nclaude-a.json  claude       1,200       {figures}\n" in out
    assert out.endswith(f"\nclaude-opus-4     1,200       {figures}")


def _quota(id_, **kw):
    base = {"id": id_, "provider": "claude", "email": "", "label": id_, "status": "ok", "credential_status": "ready",
            "plan": None, "error": None, "disabled": False, "windows": []}
    return {**base, **kw}


EMPTY_POOL = {"cooldowns": [], "breakers": {}}


@pytest.mark.parametrize(
    ("quota", "pool", "status"),
    [
        (_quota("a"), EMPTY_POOL, "ready"),
        (_quota("a", credential_status="expired"), EMPTY_POOL, "expired"),
        (_quota("a", disabled=True, credential_status="disabled"),
         {"cooldowns": [], "breakers": {"a": {"state": "open"}}}, "disabled"),
        (_quota("a", credential_status="needs-login"), {"cooldowns": [], "breakers": {"a": {"state": "open"}}},
         "needs-login"),
        (_quota("a"), {"cooldowns": [{"credential_id": "a", "scope": "account"}], "breakers": {"a": {"state": "open"}}},
         "breaker open"),
        (_quota("a"), {"cooldowns": [{"credential_id": "a", "scope": "account"}], "breakers": {}}, "cooling"),
        # A model's cooldown leaves the account usable for the others.
        (_quota("a"), {"cooldowns": [{"credential_id": "a", "scope": "model"}], "breakers": {}}, "ready"),
        (_quota("a"), {"cooldowns": [], "breakers": {"a": {"state": "half_open"}}}, "ready"),
    ],
)
def test_account_status(quota, pool, status):
    assert account_status(quota, pool) == status


QUOTA_TABLE = """\
PROVIDER        ACCOUNT            STATUS        PLAN        WINDOW                     LEFT                USED  RESETS IN  NOTE
github-copilot  me@example.com     breaker open  individual  premium_interactions        60%  120 / 300 requests     12d 0h
                                                             chat                          ?                   -          -
gemini          g@example.com      ready         -           requests (gemini-2.5-pro)   <1%               99.5%        59s
claude          claude-api-key[0]  ready         -           -                             -                   -          -  quota unsupported: API keys have no subscription quota

Cooling and broken:
CREDENTIAL      STATE                   REASON               WHEN
g@example.com   cooling gemini-2.5-pro  429 rate limited     ends in 30s
me@example.com  breaker open            5 failures in a row  probe in 12s
127.0.0.1:9     breaker half-open       5 failures in a row  probing"""


def test_quota_table_units_models_and_trouble():
    copilot = _quota(
        "github-copilot-me.json", provider="github-copilot", email="me@example.com", plan="individual",
        windows=[
            {"name": "premium_interactions", "used": 120, "limit": 300, "remaining_pct": 60.0, "unit": "requests",
             "model": None, "resets_in_seconds": 86400 * 12},
            {"name": "chat", "used": None, "limit": None, "remaining_pct": None, "unit": "requests",
             "model": None, "resets_in_seconds": None},
        ],
    )
    gemini = _quota(
        "gemini-me.json", provider="gemini", email="g@example.com",
        windows=[{"name": "requests", "used": 99.5, "limit": 100, "remaining_pct": 0.5, "unit": "percent",
                  "model": "gemini-2.5-pro", "resets_in_seconds": 59}],
    )
    key = _quota("claude-api-key[0]", status="unsupported", error="API keys have no subscription quota")
    pool = {
        "cooldowns": [{"credential_id": "gemini-me.json", "model": "gemini-2.5-pro", "scope": "model",
                       "reason": "429 rate limited", "reset_seconds": 30.2}],
        "breakers": {
            "github-copilot-me.json": {"state": "open", "failures": 5, "remaining": 12.0},
            "127.0.0.1:9": {"state": "half_open", "failures": 5, "remaining": 0.0},
            "claude-api-key[0]": {"state": "closed", "failures": 1, "remaining": 0.0},
        },
    }
    out = quota_tables({"quotas": [key, copilot, gemini]}, pool)
    # Accounts with windows first; a model's window names it; non-percent units show used / limit.
    assert out == QUOTA_TABLE


def test_quota_table_without_accounts_or_trouble():
    assert quota_tables({"quotas": []}, EMPTY_POOL) == "No accounts in the pool."
    assert quota_tables({"quotas": [_quota("a")]}, EMPTY_POOL).endswith("\n\nEvery credential is ready.")
