"""Usage figures computed from the request records (nothing kept only in memory).

One client request may have several rows (the gateway's failover attempts
share its request id); it counts once, with the outcome of its last attempt,
while tokens and attempts are summed over all its rows. Percentiles are
nearest-rank over the window's rows. A request the client hung up on
(status 499, nginx's convention) is counted as cancelled, not as an error:
the client chose to leave, nothing failed.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["CANCELLED", "WINDOWS", "Totals", "is_error", "parse_window", "summarize"]

CANCELLED = 499

WINDOWS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
# Chart buckets per window: about 24–60 points each.
_BUCKETS = {3600: 60, 86400: 3600, 7 * 86400: 6 * 3600, 30 * 86400: 86400}

COLUMNS = (
    "ts", "request_id", "client_key_id", "provider", "credential_id", "model_requested", "status",
    "latency_ms", "ttfb_ms", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "attempt",
)


def parse_window(query: Mapping[str, str], now: float | None = None) -> tuple[str, float]:
    """(label, since) from `?window=1h|24h|7d|30d` or `?since=<unix or ISO>`; 24h by default."""
    now = time.time() if now is None else now
    if since := query.get("since"):
        try:
            ts = float(since)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError as e:
                raise ValueError(f"since must be unix seconds or ISO 8601, got {since!r}") from e
            ts = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        return "since", ts
    label = query.get("window", "24h")
    if label not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    return label, now - WINDOWS[label]


def is_error(status: int) -> bool:
    return (status >= 400 or status == 0) and status != CANCELLED


def _pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 3)


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    cancelled: int = 0
    attempts: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)

    def add_attempt(self, row: Mapping[str, Any]) -> None:
        self.attempts += 1
        self.input_tokens += row["input_tokens"] or 0
        self.output_tokens += row["output_tokens"] or 0
        self.cached_tokens += row["cached_tokens"] or 0
        self.reasoning_tokens += row["reasoning_tokens"] or 0

    def add_request(self, final: Mapping[str, Any]) -> None:
        self.requests += 1
        if final["status"] == CANCELLED:
            self.cancelled += 1
        elif is_error(final["status"]):
            self.errors += 1
        if final["latency_ms"] is not None:
            self.latencies.append(final["latency_ms"])
        if final["ttfb_ms"] is not None:
            self.ttfbs.append(final["ttfb_ms"])

    def public(self) -> dict[str, Any]:
        lat, ttfb = sorted(self.latencies), sorted(self.ttfbs)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "cancelled": self.cancelled,
            "attempts": self.attempts,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "latency_ms": {
                "p50": _pct(lat, 50), "p95": _pct(lat, 95),
                "avg": round(sum(lat) / len(lat), 3) if lat else None,
            },
            "ttfb_ms": {"p50": _pct(ttfb, 50), "p95": _pct(ttfb, 95)},
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def summarize(
    rows: Iterable[Mapping[str, Any]], since: float, now: float, window: str, provider: str | None = None
) -> dict[str, Any]:
    """Totals, breakdowns (provider, credential, model) and a time series for the rows given."""
    rows = [r for r in rows if provider in (None, r["provider"])]
    by_request: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_request[r["request_id"]].append(r)
    total = Totals()
    groups: dict[str, dict[Any, Totals]] = {"provider": {}, "credential": {}, "model": {}}
    span = max(now - since, 1.0)
    bucket = next((b for w, b in sorted(_BUCKETS.items()) if span <= w), 86400)
    series: dict[int, dict[str, Any]] = {}

    def keys(r: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "provider": r["provider"] or "gateway",
            "credential": (r["credential_id"] or "-", r["provider"] or "gateway"),
            "model": r["model_requested"] or "-",
        }

    for attempts in by_request.values():
        attempts.sort(key=lambda r: (r["attempt"] or 1, r["ts"]))
        final = attempts[-1]
        for r in attempts:
            total.add_attempt(r)
            for g, k in keys(r).items():
                groups[g].setdefault(k, Totals()).add_attempt(r)
        total.add_request(final)
        for g, k in keys(final).items():
            groups[g].setdefault(k, Totals()).add_request(final)
        start = int(attempts[0]["ts"] // bucket * bucket)
        point = series.setdefault(start, _point(start))
        tokens = sum((r["input_tokens"] or 0) + (r["output_tokens"] or 0) for r in attempts)
        point["requests"] += 1
        point["errors"] += is_error(final["status"])
        point["cancelled"] += final["status"] == CANCELLED
        point["tokens"] += tokens
        p, m = keys(final)["provider"], keys(final)["model"]
        for name, key in (("by_provider", p), ("by_model", m)):
            slot = point[name].setdefault(key, {"requests": 0, "tokens": 0})
            slot["requests"] += 1
            slot["tokens"] += tokens

    def listing(group: str, label: str) -> list[dict[str, Any]]:
        out = []
        for k, t in sorted(groups[group].items(), key=lambda kv: -kv[1].requests):
            entry = {label: k[0] if group == "credential" else k, **t.public()}
            if group == "credential":
                entry["provider"] = k[1]
            out.append(entry)
        return out

    first = int(since // bucket * bucket)
    points = [series.get(ts) or _point(ts) for ts in range(first, int(now) + 1, bucket)]
    return {
        "window": window,
        "since": _iso(since),
        "until": _iso(now),
        "totals": total.public(),
        "by_provider": listing("provider", "provider"),
        "by_credential": listing("credential", "credential_id"),
        "by_model": listing("model", "model"),
        "timeseries": {"bucket_seconds": bucket, "points": points},
    }


def _point(ts: int) -> dict[str, Any]:
    return {"ts": ts, "requests": 0, "errors": 0, "cancelled": 0, "tokens": 0, "by_provider": {}, "by_model": {}}


def cliproxyapi_usage(summary: Mapping[str, Any], rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """CLIProxyAPI's (≤ 6.9) `usage` object, which the quotio desktop app reads."""
    by_day: dict[str, int] = defaultdict(int)
    by_hour: dict[str, int] = defaultdict(int)
    tok_day: dict[str, int] = defaultdict(int)
    tok_hour: dict[str, int] = defaultdict(int)
    apis: dict[str, dict[str, Any]] = {}
    for r in rows:
        when = datetime.fromtimestamp(r["ts"], UTC)
        tokens = (r["input_tokens"] or 0) + (r["output_tokens"] or 0)
        day, hour = when.strftime("%Y-%m-%d"), when.strftime("%H")
        by_day[day] += 1
        by_hour[hour] += 1
        tok_day[day] += tokens
        tok_hour[hour] += tokens
        api = apis.setdefault(r["client_key_id"] or "default", {"total_requests": 0, "total_tokens": 0, "models": {}})
        api["total_requests"] += 1
        api["total_tokens"] += tokens
        model = api["models"].setdefault(r["model_requested"] or "-", {"total_requests": 0, "total_tokens": 0})
        model["total_requests"] += 1
        model["total_tokens"] += tokens
    t = summary["totals"]
    return {
        "total_requests": t["requests"],
        # A hang-up is neither: CLIProxyAPI's app adds the two up to the total.
        "success_count": t["requests"] - t["errors"] - t["cancelled"],
        "failure_count": t["errors"],
        "total_tokens": t["total_tokens"],
        "requests_by_day": dict(by_day),
        "requests_by_hour": dict(by_hour),
        "tokens_by_day": dict(tok_day),
        "tokens_by_hour": dict(tok_hour),
        "apis": apis,
    }
