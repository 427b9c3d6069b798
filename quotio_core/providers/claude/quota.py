"""How much a Claude subscription has left: `GET /api/oauth/usage`.

Anthropic answers with one object per window (`five_hour`, `seven_day`,
`seven_day_sonnet`, `seven_day_opus`), each `{utilization, resets_at}` where
utilization is the percentage used; `extra_usage` describes paid overage.
Only OAuth accounts have this endpoint; API keys have no subscription window.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from ..quotas import QuotaContext, QuotaReport, Window, forbidden_or_error, pct_remaining

if TYPE_CHECKING:
    from ...pool.credentials import Credential

PROVIDER = "claude"
WINDOWS = ("five_hour", "seven_day", "seven_day_sonnet", "seven_day_opus")
DEFAULT_HEADERS = {"anthropic-beta": "oauth-2025-04-20", "user-agent": "claude-code/2.1.69"}


def _when(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse(body: dict[str, Any]) -> QuotaReport:
    windows = []
    for name in WINDOWS:
        w = body.get(name)
        if not isinstance(w, dict):
            continue
        used = w.get("utilization")
        windows.append(
            Window(name, used=used, limit=100.0, remaining_pct=pct_remaining(used), resets_at=_when(w.get("resets_at")))
        )
    extra = body.get("extra_usage")
    if isinstance(extra, dict) and extra.get("is_enabled"):
        windows.append(
            Window(
                "extra_usage",
                used=extra.get("used_credits"),
                limit=extra.get("monthly_limit"),
                remaining_pct=pct_remaining(extra.get("utilization")),
                unit="credits",
            )
        )
    return QuotaReport("ok", tuple(windows))


async def fetch(ctx: QuotaContext, cred: Credential) -> QuotaReport:
    if cred.kind != "oauth":
        return QuotaReport("unsupported", error="API keys have no subscription quota")
    headers = {**DEFAULT_HEADERS, **ctx.headers, "authorization": f"Bearer {cred.secret}"}
    try:
        resp = await ctx.http.get(ctx.urls["usage-url"], headers=headers)
    except httpx.HTTPError as e:
        return QuotaReport("error", error=f"Claude usage: {type(e).__name__}")
    if (failed := forbidden_or_error(resp, "Claude usage")) is not None:
        return failed
    try:
        body = resp.json()
    except ValueError:
        return QuotaReport("error", error="Claude usage: the answer is not JSON")
    return parse(body) if isinstance(body, dict) else QuotaReport("error", error="Claude usage: unexpected shape")
