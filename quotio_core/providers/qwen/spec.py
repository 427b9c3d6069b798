"""Qwen Code: Qwen device-login accounts (Chat Completions on DashScope)."""

from __future__ import annotations

from ..base import Provider
from . import call, login


PROVIDER = Provider(
    id="qwen",
    calls={"oauth": call},
    login=login,
    upstreams={
        "base-url": "https://portal.qwen.ai/v1",
        "device-url": "https://chat.qwen.ai/api/v1/oauth2/device/code",
        "token-url": "https://chat.qwen.ai/api/v1/oauth2/token",
    },
    catalog=(
        "qwen3-coder-plus",
        "qwen3-coder-flash",
    ),
    families=(r"^(qwen|qwq)",),
    auth_url_names=("qwen",),
)
