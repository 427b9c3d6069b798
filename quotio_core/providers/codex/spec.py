"""OpenAI Codex: ChatGPT OAuth accounts (the Codex backend, Responses) and codex-api-key entries (platform keys, Chat Completions)."""

from __future__ import annotations

from ..base import Provider
from ..openai_compat import call as openai_compat
from . import call, login, quota


PROVIDER = Provider(
    id="codex",
    aliases=("openai",),
    calls={"oauth": call, "api-key": openai_compat},
    login=login,
    quota=quota,
    upstreams={
        "base-url": "https://chatgpt.com/backend-api/codex",
        # codex-api-key entries are plain OpenAI platform keys.
        "api-key-base-url": "https://api.openai.com/v1",
        "authorize-url": "https://auth.openai.com/oauth/authorize",
        "token-url": "https://auth.openai.com/oauth/token",
        "device-url": "https://auth.openai.com/api/accounts/deviceauth/usercode",
        "device-token-url": "https://auth.openai.com/api/accounts/deviceauth/token",
        "device-verify-url": "https://auth.openai.com/codex/device",
        "device-redirect-uri": "https://auth.openai.com/deviceauth/callback",
        "usage-url": "{base-url}/../wham/usage",
    },
    catalog=(
        "gpt-5",
        "gpt-5-codex",
        "gpt-5-mini",
        "gpt-4.1",
        "gpt-4o",
        "o3",
        "o4-mini",
    ),
    families=(r"^(gpt-|chatgpt|codex|o\d)",),
    auth_url_names=("codex",),
)
