"""How a Claude (Pro/Max) account logs in: authorization code + PKCE S256.

The browser goes to claude.ai; the redirect lands on a local listener on
port 54545. Anthropic's token endpoint takes a JSON body, not the RFC 6749
form authlib's client sends, so the token calls are plain JSON posts; its
answer carries the account and organization next to the tokens.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from ..login.base import (
    AuthCodeStart,
    LoginContext,
    LoginError,
    authorize_url,
    file_safe,
    json_or_error,
    new_state,
    new_verifier,
    token_fields,
)

PROVIDER = "claude"
FLOWS = ("auth-code",)
CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPE = "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
CALLBACK_PORT = 54545
CALLBACK_PATH = "/callback"
REFRESH_LEAD = timedelta(hours=4)


def authorize(ctx: LoginContext) -> AuthCodeStart:
    state, verifier = new_state(), new_verifier()
    # `code=true` asks claude.ai to show the code as well as redirect, for remote logins.
    url = authorize_url(
        ctx.urls["authorize-url"], CLIENT_ID, ctx.redirect_uri, SCOPE, state, verifier, code="true"
    )
    return AuthCodeStart(url, state, verifier, ctx.redirect_uri)


def _file(token: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    account = token.get("account") or {}
    org = token.get("organization") or {}
    out = token_fields(PROVIDER, token, old or {}, 8 * 3600)
    if account.get("email_address"):
        out["email"] = account["email_address"]
    if account.get("uuid"):
        out["account_uuid"] = account["uuid"]
    if org.get("uuid"):
        out["organization_uuid"] = org["uuid"]
    if org.get("name"):
        out["organization_name"] = org["name"]
    out.setdefault("email", "")
    return out


async def exchange(ctx: LoginContext, start: AuthCodeStart, code: str) -> dict[str, Any]:
    # The page that shows the code gives it as "code#state".
    code = code.split("#", 1)[0]
    token = await _token_call(
        ctx,
        "Claude token exchange",
        {
            "grant_type": "authorization_code",
            "code": code,
            "state": start.state,
            "client_id": CLIENT_ID,
            "redirect_uri": start.redirect_uri,
            "code_verifier": start.verifier,
        },
    )
    if not token.get("access_token"):
        raise LoginError("Claude token exchange: no access_token in the answer")
    return _file(dict(token))


async def refresh(ctx: LoginContext, data: dict[str, Any]) -> dict[str, Any]:
    rt = data.get("refresh_token")
    if not rt:
        raise LoginError("no refresh_token in the auth file", "invalid_grant")
    token = await _token_call(
        ctx, "Claude token refresh", {"grant_type": "refresh_token", "refresh_token": rt, "client_id": CLIENT_ID}
    )
    if not token.get("access_token"):
        raise LoginError("Claude token refresh: no access_token in the answer")
    return _file(token, data)


async def _token_call(ctx: LoginContext, what: str, body: dict[str, str]) -> dict[str, Any]:
    try:
        resp = await ctx.http.post(ctx.urls["token-url"], json=body, headers={"accept": "application/json"})
    except httpx.HTTPError as e:
        raise LoginError(f"{what}: {type(e).__name__}", "unreachable") from e
    return await json_or_error(resp, what)


def file_name(data: dict[str, Any]) -> str:
    return f"{file_safe(PROVIDER, data.get('email') or data.get('account_uuid') or 'account')}.json"
