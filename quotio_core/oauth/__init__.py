"""Logging in to each provider and staying logged in.

One module per provider (``oauth/<provider>.py``), registered below by the
auth files' ``type``. A module offers the flows named in its ``FLOWS`` and
defines, for each:

* every module: ``PROVIDER``, ``FLOWS``, ``REFRESH_LEAD`` (a ``timedelta``
  before expiry at which the refresher renews the token, or None when the
  stored token does not expire), ``file_name(data) -> str`` and
  ``async refresh(ctx, data) -> dict`` (the whole new file; it keeps the old
  refresh token when the answer has none and raises ``InvalidGrant`` when the
  grant is dead). A module whose stored token never expires may omit refresh.
* ``"auth-code"``: ``CALLBACK_PORT``, ``CALLBACK_PATH``,
  ``authorize(ctx) -> AuthCodeStart`` and
  ``async exchange(ctx, start, code) -> dict`` (the auth file's JSON).
* ``"device"``: ``async device_start(ctx) -> DeviceStart`` and
  ``async device_poll(ctx, start) -> dict | None`` (None while pending;
  raises ``SlowDown`` or ``LoginError``).
* ``"service-account"``: ``async import_service_account(ctx, key) -> dict``.
* optionally ``async bearer(ctx, data) -> Bearer`` when requests carry a
  short-lived token derived from the file rather than the file's own token.

The file JSON is CLIProxyAPI's format for that provider, so a file written
here works in CLIProxyAPI and the other way round.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .base import AuthCodeStart, Bearer, DeviceStart, InvalidGrant, LoginContext, LoginError, SlowDown

__all__ = [
    "AuthCodeStart",
    "Bearer",
    "DeviceStart",
    "InvalidGrant",
    "LoginContext",
    "LoginError",
    "SlowDown",
    "canonical_provider",
    "login_module",
    "login_providers",
]

# provider id -> module name under quotio_core.oauth
_MODULES = {
    "claude": "claude",
    "codex": "codex",
    "gemini": "gemini",
    "github-copilot": "github_copilot",
    "qwen": "qwen",
    "iflow": "iflow",
    "vertex": "vertex",
    "kiro": "kiro",
}

# Names the management routes and CLIs use for the same providers.
_ALIASES = {
    "anthropic": "claude",
    "gemini-cli": "gemini",
    "google": "gemini",
    "openai": "codex",
    "copilot": "github-copilot",
    "github": "github-copilot",
    "kiro-aws": "kiro",
}


def canonical_provider(name: str) -> str:
    name = (name or "").strip().lower()
    return _ALIASES.get(name, name)


def login_providers() -> list[str]:
    return list(_MODULES)


def login_module(provider: str) -> ModuleType | None:
    name = _MODULES.get(canonical_provider(provider))
    return importlib.import_module(f"{__name__}.{name}") if name else None
