"""How much a Codex (ChatGPT) subscription has left: `GET /backend-api/wham/usage`.

The Codex CLI polls the same endpoint (codex-rs backend-client,
`RateLimitStatusPayload`): `plan_type`, and `rate_limit` with `allowed`,
`limit_reached`, `primary_window` and `secondary_window`, each
`{used_percent, limit_window_seconds, reset_after_seconds, reset_at}` with
`reset_at` in unix seconds. A window is named after its length: `session`
for the short one (five hours on paid plans), `weekly` for seven days,
`monthly` for a month; without a length the primary is the session and the
secondary the weekly window. Plans with a single weekly limit send it as
the primary window.

Models with a pool of their own come as `additional_rate_limits[{limit_name,
metered_feature, rate_limit}]` (e.g. "GPT-5.3-Codex-Spark"); their windows
are `<limit_name>.<window>` and limit only the model the limit is named
after (its name lower-cased, as Codex spells the model id), so a spent
side pool does not cool the account.

When the backend says `limit_reached` while no window reads 100 %, the
fullest window is reported as exhausted: that is the one the account waits
on. API keys (`codex-api-key`) are plain platform keys with no subscription.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..quotas import QuotaContext, QuotaReport, Window, pct_remaining
from .call import DEFAULT_HEADERS as EXECUTOR_HEADERS
from .call import account_id
from ..quotas import call_json, number, timestamp

if TYPE_CHECKING:
    from ...pool.credentials import Credential

PROVIDER = "codex"
WHAT = "Codex usage"
DEFAULT_HEADERS = {
    "user-agent": EXECUTOR_HEADERS["user-agent"],
    "originator": EXECUTOR_HEADERS["originator"],
}
_WINDOWS = (("primary_window", "session"), ("secondary_window", "weekly"))
DAY = 86400.0


def _label(raw: dict[str, Any], fallback: str) -> str:
    seconds = number(raw.get("limit_window_seconds"))
    if not seconds or seconds <= 0:
        return fallback
    if seconds >= 25 * DAY:
        return "monthly"
    return "weekly" if seconds >= 6 * DAY else "session"


def _window(name: str, raw: dict[str, Any], now: float, model: str | None) -> Window:
    used = number(raw.get("used_percent"))
    resets_at = timestamp(raw.get("reset_at"))
    if resets_at is None and (after := number(raw.get("reset_after_seconds"))) is not None:
        resets_at = now + max(after, 0.0)
    return Window(
        name, used=used, limit=100.0, remaining_pct=pct_remaining(used), resets_at=resets_at, model=model
    )


def _group(rate_limit: Any, prefix: str, now: float, model: str | None = None) -> list[Window]:
    if not isinstance(rate_limit, dict):
        return []
    windows: list[Window] = []
    for key, fallback in _WINDOWS:
        if isinstance(raw := rate_limit.get(key), dict):
            label = _label(raw, fallback)
            if any(w.name == prefix + label for w in windows):
                label = key.removesuffix("_window")
            windows.append(_window(prefix + label, raw, now, model))
    if rate_limit.get("limit_reached") is True and windows and not any(w.exhausted for w in windows):
        fullest = max(range(len(windows)), key=lambda i: windows[i].used or 0.0)
        windows[fullest] = replace(windows[fullest], remaining_pct=0.0)
    return windows


def parse(body: dict[str, Any], now: float | None = None) -> QuotaReport:
    now = time.time() if now is None else now
    windows = _group(body.get("rate_limit"), "", now)
    for extra in body.get("additional_rate_limits") or ():
        if isinstance(extra, dict):
            name = str(extra.get("limit_name") or extra.get("metered_feature") or "additional")
            windows += _group(extra.get("rate_limit"), f"{name}.", now, model=name.lower())
    plan = body.get("plan_type")
    return QuotaReport("ok", tuple(windows), plan=plan if isinstance(plan, str) else None, fetched_at=now)


async def fetch(ctx: QuotaContext, cred: Credential) -> QuotaReport:
    if cred.kind != "oauth":
        return QuotaReport("unsupported", error="Codex API keys have no subscription quota")
    headers = {**DEFAULT_HEADERS, **ctx.headers}
    headers.update({"authorization": f"Bearer {cred.secret}", "accept": "application/json"})
    if acct := account_id(cred.data):
        headers["chatgpt-account-id"] = acct
    body = await call_json(ctx, WHAT, "GET", ctx.urls["usage-url"], headers=headers)
    return body if isinstance(body, QuotaReport) else parse(body)
