"""GitHub Copilot: GitHub device-login accounts, called with the Copilot token they are exchanged for (Chat Completions)."""

from __future__ import annotations

from ..base import Provider
from . import call, login, quota


PROVIDER = Provider(
    id="github-copilot",
    aliases=("copilot", "github"),
    calls={"oauth": call},
    login=login,
    quota=quota,
    upstreams={
        "base-url": "https://api.githubcopilot.com",
        "device-url": "https://github.com/login/device/code",
        "user-url": "https://api.github.com/user",
        "token-url": "https://github.com/login/oauth/access_token",
        "exchange-url": "https://api.github.com/copilot_internal/v2/token",
        # copilot_internal/user on the same API host
        "quota-url": "{exchange-url}/../../user",
    },
    catalog=(
        "gpt-4.1",
        "gpt-4o",
        "gpt-5",
        "gpt-5-mini",
        "claude-sonnet-4",
        "claude-sonnet-4.5",
        "claude-haiku-4.5",
        "claude-opus-4.1",
        "gemini-2.5-pro",
        "grok-code-fast-1",
    ),
    guest_families=("claude", "codex", "gemini"),
    auth_url_names=("github-copilot", "copilot"),
)
