"""iFlow: iFlow accounts, called with the API key the login fetches (Chat Completions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..base import Provider, token_file_secret
from . import call, login


def file_secret(data: Mapping[str, Any]) -> tuple[str, str, Any]:
    """Requests carry the API key the login fetched, not the OAuth token."""
    if data.get("api_key"):
        expiry = data.get("expired") if data.get("expired") is not None else data.get("expires_at")
        return "oauth", str(data["api_key"]), expiry
    return token_file_secret(data)


PROVIDER = Provider(
    id="iflow",
    calls={"oauth": call},
    login=login,
    upstreams={
        "base-url": "https://apis.iflow.cn/v1",
        "authorize-url": "https://iflow.cn/oauth",
        "token-url": "https://iflow.cn/oauth/token",
        "userinfo-url": "https://iflow.cn/api/oauth/getUserInfo",
        "api-key-url": "https://platform.iflow.cn/api/openapi/apikey",
    },
    catalog=(
        "qwen3-coder-plus",
        "qwen3-max",
        "qwen3-vl-plus",
        "qwen3-235b-a22b-instruct",
        "kimi-k2",
        "kimi-k2-0905",
        "glm-4.6",
        "deepseek-v3.2",
        "deepseek-v3.1",
        "deepseek-r1",
    ),
    guest_families=("qwen",),
    auth_url_names=("iflow",),
    file_secret=file_secret,
)
