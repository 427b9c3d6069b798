"""How a Vertex AI service account logs in: its key is imported, then signs tokens.

There is no browser and no refresh token. Importing checks the Google
service-account key JSON and keeps it, whole, in CLIProxyAPI's vertex file
(``service_account`` next to ``project_id``, ``email`` and ``location``).
Requests carry an access token that `bearer` obtains with the OAuth 2.0
JWT-bearer grant (RFC 7523): an RS256 assertion signed with the key, traded
at Google's token endpoint for a token good for about an hour. The gateway's
token keeper calls `bearer` again before that hour is up, so the contract's
`REFRESH_LEAD` is None and there is no `refresh`: the file itself never
expires.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from .service_account import service_account_of
from ..login.base import Bearer, LoginContext, LoginError, file_safe, json_or_error

PROVIDER = "vertex"
FLOWS = ("service-account",)
REFRESH_LEAD = None
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Google refuses assertions that live longer than an hour.
ASSERTION_SECONDS = 3600
DEFAULT_LOCATION = "us-central1"
_REQUIRED = ("client_email", "private_key", "project_id", "token_uri")
_LOCATION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _as_mapping(key: Any) -> dict[str, Any]:
    if isinstance(key, Mapping):
        return dict(key)
    if isinstance(key, (bytes, bytearray)):
        key = bytes(key).decode("utf-8", "replace")
    if isinstance(key, str):
        try:
            parsed = json.loads(key)
        except ValueError:
            raise LoginError("service-account key: not JSON", "invalid_key") from None
        if isinstance(parsed, dict):
            return parsed
    raise LoginError("service-account key: expected a JSON object", "invalid_key")


def _private_key(pem: Any) -> RSAKey:
    """The RSA private key in `pem`; the error never quotes the key."""
    key = None
    if isinstance(pem, str) and "PRIVATE KEY" in pem:
        # Keys pasted through env vars or shells often arrive with literal "\n".
        try:
            key = RSAKey.import_key(pem.replace("\\n", "\n"))
        except (TypeError, ValueError):
            key = None
    if key is None or not key.is_private:
        raise LoginError(
            "service-account key: 'private_key' is not a PEM RSA private key that loads",
            "invalid_key",
        )
    return key


def _location(ctx: LoginContext) -> str:
    location = str(ctx.options.get("location") or DEFAULT_LOCATION).strip().lower()
    # It becomes part of a host name and a URL path.
    if not _LOCATION.fullmatch(location):
        raise LoginError(f"location {location!r} is not a Vertex AI location like us-central1", "invalid_key")
    return location


async def import_service_account(ctx: LoginContext, key: Any) -> dict[str, Any]:
    """The vertex auth file for a service-account key (JSON text or parsed).

    `ctx.options["location"]` picks the region (default us-central1).
    """
    sa = _as_mapping(key)
    if sa.get("type") != "service_account":
        raise LoginError(
            "service-account key: 'type' must be \"service_account\" "
            "(a key file from IAM → Service accounts → Keys)",
            "invalid_key",
        )
    for name in _REQUIRED:
        value = sa.get(name)
        if not isinstance(value, str) or not value.strip():
            raise LoginError(f"service-account key: '{name}' is missing or empty", "invalid_key")
    if "@" not in sa["client_email"]:
        raise LoginError("service-account key: 'client_email' is not an e-mail address", "invalid_key")
    if not sa["token_uri"].startswith(("https://", "http://")):
        raise LoginError("service-account key: 'token_uri' is not an http(s) URL", "invalid_key")
    _private_key(sa["private_key"])
    sa["private_key"] = sa["private_key"].replace("\\n", "\n")
    return {
        "type": PROVIDER,
        "service_account": sa,
        "project_id": sa["project_id"],
        "email": sa["client_email"],
        "location": _location(ctx),
    }


def assertion(sa: Mapping[str, Any], audience: str, now: float | None = None) -> str:
    """The signed JWT that asks for a cloud-platform token for `sa`."""
    email = str(sa.get("client_email") or "")
    if not email:
        raise LoginError("the vertex auth file's service account has no client_email", "invalid_key")
    key = _private_key(sa.get("private_key"))
    issued = int(time.time() if now is None else now)
    header = {"alg": "RS256", "typ": "JWT"}
    if sa.get("private_key_id"):
        header["kid"] = str(sa["private_key_id"])
    claims = {
        "iss": email,
        "sub": email,
        "aud": audience,
        "scope": SCOPE,
        "iat": issued,
        "exp": issued + ASSERTION_SECONDS,
    }
    return jwt.encode(header, claims, key)


async def bearer(ctx: LoginContext, data: Mapping[str, Any]) -> Bearer:
    """A fresh access token for the file's service account.

    One form POST (RFC 7523 §2.1) through the shared client: authlib's
    assertion client would sign with its deprecated `authlib.jose`, and
    joserfc already does the signing here.
    """
    token_url = ctx.urls["token-url"]
    signed = assertion(service_account_of(data), token_url)
    try:
        resp = await ctx.http.post(
            token_url,
            data={"grant_type": JWT_BEARER_GRANT, "assertion": signed},
            headers={"accept": "application/json"},
        )
    except httpx.HTTPError as e:
        raise LoginError(f"Vertex token exchange: {type(e).__name__} reaching the token endpoint") from e
    token = await json_or_error(resp, "Vertex token exchange")
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise LoginError("Vertex token exchange: no access_token in the answer")
    try:
        lifetime = float(token.get("expires_in") or ASSERTION_SECONDS)
    except (TypeError, ValueError):
        lifetime = ASSERTION_SECONDS
    return Bearer(access, time.time() + lifetime)


def file_name(data: Mapping[str, Any]) -> str:
    project = str(data.get("project_id") or service_account_of(data).get("project_id") or "")
    return f"{file_safe(PROVIDER, project or 'project')}.json"
