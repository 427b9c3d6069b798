"""How much a Kiro account has left: `GET codewhisperer…/getUsageLimits`.

The request carries `isEmailRequired=true&origin=AI_EDITOR` (as quotio's
Kiro fetcher sends it) and, when the auth file has one, the account's
`profileArn`. The default host is us-east-1's; an account whose profile
lives in another region is reached by overriding `upstreams.kiro.usage-url`
(quotio's Swift app derives `q.<region>.amazonaws.com` from the ARN, which
is unconfirmed for this endpoint). The answer lists one
entry per metered resource in `usageBreakdownList[{resourceType,
displayName, currentUsage, currentUsageWithPrecision, usageLimit,
usageLimitWithPrecision, nextDateReset, freeTrialInfo}]` (the
`…WithPrecision` fields carry fractional credits; `nextDateReset` is unix
seconds, also given once for the whole answer), and the plan as
`subscriptionInfo.subscriptionTitle`.

A free trial (`freeTrialInfo` with `freeTrialStatus` "ACTIVE") is an
allowance drawn on beside the month's, so its usage and limit are added to
the resource's window: the account is out only when both are spent. Each
resource is one window named after its resource type in lower case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..quotas import QuotaContext, QuotaReport, Window
from ..quotas import call_json, number, timestamp

if TYPE_CHECKING:
    from ...pool.credentials import Credential

PROVIDER = "kiro"
WHAT = "Kiro usage"
QUERY = {"isEmailRequired": "true", "origin": "AI_EDITOR"}
DEFAULT_HEADERS = {
    "user-agent": "aws-sdk-js/1.0.27 ua/2.1 os/linux lang/js md/nodejs api/codewhispererruntime#1.0.27 m/E KiroIDE",
    "x-amz-user-agent": "aws-sdk-js/1.0.27 KiroIDE",
}


def _amount(raw: dict[str, Any], name: str) -> float | None:
    precise = number(raw.get(f"{name}WithPrecision"))
    return precise if precise is not None else number(raw.get(name))


def _window(entry: dict[str, Any], default_reset: float | None) -> Window:
    resource = str(entry.get("resourceType") or entry.get("displayName") or "usage")
    used, limit = _amount(entry, "currentUsage"), _amount(entry, "usageLimit")
    trial = entry.get("freeTrialInfo")
    if isinstance(trial, dict) and str(trial.get("freeTrialStatus") or "").upper() == "ACTIVE":
        trial_used, trial_limit = _amount(trial, "currentUsage"), _amount(trial, "usageLimit")
        if trial_used is not None and trial_limit is not None:
            used = (used or 0.0) + trial_used
            limit = (limit or 0.0) + trial_limit
    remaining = None
    if used is not None and limit is not None and limit > 0:
        remaining = max(0.0, min(100.0, (limit - used) / limit * 100.0))
    return Window(
        resource.lower(),
        used=used,
        limit=limit,
        remaining_pct=remaining,
        resets_at=timestamp(entry.get("nextDateReset")) or default_reset,
        unit="credits" if resource.upper() == "CREDIT" else "requests",
    )


def parse(body: dict[str, Any]) -> QuotaReport:
    default_reset = timestamp(body.get("nextDateReset"))
    windows = tuple(
        _window(e, default_reset) for e in body.get("usageBreakdownList") or () if isinstance(e, dict)
    )
    sub = body.get("subscriptionInfo") if isinstance(body.get("subscriptionInfo"), dict) else {}
    plan = sub.get("subscriptionTitle") or sub.get("type")
    return QuotaReport("ok", windows, plan=plan if isinstance(plan, str) else None)


def profile_arn(data: dict[str, Any]) -> str:
    return str(data.get("profileArn") or data.get("profile_arn") or "")


async def fetch(ctx: QuotaContext, cred: Credential) -> QuotaReport:
    if cred.kind != "oauth":
        return QuotaReport("unsupported", error="only Kiro logins have a usage limit")
    params = dict(QUERY)
    if arn := profile_arn(dict(cred.data)):
        params["profileArn"] = arn
    headers = {**DEFAULT_HEADERS, **ctx.headers}
    headers.update({"authorization": f"Bearer {cred.secret}", "accept": "application/json"})
    body = await call_json(ctx, WHAT, "GET", ctx.urls["usage-url"], headers=headers, params=params)
    return body if isinstance(body, QuotaReport) else parse(body)
