"""How a Codex (ChatGPT) account logs in: authorization code + PKCE, or the device flow.

The browser flow redirects to a listener on port 1455. The device flow asks
OpenAI for a user code, polls until the user has entered it, and is then
handed an authorization code and verifier to exchange like the browser flow.
The account id the Codex backend wants is read from the id_token.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .call import account_id
from ..login.base import (
    AuthCodeStart,
    DeviceStart,
    LoginContext,
    LoginError,
    authorize_url,
    file_safe,
    json_or_error,
    jwt_claims,
    new_state,
    new_verifier,
    oauth_client,
    oauth_failure,
    short_hash,
    token_fields,
)

PROVIDER = "codex"
FLOWS = ("auth-code", "device")
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
SCOPE = "openid email profile offline_access"
REFRESH_SCOPE = "openid profile email"
CALLBACK_PORT = 1455
CALLBACK_PATH = "/auth/callback"
REFRESH_LEAD = timedelta(days=5)
# The redirect the device flow's authorization code was issued for (unconfirmed;
# `upstreams.codex.device-redirect-uri` changes it).
DEVICE_REDIRECT_URI = "https://auth.openai.com/deviceauth/callback"


def authorize(ctx: LoginContext) -> AuthCodeStart:
    state, verifier = new_state(), new_verifier()
    url = authorize_url(
        ctx.urls["authorize-url"], CLIENT_ID, ctx.redirect_uri, SCOPE, state, verifier,
        id_token_add_organizations="true", codex_cli_simplified_flow="true",
    )
    return AuthCodeStart(url, state, verifier, ctx.redirect_uri)


def _file(token: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    out = token_fields(PROVIDER, token, old or {}, 10 * 86400)
    claims = jwt_claims(str(out.get("id_token") or ""))
    if claims.get("email"):
        out["email"] = claims["email"]
    if acct := account_id({"id_token": out.get("id_token"), "access_token": out["access_token"]}):
        out["account_id"] = acct
    auth = claims.get("https://api.openai.com/auth")
    if isinstance(auth, dict) and auth.get("chatgpt_plan_type"):
        out["plan_type"] = auth["chatgpt_plan_type"]
    out.setdefault("email", "")
    return out


async def _exchange_code(ctx: LoginContext, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
    async with oauth_client(CLIENT_ID, redirect_uri=redirect_uri) as client:
        try:
            token = await client.fetch_token(ctx.urls["token-url"], code=code, code_verifier=verifier)
        except Exception as e:
            raise oauth_failure(e, "Codex token exchange") from e
    if not token.get("access_token"):
        raise LoginError("Codex token exchange: no access_token in the answer")
    return _file(dict(token))


async def exchange(ctx: LoginContext, start: AuthCodeStart, code: str) -> dict[str, Any]:
    return await _exchange_code(ctx, code, start.verifier, start.redirect_uri)


async def device_start(ctx: LoginContext) -> DeviceStart:
    resp = await ctx.http.post(ctx.urls["device-url"], json={"client_id": CLIENT_ID})
    data = await json_or_error(resp, "Codex device code")
    if not data.get("device_auth_id") or not data.get("user_code"):
        raise LoginError("Codex device code: the answer has no device_auth_id/user_code")
    return DeviceStart(
        device_code=str(data["device_auth_id"]),
        user_code=str(data["user_code"]),
        verification_uri=ctx.urls["device-verify-url"],
        verification_uri_complete="",
        expires_in=int(data.get("expires_in") or 900),
        interval=float(data.get("interval") or 5),
    )


async def device_poll(ctx: LoginContext, start: DeviceStart) -> dict[str, Any] | None:
    resp = await ctx.http.post(
        ctx.urls["device-token-url"],
        json={"device_auth_id": start.device_code, "user_code": start.user_code},
    )
    # The user has not entered the code yet: OpenAI answers 403/404 until then.
    if resp.status_code in (403, 404):
        return None
    data = await json_or_error(resp, "Codex device token")
    code, verifier = data.get("authorization_code"), data.get("code_verifier")
    if not code or not verifier:
        raise LoginError("Codex device token: the answer has no authorization_code/code_verifier")
    redirect = ctx.urls.get("device-redirect-uri") or DEVICE_REDIRECT_URI
    return await _exchange_code(ctx, str(code), str(verifier), redirect)


async def refresh(ctx: LoginContext, data: dict[str, Any]) -> dict[str, Any]:
    rt = data.get("refresh_token")
    if not rt:
        raise LoginError("no refresh_token in the auth file", "invalid_grant")
    async with oauth_client(CLIENT_ID) as client:
        try:
            token = await client.refresh_token(ctx.urls["token-url"], refresh_token=rt, scope=REFRESH_SCOPE)
        except Exception as e:
            raise oauth_failure(e, "Codex token refresh") from e
    return _file(dict(token), data)


def file_name(data: dict[str, Any]) -> str:
    acct = str(data.get("account_id") or "")
    return (
        file_safe(
            PROVIDER, short_hash(acct) if acct else "", data.get("email") or "account", data.get("plan_type") or ""
        )
        + ".json"
    )
