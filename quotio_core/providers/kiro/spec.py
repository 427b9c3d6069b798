"""Kiro (AWS CodeWhisperer): Builder ID / IdC and social-login accounts serving Claude models (AWS event streams)."""

from __future__ import annotations

from ..base import Provider
from . import call, login, quota


PROVIDER = Provider(
    id="kiro",
    aliases=("kiro-aws",),
    calls={"oauth": call},
    login=login,
    quota=quota,
    upstreams={
        "base-url": "https://codewhisperer.us-east-1.amazonaws.com",
        # {region}: the account's (IdC organisations have their own), else us-east-1.
        "oidc-url": "https://oidc.{region}.amazonaws.com",
        "social-refresh-url": "https://prod.{region}.auth.desktop.kiro.dev/refreshToken",
        "usage-url": "{base-url}/getUsageLimits",
    },
    catalog=(
        "claude-sonnet-4.5",
        "claude-haiku-4.5",
        "claude-opus-4.5",
    ),
    guest_families=("claude",),
    auth_url_names=("kiro",),
)
