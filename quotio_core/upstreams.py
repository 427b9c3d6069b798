"""Every upstream URL a provider module calls, with its real default.

Each one can be overridden under ``upstreams.<provider>.<name>`` in the
config file, which is how the tests point the whole gateway at loopback.
A default may name another URL of the same provider (``{base-url}/…``,
``..`` allowed), so moving an API base moves the endpoints that live on it.
Provider ids are the auth files' ``type`` values.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

__all__ = ["DEFAULT_UPSTREAMS", "PROVIDERS", "merge_upstreams"]

PROVIDERS = (
    "claude",
    "codex",
    "gemini",
    "vertex",
    "github-copilot",
    "qwen",
    "iflow",
    "kiro",
)

DEFAULT_UPSTREAMS: dict[str, dict[str, str]] = {
    "claude": {
        "base-url": "https://api.anthropic.com",
        "authorize-url": "https://claude.ai/oauth/authorize",
        "token-url": "https://platform.claude.com/v1/oauth/token",
        "usage-url": "{base-url}/api/oauth/usage",
    },
    "codex": {
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
    "gemini": {
        # gemini-api-key entries call the public Generative Language API;
        # OAuth accounts call Code Assist.
        "api-key-base-url": "https://generativelanguage.googleapis.com",
        "base-url": "https://cloudcode-pa.googleapis.com",
        "authorize-url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token-url": "https://oauth2.googleapis.com/token",
        "userinfo-url": "https://www.googleapis.com/oauth2/v2/userinfo",
        # Code Assist's own methods (loadCodeAssist, onboardUser) live on base-url.
        "quota-url": "{base-url}/v1internal:retrieveUserQuota",
    },
    "vertex": {
        # `{location}` is the auth file's location; "global" has no prefix.
        "base-url": "https://{location}-aiplatform.googleapis.com",
        "token-url": "https://oauth2.googleapis.com/token",
        # vertex-api-key entries (express mode) call the global endpoint.
        "api-key-base-url": "https://aiplatform.googleapis.com",
    },
    "github-copilot": {
        "base-url": "https://api.githubcopilot.com",
        "device-url": "https://github.com/login/device/code",
        "user-url": "https://api.github.com/user",
        "token-url": "https://github.com/login/oauth/access_token",
        "exchange-url": "https://api.github.com/copilot_internal/v2/token",
        "quota-url": "{exchange-url}/../../user",  # copilot_internal/user on the same API host
    },
    "qwen": {
        "base-url": "https://portal.qwen.ai/v1",
        "device-url": "https://chat.qwen.ai/api/v1/oauth2/device/code",
        "token-url": "https://chat.qwen.ai/api/v1/oauth2/token",
    },
    "iflow": {
        "base-url": "https://apis.iflow.cn/v1",
        "authorize-url": "https://iflow.cn/oauth",
        "token-url": "https://iflow.cn/oauth/token",
        "userinfo-url": "https://iflow.cn/api/oauth/getUserInfo",
        "api-key-url": "https://platform.iflow.cn/api/openapi/apikey",
    },
    "kiro": {
        "base-url": "https://codewhisperer.us-east-1.amazonaws.com",
        # {region}: the account's (IdC organisations have their own), else us-east-1.
        "oidc-url": "https://oidc.{region}.amazonaws.com",
        "social-refresh-url": "https://prod.{region}.auth.desktop.kiro.dev/refreshToken",
        "usage-url": "{base-url}/getUsageLimits",
    },
}


def merge_upstreams(
    overrides: Mapping[str, Mapping[str, str]] | None,
) -> dict[str, dict[str, str]]:
    """Overlay configured overrides on the defaults.

    Raises ValueError naming the unknown provider or URL name, so a typo in
    the config cannot silently leave a real upstream in place during tests.
    """
    merged = {p: dict(urls) for p, urls in DEFAULT_UPSTREAMS.items()}
    for provider, urls in (overrides or {}).items():
        if provider not in merged:
            raise ValueError(
                f"upstreams.{provider}: unknown provider (expected one of {', '.join(PROVIDERS)})"
            )
        for name, url in urls.items():
            if name not in merged[provider]:
                known = ", ".join(sorted(merged[provider]))
                raise ValueError(
                    f"upstreams.{provider}.{name}: unknown URL name (expected one of {known})"
                )
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(
                    f"upstreams.{provider}.{name}: expected an http(s) URL, got {url!r}"
                )
            merged[provider][name] = url.rstrip("/")
    for urls in merged.values():
        for name, url in urls.items():
            urls[name] = _resolve(url, urls)
    return merged


_REF = re.compile(r"\{([a-z-]+)\}")


def _resolve(url: str, urls: Mapping[str, str], depth: int = 0) -> str:
    """`url` with `{name}` references to its siblings filled in and `..` folded."""
    if "{" not in url or depth > 4:
        return url
    filled = _REF.sub(lambda m: _resolve(urls.get(m[1], m[0]), urls, depth + 1), url)
    parts = urlsplit(filled)
    path = posixpath.normpath(parts.path) if ".." in parts.path else parts.path
    return urlunsplit(parts._replace(path=path))
