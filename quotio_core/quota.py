"""Per-account quota: what each subscription has left, fetched from the provider.

One fetcher per provider lives beside that provider's executor
(``providers/<provider>_quota.py``) with

* ``PROVIDER``
* ``async fetch(ctx: QuotaContext, cred: Credential) -> QuotaReport``

A fetcher maps the provider's own answer onto :class:`Window` rows and says
``forbidden`` for a 401/403 rather than inventing numbers. A provider with
no fetcher is reported as ``unsupported``.

The :class:`QuotaBook` keeps the last report per credential, refreshes them
on a schedule and on demand, and turns an exhausted window into an
account-wide cooldown until the window resets, so the pool stops picking the
account before a client ever sees its 429; a later report with room in every
window lifts that cooldown at once.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any, Literal

import httpx

from .credentials import Credential

__all__ = ["QuotaBook", "QuotaContext", "QuotaReport", "Window", "fetcher_for"]

log = logging.getLogger(__name__)

Status = Literal["ok", "forbidden", "unsupported", "error"]

# provider id -> module under quotio_core.providers
_FETCHERS = {
    "claude": "claude_quota",
    "codex": "codex_quota",
    "gemini": "gemini_quota",
    "github-copilot": "github_copilot_quota",
    "kiro": "kiro_quota",
}
# The reason a quota cooldown carries, so a later report can lift exactly those.
QUOTA_REASON = "quota window exhausted"


def fetcher_for(provider: str) -> ModuleType | None:
    name = _FETCHERS.get(provider)
    if name is None:
        return None
    try:
        return importlib.import_module(f"{__package__}.providers.{name}")
    except ModuleNotFoundError:
        return None


@dataclass(frozen=True)
class Window:
    """One quota window or bucket (Claude's five_hour, Copilot's premium_interactions, …)."""

    name: str
    used: float | None = None
    limit: float | None = None
    remaining_pct: float | None = None  # 0–100; None when the provider does not say
    resets_at: float | None = None  # unix seconds
    unit: str = "percent"  # percent | requests | credits | tokens
    # Set when the window limits one model only (Code Assist's per-model
    # buckets): exhausting it cools that model, not the whole account.
    model: str | None = None

    @property
    def exhausted(self) -> bool:
        return self.remaining_pct is not None and self.remaining_pct <= 0


@dataclass(frozen=True)
class QuotaReport:
    status: Status
    windows: tuple[Window, ...] = ()
    plan: str | None = None
    error: str = ""
    fetched_at: float = field(default_factory=time.time)

    def public(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "plan": self.plan,
            "error": self.error or None,
            "fetched_at": self.fetched_at,
            "windows": [asdict(w) for w in self.windows],
        }


@dataclass(frozen=True)
class QuotaContext:
    urls: Mapping[str, str]
    http: httpx.AsyncClient
    headers: Mapping[str, str] = field(default_factory=dict)  # header-defaults for the provider


def pct_remaining(used_pct: Any) -> float | None:
    try:
        return max(0.0, min(100.0, 100.0 - float(used_pct)))
    except (TypeError, ValueError):
        return None


def forbidden_or_error(resp: httpx.Response, what: str) -> QuotaReport | None:
    """The report for a failed quota call, or None when the answer is usable."""
    if resp.status_code in (401, 403):
        return QuotaReport("forbidden", error=f"{what}: HTTP {resp.status_code}")
    if resp.status_code >= 400:
        return QuotaReport("error", error=f"{what}: HTTP {resp.status_code}")
    return None
