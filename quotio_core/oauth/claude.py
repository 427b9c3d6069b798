"""How a Claude (Pro/Max) account logs in: authorization code + PKCE S256.

The browser goes to claude.ai; the redirect lands on a local listener on
port 54545. Anthropic's token endpoint takes JSON, not a form, and answers
with the account and organization next to the tokens.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .base import (
    AuthCodeStart,
    LoginContext,
    LoginError,
    authorize_url,
    expiry_in,
    file_safe,
    new_state,
    new_verifier,
    now_rfc3339,
    oauth_client,
    oauth_failure,
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
    out = dict(old or {})
    account = token.get("account") or {}
    org = token.get("organization") or {}
    out.update(
        {
            "type": PROVIDER,
            "access_token": token["access_token"],
            "refresh_token": token.get("refresh_token") or out.get("refresh_token", ""),
            "expired": expiry_in(token.get("expires_in"), 8 * 3600),
            "last_refresh": now_rfc3339(),
        }
    )
    if token.get("id_token"):
        out["id_token"] = token["id_token"]
    if account.get("email_address"):
        out["email"] = account["email_address"]
    if account.get("uuid"):
        out["account_uuid"] = account["uuid"]
    if org.get("uuid"):
        out["organization_uuid"] = org["uuid"]
    if org.get("name"):
        out["organization_name"] = org["name"]
    out.setdefault("email", "")
    out.pop("needs_login", None)
    out.pop("last_error", None)
    return out


async def exchange(ctx: LoginContext, start: AuthCodeStart, code: str) -> dict[str, Any]:
    # The page that shows the code gives it as "code#state".
    code = code.split("#", 1)[0]
    async with oauth_client(CLIENT_ID, redirect_uri=start.redirect_uri, json_body=True) as client:
        try:
            token = await client.fetch_token(
                ctx.urls["token-url"], code=code, code_verifier=start.verifier, state=start.state
            )
        except Exception as e:  # authlib's OAuthError or a transport error
            raise oauth_failure(e, "Claude token exchange") from e
    if not token.get("access_token"):
        raise LoginError("Claude token exchange: no access_token in the answer")
    return _file(dict(token))


async def refresh(ctx: LoginContext, data: dict[str, Any]) -> dict[str, Any]:
    rt = data.get("refresh_token")
    if not rt:
        raise LoginError("no refresh_token in the auth file", "invalid_grant")
    async with oauth_client(CLIENT_ID, json_body=True) as client:
        try:
            token = await client.refresh_token(ctx.urls["token-url"], refresh_token=rt)
        except Exception as e:
            raise oauth_failure(e, "Claude token refresh") from e
    return _file(dict(token), data)


def file_name(data: dict[str, Any]) -> str:
    return f"{file_safe(PROVIDER, data.get('email') or data.get('account_uuid') or 'account')}.json"
