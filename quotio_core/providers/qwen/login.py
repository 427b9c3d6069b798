"""How a Qwen account logs in: qwen.ai's device flow with PKCE, and its refresh.

Plain httpx rather than authlib: the poll says "pending" with HTTP 400 and
"slow down" with HTTP 429, and a refused refresh is told by its status
(400/401) whatever error code comes with it, so the status decides.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx

from ..login.base import (
    DeviceStart,
    InvalidGrant,
    LoginContext,
    LoginError,
    SlowDown,
    expiry_in,
    file_safe,
    json_or_error,
    jwt_claims,
    now_rfc3339,
    s256,
    short_hash,
)

PROVIDER = "qwen"
FLOWS = ("device",)
CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"
SCOPE = "openid profile email model.completion"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
REFRESH_LEAD = timedelta(minutes=20)
DEFAULT_INTERVAL = 5.0
# Qwen Code's answer to slow_down: half as often again, never slower than every 10 s.
SLOW_DOWN_FACTOR = 1.5
MAX_INTERVAL = 10.0

_JSON = {"Accept": "application/json"}


def new_verifier() -> str:
    """32 random bytes, base64url without padding (what qwen-code sends)."""
    return secrets.token_urlsafe(32)


async def device_start(ctx: LoginContext) -> DeviceStart:
    verifier = new_verifier()
    resp = await ctx.http.post(
        ctx.urls["device-url"],
        data={
            "client_id": CLIENT_ID,
            "scope": SCOPE,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
        headers=_JSON,
    )
    data = await json_or_error(resp, "Qwen device code")
    for name in ("device_code", "user_code", "verification_uri"):
        if not data.get(name):
            raise LoginError(f"Qwen device code: no {name} in the answer")
    interval = float(data.get("interval") or DEFAULT_INTERVAL)
    return DeviceStart(
        device_code=str(data["device_code"]),
        user_code=str(data["user_code"]),
        verification_uri=str(data["verification_uri"]),
        verification_uri_complete=str(data.get("verification_uri_complete") or ""),
        expires_in=int(data.get("expires_in") or 600),
        interval=interval,
        # The poll's own pace, so repeated slow_downs keep compounding up to the cap.
        extra={"code_verifier": verifier, "pace": {"interval": interval}},
    )


def _error_code(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    return str(body.get("error") or "") if isinstance(body, Mapping) else ""


async def device_poll(ctx: LoginContext, start: DeviceStart) -> dict[str, Any] | None:
    resp = await ctx.http.post(
        ctx.urls["token-url"],
        data={
            "grant_type": DEVICE_GRANT,
            "client_id": CLIENT_ID,
            "device_code": start.device_code,
            "code_verifier": start.extra["code_verifier"],
        },
        headers=_JSON,
    )
    error = _error_code(resp) if resp.status_code >= 400 else ""
    if error == "authorization_pending":
        return None
    if error == "slow_down":
        pace = start.extra["pace"]
        pace["interval"] = min(pace["interval"] * SLOW_DOWN_FACTOR, MAX_INTERVAL)
        raise SlowDown(pace["interval"])
    if error == "expired_token":
        raise LoginError("the Qwen device code expired; start the login again", "expired_token")
    if error == "access_denied":
        raise LoginError("the Qwen login was denied", "access_denied")
    token = await json_or_error(resp, "Qwen device token")
    if not token.get("access_token"):
        raise LoginError("Qwen device token: no access_token in the answer")
    return _file(token, email=str(ctx.options.get("email") or ""))


def _file(token: Mapping[str, Any], old: Mapping[str, Any] | None = None, email: str = "") -> dict[str, Any]:
    out = dict(old or {})
    out.update(
        {
            "type": PROVIDER,
            "access_token": str(token["access_token"]),
            "refresh_token": str(token.get("refresh_token") or out.get("refresh_token") or ""),
            "resource_url": str(token.get("resource_url") or out.get("resource_url") or ""),
            "expired": expiry_in(token.get("expires_in"), 3600),
            "last_refresh": now_rfc3339(),
        }
    )
    email = email or str(jwt_claims(str(token.get("id_token") or token["access_token"])).get("email") or "")
    if email:
        out["email"] = email
    out.setdefault("email", "")
    return out


async def refresh(ctx: LoginContext, data: dict[str, Any]) -> dict[str, Any]:
    rt = data.get("refresh_token")
    if not rt:
        raise InvalidGrant("no refresh_token in the auth file")
    resp = await ctx.http.post(
        ctx.urls["token-url"],
        data={"grant_type": "refresh_token", "refresh_token": rt, "client_id": CLIENT_ID},
        headers=_JSON,
    )
    if resp.status_code in (400, 401):
        raise InvalidGrant(
            f"Qwen token refresh refused (HTTP {resp.status_code} {_error_code(resp) or 'no code'})"
        )
    token = await json_or_error(resp, "Qwen token refresh")
    if not token.get("access_token"):
        raise LoginError("Qwen token refresh: no access_token in the answer")
    return _file(token, data)


def file_name(data: Mapping[str, Any]) -> str:
    # Without an email the account has no name; a hash of its token keeps files apart.
    who = str(data.get("email") or short_hash(str(data.get("access_token") or "")))
    return f"{file_safe(PROVIDER, who)}.json"
