"""How much a GitHub Copilot seat has left: `GET api.github.com/copilot_internal/user`.

The editors' Copilot extensions read the same endpoint. Paid plans answer
`quota_snapshots` with one entry per bucket (`chat`, `completions`,
`premium_interactions`), each `{entitlement, remaining, percent_remaining,
unlimited, overage_count, overage_permitted, quota_id}`, plus
`quota_reset_date` (a date) and `quota_reset_date_utc` (a timestamp) and
`copilot_plan`. The free plan answers instead `monthly_quotas` (the month's
allowance per bucket) and `limited_user_quotas` (what is left of it) with
`limited_user_reset_date`.

The call is authorised by the GitHub OAuth token (`Authorization: token …`),
not by the short-lived Copilot token the API calls use, so it is read from
the auth file (`access_token`) even when the credential in hand carries an
exchanged Copilot token. An unlimited bucket reports 100 % left and no limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..quotas import QuotaContext, QuotaReport, Window
from ..quotas import call_json, number, timestamp

if TYPE_CHECKING:
    from ...pool.credentials import Credential

PROVIDER = "github-copilot"
WHAT = "Copilot quota"
DEFAULT_HEADERS = {"user-agent": "GithubCopilot/1.0", "x-github-api-version": "2022-11-28"}
# Known buckets first, in the order the editors show them; others follow by name.
BUCKETS = ("premium_interactions", "chat", "completions")


def github_token(data: dict[str, Any]) -> str:
    """The GitHub token of a CLIProxyAPI file (or quotio's TS store, which nests it)."""
    token_data = data.get("tokenData") if isinstance(data.get("tokenData"), dict) else {}
    return str(data.get("access_token") or data.get("github_token") or token_data.get("github_token") or "")


def _ordered(names: Any) -> list[str]:
    names = [str(n) for n in names]
    return [n for n in BUCKETS if n in names] + sorted(n for n in names if n not in BUCKETS)


def _pct(remaining: float | None, limit: float | None) -> float | None:
    if remaining is None or limit is None or limit <= 0:
        return None
    return max(0.0, min(100.0, remaining / limit * 100.0))


def _snapshot(name: str, snap: dict[str, Any], resets_at: float | None) -> Window:
    if snap.get("unlimited") is True:
        return Window(name, remaining_pct=100.0, resets_at=resets_at, unit="requests")
    limit = number(snap.get("entitlement"))
    remaining = number(snap.get("remaining"))
    pct = number(snap.get("percent_remaining"))
    pct = _pct(remaining, limit) if pct is None else max(0.0, min(100.0, pct))
    used = None if limit is None or remaining is None else max(0.0, limit - remaining)
    return Window(name, used=used, limit=limit, remaining_pct=pct, resets_at=resets_at, unit="requests")


def parse(body: dict[str, Any]) -> QuotaReport:
    resets_at = timestamp(body.get("quota_reset_date_utc")) or timestamp(body.get("quota_reset_date"))
    windows: list[Window] = []
    snapshots = body.get("quota_snapshots")
    if isinstance(snapshots, dict) and snapshots:
        for name in _ordered(snapshots):
            if isinstance(snap := snapshots[name], dict):
                windows.append(_snapshot(name, snap, resets_at))
    else:
        monthly = body.get("monthly_quotas") if isinstance(body.get("monthly_quotas"), dict) else {}
        left = body.get("limited_user_quotas") if isinstance(body.get("limited_user_quotas"), dict) else {}
        free_reset = timestamp(body.get("limited_user_reset_date")) or resets_at
        for name in _ordered(set(monthly) | set(left)):
            limit, remaining = number(monthly.get(name)), number(left.get(name))
            used = None if limit is None or remaining is None else max(0.0, limit - remaining)
            windows.append(
                Window(name, used=used, limit=limit, remaining_pct=_pct(remaining, limit), resets_at=free_reset, unit="requests")
            )
    plan = body.get("copilot_plan") or body.get("access_type_sku")
    return QuotaReport("ok", tuple(windows), plan=plan if isinstance(plan, str) else None)


async def fetch(ctx: QuotaContext, cred: Credential) -> QuotaReport:
    if cred.kind != "oauth":
        return QuotaReport("unsupported", error="only GitHub OAuth accounts have a Copilot quota")
    token = github_token(dict(cred.data))
    if not token:
        return QuotaReport("error", error=f"{WHAT}: the auth file has no GitHub token")
    headers = {**DEFAULT_HEADERS, **ctx.headers}
    headers.update({"authorization": f"token {token}", "accept": "application/vnd.github+json"})
    body = await call_json(ctx, WHAT, "GET", ctx.urls["quota-url"], headers=headers)
    return body if isinstance(body, QuotaReport) else parse(body)
