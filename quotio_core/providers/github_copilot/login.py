"""How a GitHub Copilot account logs in: GitHub's device flow, then a Copilot token per use.

The auth file keeps the GitHub token (``ghu_…``), which does not expire.
Requests carry a short-lived Copilot token that `bearer` trades it for; that
one is kept in memory by the caller, never written back.

Plain httpx rather than authlib: GitHub's device endpoints answer errors
(``authorization_pending``, ``slow_down``…) with HTTP 200, and the Copilot
exchange is not OAuth at all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from .call import DEFAULT_HEADERS
from ..login.base import (
    Bearer,
    DeviceStart,
    InvalidGrant,
    LoginContext,
    LoginError,
    SlowDown,
    file_safe,
    json_or_error,
)

PROVIDER = "github-copilot"
FLOWS = ("device",)
# The Copilot editor plugins' OAuth app; the device flow needs no secret.
CLIENT_ID = "Iv1.b507a08c87ecfe98"
DEFAULT_SCOPE = "read:user"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_LEAD = None  # the GitHub token does not expire
# RFC 8628 §3.5: each slow_down adds 5 seconds to the polling interval.
SLOW_DOWN_STEP = 5.0
# Stop using a Copilot token this long before GitHub says it expires.
BEARER_MARGIN = 300.0

_JSON = {"Accept": "application/json"}


def _identity(ctx: LoginContext) -> dict[str, str]:
    """The editor headers GitHub wants on the exchange; `header_defaults` overrides them."""
    overrides = {k.lower(): v for k, v in (ctx.options.get("header_defaults") or {}).items()}
    merged = {**DEFAULT_HEADERS, **overrides}
    return {k: merged[k] for k in ("editor-version", "editor-plugin-version", "user-agent")}


async def device_start(ctx: LoginContext) -> DeviceStart:
    scope = str(ctx.options.get("scope") or DEFAULT_SCOPE)
    resp = await ctx.http.post(
        ctx.urls["device-url"], data={"client_id": CLIENT_ID, "scope": scope}, headers=_JSON
    )
    data = await json_or_error(resp, "GitHub device code")
    for name in ("device_code", "user_code", "verification_uri"):
        if not data.get(name):
            raise LoginError(f"GitHub device code: no {name} in the answer")
    interval = float(data.get("interval") or 5)
    return DeviceStart(
        device_code=str(data["device_code"]),
        user_code=str(data["user_code"]),
        verification_uri=str(data["verification_uri"]),
        verification_uri_complete=str(data.get("verification_uri_complete") or ""),
        expires_in=int(data.get("expires_in") or 900),
        interval=interval,
        # The poll's own pace, so repeated slow_downs keep adding up.
        extra={"pace": {"interval": interval}},
    )


async def device_poll(ctx: LoginContext, start: DeviceStart) -> dict[str, Any] | None:
    resp = await ctx.http.post(
        ctx.urls["token-url"],
        data={"client_id": CLIENT_ID, "device_code": start.device_code, "grant_type": DEVICE_GRANT},
        headers=_JSON,
    )
    data = await json_or_error(resp, "GitHub device token")
    error = data.get("error")
    if error == "authorization_pending":
        return None
    if error == "slow_down":
        pace = start.extra["pace"]
        pace["interval"] = float(data.get("interval") or pace["interval"] + SLOW_DOWN_STEP)
        raise SlowDown(pace["interval"])
    if error == "expired_token":
        raise LoginError("the GitHub device code expired; start the login again", "expired_token")
    if error == "access_denied":
        raise LoginError("the GitHub login was denied", "access_denied")
    if error:
        raise LoginError(f"GitHub device token: {data.get('error_description') or error}", str(error))
    token = data.get("access_token")
    if not token:
        raise LoginError("GitHub device token: no access_token in the answer")
    user = await _user(ctx, str(token))
    out = {
        "type": PROVIDER,
        "access_token": str(token),
        "token_type": str(data.get("token_type") or "bearer"),
        "scope": str(data.get("scope") or ""),
        "username": str(user.get("login") or ""),
    }
    if user.get("email"):
        out["email"] = str(user["email"])
    return out


async def _user(ctx: LoginContext, token: str) -> Mapping[str, Any]:
    resp = await ctx.http.get(
        ctx.urls["user-url"],
        headers={
            "Authorization": f"token {token}",
            "Accept": "application/vnd.github+json",
            "User-Agent": _identity(ctx)["user-agent"],
        },
    )
    user = await json_or_error(resp, "GitHub user lookup")
    if not user.get("login"):
        raise LoginError("GitHub user lookup: no login in the answer")
    return user


async def bearer(ctx: LoginContext, data: Mapping[str, Any]) -> Bearer:
    """Trade the file's GitHub token for a Copilot token (no caching here)."""
    github_token = str(data.get("access_token") or data.get("accessToken") or "")
    if not github_token:
        raise InvalidGrant("the auth file has no GitHub token")
    resp = await ctx.http.get(
        ctx.urls["exchange-url"],
        headers={"Authorization": f"token {github_token}", **_JSON, **_identity(ctx)},
    )
    if resp.status_code in (401, 403):
        raise InvalidGrant(f"Copilot token exchange refused (HTTP {resp.status_code}): {_reason(resp)}")
    answer = await json_or_error(resp, "Copilot token exchange")
    token = answer.get("token")
    if not token:
        raise LoginError("Copilot token exchange: no token in the answer")
    return Bearer(
        token=str(token),
        expires_at=_use_until(answer, time.time()),
        extra={"api_base": _api_base(answer)},
    )


def _use_until(answer: Mapping[str, Any], now: float) -> float:
    """When to stop using the token: GitHub's refresh hint, or 5 minutes before expiry."""
    candidates = []
    if isinstance(answer.get("expires_at"), (int, float)):
        candidates.append(float(answer["expires_at"]) - BEARER_MARGIN)
    if isinstance(answer.get("refresh_in"), (int, float)):
        candidates.append(now + float(answer["refresh_in"]))
    # Neither given: assume the documented 25 minutes rather than forever.
    return min(candidates) if candidates else now + 1500.0


def _api_base(answer: Mapping[str, Any]) -> str:
    endpoints = answer.get("endpoints")
    api = endpoints.get("api") if isinstance(endpoints, Mapping) else None
    return str(api).rstrip("/") if isinstance(api, str) and api.startswith(("http://", "https://")) else ""


def _reason(resp: httpx.Response) -> str:
    """What GitHub said about a refused exchange, without anything secret."""
    try:
        body = resp.json()
    except ValueError:
        return "no details"
    if not isinstance(body, Mapping):
        return "no details"
    details = body.get("error_details")
    if isinstance(details, Mapping) and details.get("message"):
        return str(details["message"])[:300]
    return str(body.get("message") or body.get("error") or "no details")[:300]


def file_name(data: Mapping[str, Any]) -> str:
    return f"{file_safe(PROVIDER, str(data.get('username') or data.get('email') or 'account'))}.json"
