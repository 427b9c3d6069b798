"""What every provider login module shares: the flow types, errors and helpers.

A provider's login module (``quotio_core/oauth/<provider>.py``) is a plain
module with some of these names; which ones it has says which flows it
offers (see ``quotio_core/oauth/__init__.py`` for the contract). Modules do
network I/O only through the ``httpx.AsyncClient`` in the context they are
handed, so tests point every URL at loopback through ``upstreams``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

__all__ = [
    "AuthCodeStart",
    "DeviceStart",
    "InvalidGrant",
    "LoginContext",
    "LoginError",
    "SlowDown",
    "expiry_in",
    "file_safe",
    "jwt_claims",
    "new_state",
    "new_verifier",
    "now_rfc3339",
    "rfc3339",
    "s256",
]


class LoginError(Exception):
    """A login or refresh that failed; `code` is the OAuth error code when there is one."""

    def __init__(self, message: str, code: str = "login_failed"):
        super().__init__(message)
        self.code = code


class InvalidGrant(LoginError):
    """The refresh token (or the GitHub token behind it) is dead: only a new login helps."""

    def __init__(self, message: str = "the refresh token was rejected (invalid_grant)"):
        super().__init__(message, "invalid_grant")


class SlowDown(Exception):
    """The device-code poll was told to slow down; `interval` is the new one."""

    def __init__(self, interval: float):
        super().__init__(f"slow down to {interval}s")
        self.interval = interval


@dataclass(frozen=True)
class LoginContext:
    """What a login module may use: its URLs, an HTTP client, the callback target."""

    urls: Mapping[str, str]  # this provider's `upstreams.<provider>.*`
    http: httpx.AsyncClient
    redirect_uri: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # e.g. gemini project_id


@dataclass(frozen=True)
class AuthCodeStart:
    """An authorization-code login waiting for the browser to come back."""

    url: str
    state: str
    verifier: str
    redirect_uri: str


@dataclass(frozen=True)
class DeviceStart:
    """A device-code login waiting for the user to enter `user_code`."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: float
    # Provider-specific state the poll needs (PKCE verifier, a registered client).
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "device_code": self.device_code,
            "user_code": self.user_code,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": self.verification_uri_complete or self.verification_uri,
            "expires_in": self.expires_in,
            "interval": self.interval,
        }


def new_state() -> str:
    return generate_token(32)


def new_verifier() -> str:
    # RFC 7636: 43–128 characters; 64 from authlib's unreserved alphabet.
    return generate_token(64)


def s256(verifier: str) -> str:
    return create_s256_code_challenge(verifier)


def token_fields(provider: str, token: Mapping[str, Any], old: Mapping[str, Any], default_seconds: int) -> dict[str, Any]:
    """`old` with a token answer's snake_case fields in CLIProxyAPI's names.

    The old refresh token stays when the answer has none (many refreshes
    do not rotate it).
    """
    out = {
        **old,
        "type": provider,
        "access_token": token["access_token"],
        "refresh_token": token.get("refresh_token") or old.get("refresh_token", ""),
        "expired": expiry_in(token.get("expires_in"), default_seconds),
        "last_refresh": now_rfc3339(),
    }
    if token.get("id_token"):
        out["id_token"] = token["id_token"]
    return out


def logged_in(data: Mapping[str, Any]) -> dict[str, Any]:
    """A file after a successful login or refresh: no stale needs-login mark."""
    return {k: v for k, v in data.items() if k not in ("needs_login", "last_error")}


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC))


def expiry_in(seconds: Any, default: int = 3600) -> str:
    """The RFC 3339 expiry `seconds` from now, as CLIProxyAPI writes `expired`."""
    try:
        secs = int(float(seconds))
    except (TypeError, ValueError):
        secs = default
    return rfc3339(datetime.now(UTC) + timedelta(seconds=secs))


def jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified: only read for names the issuer put in it."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


def file_safe(*parts: str) -> str:
    """Auth-file name parts joined by '-', without path separators or spaces."""
    cleaned = [_UNSAFE.sub("_", p).strip("._") for p in parts if p]
    return "-".join(p for p in cleaned if p)


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def random_id() -> str:
    return secrets.token_hex(6)


async def json_or_error(resp: httpx.Response, what: str) -> dict[str, Any]:
    """A JSON object from `resp`, or a LoginError saying what the server said instead."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code >= 400 or not isinstance(data, dict):
        detail = ""
        if isinstance(data, dict):
            detail = str(data.get("error_description") or data.get("error") or data.get("message") or "")
        code = str(data.get("error")) if isinstance(data, dict) and data.get("error") else "bad_response"
        if code == "invalid_grant":
            raise InvalidGrant(f"{what}: invalid_grant" + (f": {detail}" if detail and detail != code else ""))
        raise LoginError(f"{what}: HTTP {resp.status_code} {detail or resp.text[:200]}".strip(), code)
    return data


@dataclass(frozen=True)
class Bearer:
    """A short-lived upstream token derived from an auth file, kept in memory only.

    GitHub Copilot trades the stored GitHub token for a Copilot token; Vertex
    signs a JWT with the service account's key. Neither goes back to disk.
    """

    token: str = field(repr=False)
    expires_at: float  # unix seconds
    # Values the executor needs besides the token (Copilot's per-account API base).
    extra: Mapping[str, Any] = field(default_factory=dict)


def oauth_client(
    client_id: str,
    *,
    client_secret: str | None = None,
    scope: str | None = None,
    redirect_uri: str | None = None,
    auth_method: str | None = None,
):
    """An authlib OAuth 2.0 client for one exchange or refresh (use with `async with`).

    Environment proxies are ignored like everywhere else in the gateway:
    upstream proxies are configured per credential.
    """
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    client = AsyncOAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method or ("client_secret_post" if client_secret else "none"),
        trust_env=False,
        timeout=30.0,
        headers={"Accept": "application/json"},
    )
    return client


def oauth_failure(err: Exception, what: str) -> LoginError:
    """authlib's OAuthError (or a transport error) as our LoginError/InvalidGrant."""
    code = getattr(err, "error", None) or "login_failed"
    desc = getattr(err, "description", None) or str(err)
    if code == "invalid_grant":
        return InvalidGrant(f"{what}: {desc}")
    return LoginError(f"{what}: {code}: {desc}" if code != "login_failed" else f"{what}: {desc}", code)


def authorize_url(
    url: str,
    client_id: str,
    redirect_uri: str,
    scope: str | None,
    state: str,
    verifier: str | None,
    **extra: str,
) -> str:
    """An authorization-code URL (RFC 6749 §4.1.1), with the PKCE S256 challenge."""
    from authlib.oauth2.rfc6749.parameters import prepare_grant_uri

    if verifier:
        extra = {**extra, "code_challenge": s256(verifier), "code_challenge_method": "S256"}
    return prepare_grant_uri(
        url, client_id, "code", redirect_uri=redirect_uri, scope=scope, state=state, **extra
    )
