"""How much a Gemini CLI (Code Assist) account has left: `POST v1internal:retrieveUserQuota`.

Gemini CLI asks Code Assist the same way (packages/core/src/code_assist:
`CodeAssistServer.retrieveUserQuota`, `RetrieveUserQuotaRequest {project}`),
so the method name is the published one, not a guess. The answer is
`{buckets: [{modelId, tokenType, remainingFraction, remainingAmount,
resetTime}]}`: one bucket per model (and token type), `remainingFraction`
in 0..1, `resetTime` in RFC 3339. Each bucket becomes one window named
after its model (`<model>:<type>` when a model has several token types)
and limiting that model only: a spent bucket cools the model on this
account, not the account.

A bucket without `remainingFraction` says nothing about what is left, so its
window has no percentage rather than an invented one. The request names the
account's Code Assist project; a CLIProxyAPI file that holds several
(`project_id` "a,b") is asked about its first. API keys use the public
Generative Language API, which has no per-account quota endpoint.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ..quotas import QuotaContext, QuotaReport, Window
from .code_assist import DEFAULT_HEADERS
from ..quotas import call_json, number, timestamp

if TYPE_CHECKING:
    from ...pool.credentials import Credential

PROVIDER = "gemini"
WHAT = "Gemini quota"


def project_of(data: dict[str, Any]) -> str:
    raw = str(data.get("project_id") or data.get("projectId") or "")
    return next((p.strip() for p in raw.split(",") if p.strip()), "")


def _window(name: str, bucket: dict[str, Any]) -> Window:
    fraction = number(bucket.get("remainingFraction"))
    remaining = None if fraction is None else max(0.0, min(100.0, fraction * 100.0))
    return Window(
        name,
        used=None if remaining is None else 100.0 - remaining,
        limit=100.0,
        remaining_pct=remaining,
        resets_at=timestamp(bucket.get("resetTime")),
        model=str(bucket.get("modelId") or "") or None,
    )


def parse(body: dict[str, Any]) -> QuotaReport:
    buckets = [b for b in body.get("buckets") or () if isinstance(b, dict)]
    models = Counter(str(b.get("modelId") or "") for b in buckets)
    windows = []
    for b in buckets:
        model = str(b.get("modelId") or "")
        token_type = str(b.get("tokenType") or "")
        if not model:
            name = token_type or "quota"
        elif models[model] > 1 and token_type:
            name = f"{model}:{token_type}"
        else:
            name = model
        windows.append(_window(name, b))
    return QuotaReport("ok", tuple(windows))


async def fetch(ctx: QuotaContext, cred: Credential) -> QuotaReport:
    if cred.kind != "oauth":
        return QuotaReport("unsupported", error="Gemini API keys have no per-account quota")
    project = project_of(dict(cred.data))
    if not project:
        return QuotaReport("error", error=f"{WHAT}: the account has no Code Assist project_id")
    headers = {**DEFAULT_HEADERS, **ctx.headers}
    headers.update({"authorization": f"Bearer {cred.secret}", "content-type": "application/json"})
    body = await call_json(ctx, WHAT, "POST", ctx.urls["quota-url"], headers=headers, json={"project": project})
    return body if isinstance(body, QuotaReport) else parse(body)
