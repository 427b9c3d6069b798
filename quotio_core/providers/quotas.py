"""What a quota fetcher (`<provider>/quota.py`) returns, and what every fetcher does alike.

A fetcher has `async fetch(ctx: QuotaContext, cred) -> QuotaReport`: it maps
the provider's own answer onto `Window` rows and says `forbidden` for a
401/403 rather than inventing numbers. Failures become a `QuotaReport`
whose message names the call and the error type, never the request, its
headers or the answer's body, so a token cannot leak through it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

__all__ = [
    "QuotaContext",
    "QuotaReport",
    "Status",
    "Window",
    "call_json",
    "forbidden_or_error",
    "number",
    "pct_remaining",
    "timestamp",
]

Status = Literal["ok", "forbidden", "unsupported", "error"]


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


async def call_json(
    ctx: QuotaContext, what: str, method: str, url: str, **kwargs: Any
) -> dict[str, Any] | QuotaReport:
    """The answer's JSON object, or the report saying why there is none."""
    try:
        resp = await ctx.http.request(method, url, **kwargs)
    except httpx.HTTPError as e:
        return QuotaReport("error", error=f"{what}: {type(e).__name__}")
    if (failed := forbidden_or_error(resp, what)) is not None:
        return failed
    try:
        body = resp.json()
    except ValueError:
        return QuotaReport("error", error=f"{what}: the answer is not JSON")
    if not isinstance(body, dict):
        return QuotaReport("error", error=f"{what}: unexpected shape")
    return body


def number(value: Any) -> float | None:
    """A finite number from a JSON number or numeric string; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def timestamp(value: Any) -> float | None:
    """Unix seconds from RFC 3339, a bare date (midnight UTC), or unix s/ms."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if (n := number(text)) is not None:
            return timestamp(n)
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    n = number(value)
    if n is None or n <= 0:
        return None
    # Millisecond epochs are 13 digits today; seconds stay below 1e11 until year 5138.
    return n / 1000 if n > 1e11 else n
