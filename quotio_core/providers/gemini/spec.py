"""Google Gemini: gemini-api-key entries (the public API) and Gemini CLI OAuth accounts (Code Assist)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Provider, token_file_secret
from . import call, code_assist, login, quota


def file_secret(data: Mapping[str, Any]) -> tuple[str, str, Any]:
    """Gemini CLI's files keep the token under `token` (oauth2client's shape)."""
    token = data.get("token")
    if isinstance(token, Mapping):
        return "oauth", str(token.get("access_token") or ""), token.get("expiry")
    return token_file_secret(data)


PROVIDER = Provider(
    id="gemini",
    aliases=("gemini-cli", "google"),
    calls={"api-key": call, "oauth": code_assist},
    login=login,
    quota=quota,
    upstreams={
        # gemini-api-key entries call the public Generative Language API; OAuth accounts call Code Assist.
        "api-key-base-url": "https://generativelanguage.googleapis.com",
        "base-url": "https://cloudcode-pa.googleapis.com",
        "authorize-url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token-url": "https://oauth2.googleapis.com/token",
        "userinfo-url": "https://www.googleapis.com/oauth2/v2/userinfo",
        # Code Assist's own methods (loadCodeAssist, onboardUser) live on base-url.
        "quota-url": "{base-url}/v1internal:retrieveUserQuota",
    },
    catalog=(
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
    ),
    families=(r"^gemini",),
    auth_url_names=("gemini-cli",),
    file_secret=file_secret,
)
