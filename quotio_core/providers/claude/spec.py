"""Anthropic Claude: Claude Code OAuth accounts and claude-api-key entries (Messages)."""

from __future__ import annotations

from ..base import Provider
from . import call, login, quota


PROVIDER = Provider(
    id="claude",
    aliases=("anthropic",),
    calls={"oauth": call, "api-key": call},
    login=login,
    quota=quota,
    upstreams={
        "base-url": "https://api.anthropic.com",
        "authorize-url": "https://claude.ai/oauth/authorize",
        "token-url": "https://platform.claude.com/v1/oauth/token",
        "usage-url": "{base-url}/api/oauth/usage",
    },
    catalog=(
        "claude-opus-4-1-20250805",
        "claude-opus-4-20250514",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-20250514",
        "claude-haiku-4-5-20251001",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-haiku-20241022",
    ),
    families=(r"^claude",),
    auth_url_names=("anthropic", "claude"),
)
