"""How Claude is called: Anthropic Messages with an OAuth bearer or an API key."""

from __future__ import annotations

from ..base import Call, UpstreamRequest, extra_headers

FORMAT = "anthropic"
OAUTH_BETA = "oauth-2025-04-20"
DEFAULT_VERSION = "2023-06-01"

_PATHS = {"messages": "/v1/messages", "count_tokens": "/v1/messages/count_tokens"}


def merge_betas(client_value: str | None, *required: str) -> str:
    """Client betas first, in their order, then the ones we need, without duplicates."""
    betas = [b.strip() for b in (client_value or "").split(",") if b.strip()]
    for beta in required:
        if beta not in betas:
            betas.append(beta)
    return ",".join(betas)


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    base = cred.base_url or call.upstreams["claude"]["base-url"]
    headers = {**call.header_defaults, **extra_headers(cred, call.client_headers)}
    headers["anthropic-version"] = call.client_headers.get("anthropic-version", DEFAULT_VERSION)
    if cred.kind == "oauth":
        headers["authorization"] = f"Bearer {cred.secret}"
        headers["anthropic-beta"] = merge_betas(
            call.client_headers.get("anthropic-beta"), OAUTH_BETA
        )
        secret = "authorization"
        # Claude Code sends ?beta=true with OAuth; the upstream keys beta features off it.
        url = f"{base}{_PATHS[call.endpoint]}?beta=true"
    else:
        headers["x-api-key"] = cred.secret
        if "anthropic-beta" in call.client_headers:
            headers["anthropic-beta"] = call.client_headers["anthropic-beta"]
        secret = "x-api-key"
        url = f"{base}{_PATHS[call.endpoint]}"
    return UpstreamRequest(url=url, headers=headers, secret_headers=(secret,))
