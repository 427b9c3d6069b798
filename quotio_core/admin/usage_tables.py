"""`quotio usage` and `quotio quotas` as terminal tables, from the management API's JSON.

The figures and the account status rule are the dashboard's
(static/dashboard.js), so the terminal and the browser never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["account_status", "duration", "quota_tables", "table", "usage_tables"]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "l") -> str:
    """Aligned columns: `align` has an "l" or "r" per column; columns past its
    end are flush right (numbers)."""
    cells = [[str(h) for h in headers], *([("-" if v is None else str(v)) for v in row] for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    sides = align + "r" * len(headers)
    lines = []
    for row in cells:
        out = [v.rjust(w) if sides[i] == "r" else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(out).rstrip())
    return "\n".join(lines)


def num(n: Any) -> str:
    return f"{n or 0:,}"


def ms(v: float | None) -> str:
    return "-" if v is None else f"{round(v):,} ms"


def pct(rate: float | None) -> str:
    return f"{(rate or 0) * 100:.1f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = math.floor(seconds + 0.5)  # JavaScript's Math.round, as on the dashboard
    if s <= 0:
        return "now"
    d, hr, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if d:
        return f"{d}d {hr}h"
    if hr:
        return f"{hr}h {m}m"
    if m:
        return f"{m}m {s % 60}s"
    return f"{s}s"


# --- usage ---------------------------------------------------------------------------
_BREAKDOWN = ("REQUESTS", "ERRORS", "ERROR RATE", "CANCELLED", "TOKENS IN", "TOKENS OUT", "CACHED", "P50", "P95", "TTFB P50")


def _figures(e: Mapping[str, Any]) -> list[str]:
    return [
        num(e["requests"]), num(e["errors"]), pct(e["error_rate"]), num(e.get("cancelled", 0)), num(e["input_tokens"]),
        num(e["output_tokens"]), num(e["cached_tokens"]), ms(e["latency_ms"]["p50"]),
        ms(e["latency_ms"]["p95"]), ms(e["ttfb_ms"]["p50"]),
    ]


def usage_tables(summary: Mapping[str, Any]) -> str:
    t = summary["totals"]
    span = "" if summary["window"] == "since" else f", last {summary['window']}"
    lat, ttfb = t["latency_ms"], t["ttfb_ms"]
    head = [
        f"Usage{span} ({summary['since']} to {summary['until']})",
        f"Requests: {num(t['requests'])} ({num(t['attempts'])} attempts), errors: {num(t['errors'])} ({pct(t['error_rate'])}),"
        + f" cancelled by the client: {num(t.get('cancelled', 0))}",
        f"Tokens: {num(t['total_tokens'])} ({num(t['input_tokens'])} in, {num(t['output_tokens'])} out, "
        + f"{num(t['cached_tokens'])} cached, {num(t['reasoning_tokens'])} reasoning)",
        f"Latency: p50 {ms(lat['p50'])}, p95 {ms(lat['p95'])}; first byte: p50 {ms(ttfb['p50'])}, p95 {ms(ttfb['p95'])}",
    ]
    if summary.get("baseline"):
        head.append(f"Counted from the reset at {summary['baseline']}")
    if not t["requests"]:
        return "\n".join([*head, "", "No requests in this window."])
    parts = ["\n".join(head)]
    parts.append(table(("PROVIDER", *_BREAKDOWN), ([e["provider"], *_figures(e)] for e in summary["by_provider"])))
    parts.append(
        table(
            ("CREDENTIAL", "PROVIDER", *_BREAKDOWN),
            ([e["credential_id"], e["provider"], *_figures(e)] for e in summary["by_credential"]),
            "ll",
        )
    )
    parts.append(table(("MODEL", *_BREAKDOWN), ([e["model"], *_figures(e)] for e in summary["by_model"])))
    return "\n\n".join(parts)


# --- quotas ------------------------------------------------------------------------------
def account_status(q: Mapping[str, Any], pool: Mapping[str, Any]) -> str:
    """ready, expired, cooling, breaker open, needs-login or disabled (the dashboard's rule)."""
    if q["disabled"]:
        return "disabled"
    if q["credential_status"] == "needs-login":
        return "needs-login"
    if (pool.get("breakers") or {}).get(q["id"], {}).get("state") == "open":
        return "breaker open"
    if any(c["credential_id"] == q["id"] and c["scope"] == "account" for c in pool.get("cooldowns") or []):
        return "cooling"
    return q["credential_status"]


def _name(q: Mapping[str, Any]) -> str:
    return q.get("email") or q.get("label") or q["id"]


def _left(w: Mapping[str, Any]) -> str:
    left = w["remaining_pct"]
    if left is None:
        return "?"
    return "<1%" if 0 < left < 1 else f"{math.floor(left)}%"


def _used(w: Mapping[str, Any]) -> str:
    if w["used"] is None:
        return "-"
    if w["unit"] == "percent":
        return f"{w['used']:g}%"
    return f"{num(w['used'])} / {num(w['limit'])} {w['unit']}" if w["limit"] is not None else f"{num(w['used'])} {w['unit']}"


def _pool_rows(quotas: Sequence[Mapping[str, Any]], pool: Mapping[str, Any]) -> list[list[str]]:
    names = {q["id"]: _name(q) for q in quotas}
    rows = []
    for c in pool.get("cooldowns") or []:
        what = "cooling" if c["scope"] == "account" else f"cooling {c['model'] or ''}".strip()
        rows.append([names.get(c["credential_id"], c["credential_id"]), what, c["reason"], f"ends in {duration(c['reset_seconds'])}"])
    for q in quotas:
        if q["credential_status"] == "needs-login":
            rows.append([_name(q), "needs login", f"log in again: quotio login {q['provider']}", "-"])
    for key, b in (pool.get("breakers") or {}).items():
        if b["state"] == "closed":
            continue
        when = f"probe in {duration(b['remaining'])}" if b["state"] == "open" else "probing"
        rows.append([names.get(key, key), f"breaker {b['state'].replace('_', '-')}", f"{b['failures']} failures in a row", when])
    return rows


def quota_tables(body: Mapping[str, Any], pool: Mapping[str, Any]) -> str:
    quotas = body["quotas"]
    if not quotas:
        return "No accounts in the pool."
    rows = []
    # Accounts with quota windows first (as on the dashboard); otherwise the gateway's order.
    for q in sorted(quotas, key=lambda q: not q["windows"]):
        account = [q["provider"], _name(q), account_status(q, pool), q.get("plan") or "-"]
        note = "" if q["status"] == "ok" else f"quota {q['status']}" + (f": {q['error']}" if q.get("error") else "")
        if not q["windows"]:
            rows.append([*account, "-", "-", "-", "-", note])
        for i, w in enumerate(q["windows"]):
            name = f"{w['name']} ({w['model']})" if w.get("model") not in (None, w["name"]) else w["name"]
            reset = duration(w["resets_in_seconds"])
            rows.append([*(account if i == 0 else [""] * 4), name, _left(w), _used(w), reset, note if i == 0 else ""])
    parts = [
        table(("PROVIDER", "ACCOUNT", "STATUS", "PLAN", "WINDOW", "LEFT", "USED", "RESETS IN", "NOTE"), rows, "lllllrrrl")
    ]
    trouble = _pool_rows(quotas, pool)
    parts.append(
        "Cooling and broken:\n" + table(("CREDENTIAL", "STATE", "REASON", "WHEN"), trouble, "llll")
        if trouble
        else "Every credential is ready."
    )
    return "\n\n".join(parts)
