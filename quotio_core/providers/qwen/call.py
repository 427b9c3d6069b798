"""How Qwen (qwen.ai OAuth) accounts are called: OpenAI Chat Completions on the account's host.

The token answer names the API host the account lives on (`resource_url`,
e.g. "portal.qwen.ai"); requests go to `https://<resource_url>/v1`. DashScope
reads two headers to know the token is a Qwen Code OAuth one and may cache.
"""

from __future__ import annotations

from ..base import Call, UpstreamRequest, extra_headers

FORMAT = "openai"

# Qwen Code's identity; the version drifts, so `header-defaults` (`qwen:`) overrides it.
DEFAULT_HEADERS = {
    "user-agent": "QwenCode/0.14.2 (linux; x64)",
    "x-dashscope-authtype": "qwen-oauth",
    "x-dashscope-cachecontrol": "enable",
}

_PATHS = {"chat": "/chat/completions"}


def resource_base(resource_url: str) -> str:
    """`https://<host>/v1` from a resource_url, which may lack the scheme or the /v1."""
    base = resource_url.strip().rstrip("/")
    if not base:
        return ""
    if "://" not in base:
        base = f"https://{base}"
    return base if base.endswith("/v1") else f"{base}/v1"


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    base = (
        cred.base_url
        or resource_base(str(cred.data.get("resource_url") or ""))
        or call.upstreams["qwen"]["base-url"]
    )
    headers = {**DEFAULT_HEADERS, **call.header_defaults, **extra_headers(cred, call.client_headers)}
    headers["authorization"] = f"Bearer {cred.secret}"
    headers["content-type"] = "application/json"
    return UpstreamRequest(
        url=f"{base}{_PATHS[call.endpoint]}", headers=headers, secret_headers=("authorization",)
    )
