"""What every quota fetcher does alike: one call, its failure, its JSON, its timestamps.

Kept apart from the fetchers so each of them reads as the provider's own
mapping. Failures become a :class:`QuotaReport` whose message names the call
and the error type, never the request, its headers or the answer's body, so
a token cannot leak through it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import httpx

from ..pool.quota import QuotaContext, QuotaReport, forbidden_or_error

__all__ = ["call_json", "number", "timestamp"]


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
