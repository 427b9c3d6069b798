"""How a Kiro account logs in and stays logged in.

Login is AWS Builder ID through AWS SSO-OIDC's device authorization: the
gateway registers a public OIDC client (`/client/register`), asks for a
device code (`/device_authorization`) and polls `/token` while the user
approves the code at view.awsapps.com. An IAM Identity Center (IdC) login is
the same with the organisation's start URL and region (`options`
`start_url`, `region`).

SSO-OIDC is OAuth 2.0 in substance but not on the wire: JSON bodies with
camelCase names (`clientId`, `grantType`, `deviceCode`) and camelCase
answers, so authlib's form-encoded client cannot speak it; plain httpx does.

Refresh depends on how the account logged in (`authMethod`):

- Builder ID / IdC: SSO-OIDC `/token` with `grantType: refresh_token` and
  the registered client's id and secret, which the file keeps;
- social (Google/GitHub through Kiro's own login): Kiro's
  `/refreshToken` with `{"refreshToken"}`; the answer also names the
  account's `profileArn`.

The file is CLIProxyAPIPlus's Kiro file: camelCase `accessToken`,
`refreshToken`, `profileArn`, `expiresAt`, `authMethod`, plus `clientId`,
`clientSecret` and `region` for Builder ID / IdC. Files written by other
tools in snake_case are read too and updated in their own spelling.
"""

from __future__ import annotations

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
    now_rfc3339,
    short_hash,
)

PROVIDER = "kiro"
FLOWS = ("device",)
REFRESH_LEAD = timedelta(minutes=5)

CLIENT_NAME = "Kiro IDE"
SCOPES = (
    "codewhisperer:completions",
    "codewhisperer:analysis",
    "codewhisperer:conversations",
    "codewhisperer:transformations",
    "codewhisperer:taskassist",
)
BUILDER_ID_START_URL = "https://view.awsapps.com/start"
DEFAULT_REGION = "us-east-1"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Seconds added to the poll interval on slow_down (RFC 8628 §3.5).
SLOW_DOWN_STEP = 5
SOCIAL_METHODS = ("social", "google", "github")
# Kiro's desktop client identifies itself on refresh; the version drifts.
SOCIAL_USER_AGENT = "KiroIDE-0.7.45"
_TIMEOUT = 30.0

# (camelCase, snake_case) spellings of the fields this module reads and writes.
_FIELDS = {
    "accessToken": "access_token",
    "refreshToken": "refresh_token",
    "expiresAt": "expires_at",
    "profileArn": "profile_arn",
    "authMethod": "auth_method",
    "clientId": "client_id",
    "clientSecret": "client_secret",
    "region": "region",
}


def _get(data: dict[str, Any], camel: str) -> str:
    return str(data.get(camel) or data.get(_FIELDS[camel]) or "")


def _put(out: dict[str, Any], camel: str, value: Any) -> None:
    """Set a field in the spelling the file already uses (camelCase for new ones)."""
    snake = _FIELDS[camel]
    out[snake if snake in out and camel not in out else camel] = value


def _url(ctx: LoginContext, name: str, region: str) -> str:
    return ctx.urls[name].replace("{region}", region or DEFAULT_REGION)


async def _post(ctx: LoginContext, url: str, body: dict[str, Any], what: str, **headers: str) -> httpx.Response:
    try:
        return await ctx.http.post(
            url,
            json=body,
            headers={"accept": "application/json", **headers},
            timeout=_TIMEOUT,
        )
    except httpx.HTTPError as e:
        raise LoginError(f"{what}: {type(e).__name__}: cannot reach {httpx.URL(url).host}") from e


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _failure(resp: httpx.Response, what: str) -> LoginError:
    data = _json(resp)
    code = str(data.get("error") or data.get("__type") or data.get("reason") or "").rpartition("#")[2]
    detail = str(data.get("error_description") or data.get("message") or "") or resp.text[:200]
    return LoginError(f"{what}: HTTP {resp.status_code} {code} {detail}".strip(), code or "login_failed")


# --- device login ----------------------------------------------------------------


async def device_start(ctx: LoginContext) -> DeviceStart:
    region = str(ctx.options.get("region") or DEFAULT_REGION)
    start_url = str(ctx.options.get("start_url") or BUILDER_ID_START_URL)
    oidc = _url(ctx, "oidc-url", region)
    resp = await _post(
        ctx,
        f"{oidc}/client/register",
        {"clientName": CLIENT_NAME, "clientType": "public", "scopes": list(SCOPES)},
        "Kiro client registration",
    )
    client = _json(resp)
    if resp.status_code != 200 or not client.get("clientId") or not client.get("clientSecret"):
        raise _failure(resp, "Kiro client registration")
    client_id, client_secret = str(client["clientId"]), str(client["clientSecret"])
    resp = await _post(
        ctx,
        f"{oidc}/device_authorization",
        {"clientId": client_id, "clientSecret": client_secret, "startUrl": start_url},
        "Kiro device authorization",
    )
    dev = _json(resp)
    if resp.status_code != 200 or not dev.get("deviceCode") or not dev.get("userCode"):
        raise _failure(resp, "Kiro device authorization")
    return DeviceStart(
        device_code=str(dev["deviceCode"]),
        user_code=str(dev["userCode"]),
        verification_uri=str(dev.get("verificationUri") or ""),
        verification_uri_complete=str(dev.get("verificationUriComplete") or ""),
        expires_in=int(dev.get("expiresIn") or 600),
        interval=float(dev.get("interval") or 5),
        extra={
            "client_id": client_id,
            "client_secret": client_secret,
            "region": region,
            "auth_method": "builder-id" if start_url == BUILDER_ID_START_URL else "idc",
            "start_url": start_url,
        },
    )


async def device_poll(ctx: LoginContext, start: DeviceStart) -> dict[str, Any] | None:
    extra = start.extra
    resp = await _post(
        ctx,
        f"{_url(ctx, 'oidc-url', extra['region'])}/token",
        {
            "clientId": extra["client_id"],
            "clientSecret": extra["client_secret"],
            "deviceCode": start.device_code,
            "grantType": DEVICE_GRANT,
        },
        "Kiro login",
    )
    token = _json(resp)
    if resp.status_code == 200 and token.get("accessToken"):
        data = {
            "type": PROVIDER,
            "authMethod": extra["auth_method"],
            "clientId": extra["client_id"],
            "clientSecret": extra["client_secret"],
            "region": extra["region"],
        }
        if extra["auth_method"] != "builder-id":
            data["startUrl"] = extra["start_url"]
        return _file(token, data)
    code = str(token.get("error") or "")
    if code == "authorization_pending":
        return None
    if code == "slow_down":
        raise SlowDown(start.interval + SLOW_DOWN_STEP)
    if code == "expired_token":
        raise LoginError("the Kiro device code expired; start the login again", code)
    if code == "access_denied":
        raise LoginError("the Kiro login was denied", code)
    raise _failure(resp, "Kiro login")


# --- refresh ---------------------------------------------------------------------


def _file(token: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    out["type"] = PROVIDER
    _put(out, "accessToken", str(token["accessToken"]))
    _put(out, "refreshToken", str(token.get("refreshToken") or _get(old, "refreshToken")))
    _put(out, "expiresAt", expiry_in(token.get("expiresIn"), 3600))
    if token.get("profileArn"):
        _put(out, "profileArn", str(token["profileArn"]))
    out["last_refresh"] = now_rfc3339()
    return out


def _is_social(data: dict[str, Any]) -> bool:
    method = _get(data, "authMethod").lower()
    if method in SOCIAL_METHODS:
        return True
    # Files from before authMethod existed: only OIDC logins keep a client.
    return not method and not (_get(data, "clientId") and _get(data, "clientSecret"))


async def refresh(ctx: LoginContext, data: dict[str, Any]) -> dict[str, Any]:
    rt = _get(data, "refreshToken")
    if not rt:
        raise LoginError("no refreshToken in the Kiro auth file", "invalid_grant")
    region = _get(data, "region")
    if _is_social(data):
        what = "Kiro token refresh"
        resp = await _post(
            ctx, _url(ctx, "social-refresh-url", region), {"refreshToken": rt}, what,
            **{"user-agent": SOCIAL_USER_AGENT},
        )
    else:
        what = "Kiro (AWS SSO-OIDC) token refresh"
        body = {
            "clientId": _get(data, "clientId"),
            "clientSecret": _get(data, "clientSecret"),
            "refreshToken": rt,
            "grantType": "refresh_token",
        }
        resp = await _post(ctx, f"{_url(ctx, 'oidc-url', region)}/token", body, what)
    token = _json(resp)
    if resp.status_code == 200 and token.get("accessToken"):
        return _file(token, data)
    if resp.status_code in (400, 401) or token.get("error") == "invalid_grant":
        # A dead refresh token, or an expired client registration: only a new login helps.
        err = _failure(resp, what)
        raise InvalidGrant(str(err))
    raise _failure(resp, what)


def file_name(data: dict[str, Any]) -> str:
    method = _get(data, "authMethod").lower() or "kiro"
    account = str(data.get("email") or "")
    if not account:
        # Stable across refreshes: the account's profile, else the login's client.
        seed = _get(data, "profileArn") or _get(data, "clientId") or _get(data, "refreshToken")
        account = short_hash(seed)
    return f"{file_safe(PROVIDER, method, account)}.json"


__all__ = [
    "FLOWS",
    "PROVIDER",
    "REFRESH_LEAD",
    "device_poll",
    "device_start",
    "file_name",
    "refresh",
]
