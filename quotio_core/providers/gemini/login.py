"""How a Gemini CLI (Google) account logs in, and which Code Assist project it uses.

Google's authorization code flow with offline access and forced consent (so a
refresh token is issued every time), redirected to a listener on port 8085.
The Code Assist project is the one the user names, else the one
`loadCodeAssist` reports, else the one `onboardUser` creates.
The file keeps the token in CLIProxyAPI's nested `token` object.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from ..login.base import (
    AuthCodeStart,
    LoginContext,
    LoginError,
    authorize_url,
    expiry_in,
    file_safe,
    json_or_error,
    new_state,
    new_verifier,
    oauth_client,
    oauth_failure,
)

PROVIDER = "gemini"
FLOWS = ("auth-code",)
# Gemini CLI's installed-app client; Google documents such secrets as not secret.
CLIENT_ID = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com"
CLIENT_SECRET = "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"
SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
)
CALLBACK_PORT = 8085
CALLBACK_PATH = "/oauth2callback"
# Google access tokens live an hour; renew them shortly before.
REFRESH_LEAD = timedelta(minutes=5)
METADATA = {"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
ONBOARD_MAX_POLLS = 24


def authorize(ctx: LoginContext) -> AuthCodeStart:
    state, verifier = new_state(), new_verifier()
    url = authorize_url(
        ctx.urls["authorize-url"], CLIENT_ID, ctx.redirect_uri, " ".join(SCOPES), state, verifier,
        access_type="offline", prompt="consent",
    )
    return AuthCodeStart(url, state, verifier, ctx.redirect_uri)


def _token(token: dict[str, Any], old: dict[str, Any], token_url: str) -> dict[str, Any]:
    return {
        **old,
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token") or old.get("refresh_token", ""),
        "token_type": token.get("token_type") or "Bearer",
        "expiry": expiry_in(token.get("expires_in"), 3600),
        "token_uri": token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": list(SCOPES),
    }


async def _code_assist(ctx: LoginContext, method: str, bearer: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await ctx.http.post(
        f"{ctx.urls['base-url']}/v1internal:{method}",
        json=body,
        headers={"authorization": f"Bearer {bearer}"},
    )
    return await json_or_error(resp, f"Code Assist {method}")


async def discover_project(ctx: LoginContext, bearer: str, wanted: str = "") -> tuple[str, bool]:
    """(project id, whether it was found automatically) for a fresh login."""
    load_body: dict[str, Any] = {"metadata": METADATA}
    if wanted:
        load_body["cloudaicompanionProject"] = wanted
    loaded = await _code_assist(ctx, "loadCodeAssist", bearer, load_body)
    if loaded.get("currentTier"):
        project = loaded.get("cloudaicompanionProject") or wanted
        if isinstance(project, dict):
            project = project.get("id", "")
        if project:
            return str(project), not wanted
    tiers = loaded.get("allowedTiers") or []
    tier = next((t for t in tiers if t.get("isDefault")), tiers[0] if tiers else {"id": "free-tier"})
    onboard: dict[str, Any] = {"tierId": tier.get("id", "free-tier"), "metadata": METADATA}
    # The free tier provisions its own project; naming one is refused.
    if tier.get("id") != "free-tier" and wanted:
        onboard["cloudaicompanionProject"] = wanted
    for _ in range(ONBOARD_MAX_POLLS):
        op = await _code_assist(ctx, "onboardUser", bearer, onboard)
        if op.get("done"):
            project = (op.get("response") or {}).get("cloudaicompanionProject") or {}
            pid = project.get("id") if isinstance(project, dict) else project
            if pid or wanted:
                return str(pid or wanted), not wanted
            break
        await asyncio.sleep(float(ctx.options.get("poll_seconds", 5.0)))
    raise LoginError(
        "Code Assist did not provide a project for this account; "
        "log in again naming one (project_id)",
        "project_missing",
    )


async def exchange(ctx: LoginContext, start: AuthCodeStart, code: str) -> dict[str, Any]:
    token_url = ctx.urls["token-url"]
    async with oauth_client(CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uri=start.redirect_uri) as client:
        try:
            token = dict(await client.fetch_token(token_url, code=code, code_verifier=start.verifier))
        except Exception as e:
            raise oauth_failure(e, "Google token exchange") from e
    if not token.get("access_token"):
        raise LoginError("Google token exchange: no access_token in the answer")
    resp = await ctx.http.get(
        ctx.urls["userinfo-url"], headers={"authorization": f"Bearer {token['access_token']}"}
    )
    email = str((await json_or_error(resp, "Google userinfo")).get("email") or "")
    wanted = str(ctx.options.get("project_id") or "")
    project, auto = await discover_project(ctx, token["access_token"], wanted)
    return {
        "type": PROVIDER,
        "email": email,
        "project_id": project,
        "auto": auto,
        "checked": True,
        "token": _token(token, {}, token_url),
    }


async def refresh(ctx: LoginContext, data: dict[str, Any]) -> dict[str, Any]:
    old = data.get("token") if isinstance(data.get("token"), dict) else {}
    rt = old.get("refresh_token") or data.get("refresh_token")
    if not rt:
        raise LoginError("no refresh_token in the auth file", "invalid_grant")
    # A file from another tool may name its own client; refresh with the one that issued it.
    client_id = old.get("client_id") or CLIENT_ID
    secret = old.get("client_secret") or (CLIENT_SECRET if client_id == CLIENT_ID else None)
    token_url = ctx.urls["token-url"]
    async with oauth_client(client_id, client_secret=secret) as client:
        try:
            token = dict(await client.refresh_token(token_url, refresh_token=rt))
        except Exception as e:
            raise oauth_failure(e, "Google token refresh") from e
    new_token = _token(token, {**old, "refresh_token": rt}, token_url)
    new_token["client_id"], new_token["client_secret"] = client_id, secret
    out = {**data, "token": new_token}
    return out


def file_name(data: dict[str, Any]) -> str:
    return f"{file_safe(PROVIDER, data.get('email') or 'account', data.get('project_id') or '')}.json"
