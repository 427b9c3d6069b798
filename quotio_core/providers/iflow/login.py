"""How an iFlow account logs in: authorization code (phone login), then its API key.

The browser goes to iflow.cn with iFlow's own parameter names (`redirect`,
not `redirect_uri`; no PKCE); the redirect lands on a local listener on port
11451. Requests are made with the account's API key, which getUserInfo
returns for the access token, so every refresh fetches it again.

Plain httpx rather than authlib: iFlow wants the client secret both as
Basic authentication and in the form, which authlib's client methods do not
combine.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from ..login.base import (
    AuthCodeStart,
    InvalidGrant,
    LoginContext,
    LoginError,
    expiry_in,
    file_safe,
    json_or_error,
    new_state,
    now_rfc3339,
)

PROVIDER = "iflow"
FLOWS = ("auth-code",)
CLIENT_ID = "10009311001"
# Published in iFlow CLI and CLIProxyAPI: a public client's "secret", not ours
# to protect. `client_secret` in the login options replaces it.
CLIENT_SECRET = "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"
CALLBACK_PORT = 11451
CALLBACK_PATH = "/oauth2callback"
REFRESH_LEAD = timedelta(hours=24)

_JSON = {"Accept": "application/json"}


def _client(ctx: LoginContext) -> tuple[str, str]:
    return (
        str(ctx.options.get("client_id") or CLIENT_ID),
        str(ctx.options.get("client_secret") or CLIENT_SECRET),
    )


def _error_code(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    return str(body.get("error") or "") if isinstance(body, Mapping) else ""


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def authorize(ctx: LoginContext) -> AuthCodeStart:
    state = new_state()
    client_id, _ = _client(ctx)
    query = urlencode(
        {
            "loginMethod": "phone",
            "type": "phone",
            "redirect": ctx.redirect_uri,
            "state": state,
            "client_id": client_id,
        }
    )
    return AuthCodeStart(f"{ctx.urls['authorize-url']}?{query}", state, "", ctx.redirect_uri)


async def _token(ctx: LoginContext, form: dict[str, str], what: str) -> dict[str, Any]:
    client_id, secret = _client(ctx)
    resp = await ctx.http.post(
        ctx.urls["token-url"],
        data={**form, "client_id": client_id, "client_secret": secret},
        headers={**_JSON, "Authorization": _basic(client_id, secret)},
    )
    # A refused client is our configuration, not a dead grant: that stays a LoginError.
    if form["grant_type"] == "refresh_token" and resp.status_code == 401 and _error_code(resp) != "invalid_client":
        raise InvalidGrant(f"{what}: the refresh token was refused (HTTP 401)")
    token = await json_or_error(resp, what)
    if not token.get("access_token"):
        raise LoginError(f"{what}: no access_token in the answer")
    return token


async def _user_info(ctx: LoginContext, access_token: str) -> Mapping[str, Any]:
    # The token travels in the query: that is getUserInfo's interface.
    resp = await ctx.http.get(ctx.urls["userinfo-url"], params={"accessToken": access_token}, headers=_JSON)
    body = await json_or_error(resp, "iFlow user info")
    info = body.get("data")
    if not body.get("success") or not isinstance(info, Mapping) or not info.get("apiKey"):
        raise LoginError(f"iFlow user info: no API key ({str(body.get('message') or 'no message')[:200]})")
    return info


def _file(token: Mapping[str, Any], info: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out = dict(old or {})
    out.update(
        {
            "type": PROVIDER,
            "access_token": str(token["access_token"]),
            "refresh_token": str(token.get("refresh_token") or out.get("refresh_token") or ""),
            "expired": expiry_in(token.get("expires_in"), 7 * 24 * 3600),
            "api_key": str(info["apiKey"]),
            "last_refresh": now_rfc3339(),
        }
    )
    for name in ("token_type", "scope"):
        if token.get(name):
            out[name] = str(token[name])
    # Phone-only accounts have no email; the phone number names them instead.
    who = str(info.get("email") or info.get("phone") or "")
    if who:
        out["email"] = who
    out.setdefault("email", "")
    return out


async def exchange(ctx: LoginContext, start: AuthCodeStart, code: str) -> dict[str, Any]:
    token = await _token(
        ctx,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": start.redirect_uri},
        "iFlow token exchange",
    )
    return _file(token, await _user_info(ctx, str(token["access_token"])))


async def refresh(ctx: LoginContext, data: dict[str, Any]) -> dict[str, Any]:
    rt = data.get("refresh_token")
    if not rt:
        raise InvalidGrant("no refresh_token in the auth file")
    # invalid_grant, or a 401 that does not blame the client, means the refresh token is dead.
    token = await _token(ctx, {"grant_type": "refresh_token", "refresh_token": rt}, "iFlow token refresh")
    return _file(token, await _user_info(ctx, str(token["access_token"])), data)


def _unix(stamp: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(stamp)).timestamp())
    except ValueError:
        return 0


def file_name(data: Mapping[str, Any]) -> str:
    # CLIProxyAPI's iflow-<email>-<unix>.json, the time being the login's.
    return f"{file_safe(PROVIDER, str(data.get('email') or 'account'), str(_unix(data.get('last_refresh'))))}.json"

