"""Google Vertex AI: service-account auth files (Gemini and Claude models) and vertex-api-key entries (express mode, Gemini)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...install import key_id
from ..base import Provider
from . import call, login
from .service_account import SERVICE_ACCOUNT_STANDIN, service_account_of


def file_secret(data: Mapping[str, Any]) -> tuple[str, str, Any]:
    key = str(service_account_of(data).get("private_key") or "")
    return "service-account", SERVICE_ACCOUNT_STANDIN + key_id(key) if key else "", None


PROVIDER = Provider(
    id="vertex",
    calls={"service-account": call, "api-key": call},
    login=login,
    upstreams={
        # `{location}` is the auth file's location; "global" has no prefix.
        "base-url": "https://{location}-aiplatform.googleapis.com",
        "token-url": "https://oauth2.googleapis.com/token",
        # vertex-api-key entries (express mode) call the global endpoint.
        "api-key-base-url": "https://aiplatform.googleapis.com",
    },
    catalog=(
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-20250514",
        "claude-haiku-4-5-20251001",
    ),
    co_owns={"service-account": ("gemini", "claude"), "api-key": ("gemini",)},
    file_secret=file_secret,
)
