"""Management routes for usage and quotas, the Prometheus endpoint and the dashboard.

Usage comes from the request records (SQLite), so it survives restarts;
`POST /usage/reset` moves a baseline instead of deleting anything.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from . import dashboard
from .facade import GatewayView
from ..pool.quota import QuotaReport
from .metrics import Metrics
from .replies import Reply
from .usage_report import COLUMNS, cliproxyapi_usage, parse_window, summarize

__all__ = ["UsageRoutes"]

BASELINE_KEY = "usage_baseline"
Handler = Callable[..., Awaitable[Any]]


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


class UsageRoutes:
    def __init__(self, gateway: GatewayView, metrics: Metrics):
        self.gw = gateway
        self._metrics = metrics

    def routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        return [
            ("GET", re.compile(r"/usage"), self.usage),
            ("POST", re.compile(r"/usage/reset"), self.reset),
            ("GET", re.compile(r"/usage/quotas/all"), self.quotas),
            ("GET", re.compile(r"/usage/quotas/(?P<provider>[^/]+)"), self.quotas),
            ("GET", re.compile(r"/usage/(?P<provider>[^/]+)"), self.usage_provider),
            ("GET", re.compile(r"/metrics"), self.metrics),
            ("GET", re.compile(r"/dashboard"), self.dashboard),
        ]

    def _r(self, status: int, body: Any, content_type: str = "application/json"):
        return Reply(status, body, content_type)

    # --- usage -------------------------------------------------------------------
    def _baseline(self) -> float | None:
        value = self.gw.records.get_meta(BASELINE_KEY)
        return float(value) if value else None

    def _summary(self, query: Mapping[str, str], provider: str | None) -> dict[str, Any]:
        """Blocking: reads the records database (run it in a thread)."""
        now = time.time()
        window, since = parse_window(query, now)
        baseline = self._baseline()
        if baseline and query.get("all") not in ("true", "1"):
            since = max(since, baseline)
        self.gw.records.flush(timeout=2)
        rows = self.gw.records.rows_since(since, COLUMNS)
        summary = summarize(rows, since, now, window, provider)
        summary["baseline"] = _iso(baseline)
        return summary, [r for r in rows if provider in (None, r["provider"])]

    async def usage(self, query: Mapping[str, str]):
        try:
            summary, rows = await asyncio.to_thread(self._summary, query, None)
        except ValueError as e:
            return self._r(400, {"error": str(e)})
        t = summary["totals"]
        started = self.gw.started_at
        # The seed's fields and CLIProxyAPI's `usage` object sit beside ours,
        # so the quotio app and scripts written for either keep working.
        summary.update(
            {
                "totalRequests": t["requests"],
                "totalTokens": t["total_tokens"],
                "totalErrors": t["errors"],
                "totalCancelled": t["cancelled"],
                "avgLatencyMs": t["latency_ms"]["avg"] or 0,
                "byProvider": [
                    {"provider": p["provider"], "requests": p["requests"], "tokens": p["total_tokens"],
                     "errors": p["errors"], "cancelled": p["cancelled"], "avgLatencyMs": p["latency_ms"]["avg"] or 0}
                    for p in summary["by_provider"]
                ],
                "uptime": round(time.time() - started, 3),
                "startedAt": _iso(started),
                "usage": cliproxyapi_usage(summary, rows),
                "failed_requests": t["errors"],
            }
        )
        return self._r(200, summary)

    async def usage_provider(self, query: Mapping[str, str], provider: str):
        try:
            summary, _ = await asyncio.to_thread(self._summary, query, provider)
        except ValueError as e:
            return self._r(400, {"error": str(e)})
        t = summary["totals"]
        return self._r(
            200, {"provider": provider, "requests": t["requests"], "tokens": t["total_tokens"], **summary}
        )

    async def reset(self, query: Mapping[str, str], body: bytes):
        now = time.time()
        await asyncio.to_thread(self.gw.records.set_meta, BASELINE_KEY, repr(now))
        return self._r(200, {"success": True, "baseline": _iso(now), "records_kept": True})

    # --- quotas --------------------------------------------------------------------
    def _quota_entry(self, cred, report: QuotaReport | None) -> dict[str, Any]:
        report = report or QuotaReport("unsupported", error="not fetched yet", fetched_at=0)
        windows = [
            {**w, "resets_at": _iso(w["resets_at"]),
             "resets_in_seconds": max(0, round(w["resets_at"] - time.time())) if w["resets_at"] else None}
            for w in report.public()["windows"]
        ]
        known = [w for w in windows if w["remaining_pct"] is not None]
        tightest = min(known, key=lambda w: w["remaining_pct"]) if known else None
        cooling = self.gw.cooldowns.blocked(cred.id, "*")
        return {
            "id": cred.id,
            "provider": cred.provider,
            "email": cred.email,
            "label": cred.label,
            "status": report.status,
            "credential_status": cred.status,
            "plan": report.plan,
            "error": report.error or None,
            "fetched_at": _iso(report.fetched_at),
            "disabled": cred.disabled,
            "windows": windows,
            "remaining_pct": tightest["remaining_pct"] if tightest else None,
            # The seed's flat fields, from the tightest window.
            "quotaUsed": tightest["used"] if tightest else None,
            "quotaLimit": tightest["limit"] if tightest else None,
            "quotaResetAt": tightest["resets_at"] if tightest else None,
            "tier": report.plan,
            "cooldownUntil": _iso(cooling.until) if cooling else None,
        }

    async def quotas(self, query: Mapping[str, str], provider: str | None = None):
        if query.get("refresh") in ("true", "1"):
            await self.gw.quotas.refresh(force=True, provider=provider)
        creds = [c for c in self.gw.credentials() if provider in (None, c.provider)]
        entries = [self._quota_entry(c, self.gw.quotas.get(c.id)) for c in creds]
        return self._r(200, {"quotas": entries, "refresh_seconds": self.gw.quotas.interval})

    # --- metrics ---------------------------------------------------------
    async def metrics(self, query: Mapping[str, str]):
        text = self._metrics.render(self.gw)
        return self._r(200, text, "text/plain; version=0.0.4; charset=utf-8")

    # --- dashboard -----------------------------------------------------------
    async def dashboard(self, query: Mapping[str, str]):
        # The first call reads the package files.
        return self._r(200, await asyncio.to_thread(dashboard.page), dashboard.CONTENT_TYPE)
