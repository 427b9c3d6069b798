"""How Codex (ChatGPT OAuth) accounts are called: the Responses backend, which only streams."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..login.base import jwt_claims
from ..base import Call, UpstreamRequest, extra_headers

FORMAT = "responses"
STREAM_ONLY = True

# Client identity the backend expects; kept overridable through
# `codex-header-defaults` in the config since these versions drift.
DEFAULT_HEADERS = {
    "originator": "codex_cli_rs",
    "openai-beta": "responses=experimental",
    "version": "0.50.0",
    "user-agent": "codex_cli_rs/0.50.0 (Linux; x86_64) quotio",
}


def account_id(data: Mapping[str, Any]) -> str:
    if data.get("account_id"):
        return str(data["account_id"])
    for key in ("id_token", "access_token"):
        auth = jwt_claims(str(data.get(key) or "")).get("https://api.openai.com/auth")
        if isinstance(auth, dict) and auth.get("chatgpt_account_id"):
            return str(auth["chatgpt_account_id"])
    return ""


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    base = cred.base_url or call.upstreams["codex"]["base-url"]
    headers = {**DEFAULT_HEADERS, **call.header_defaults, **extra_headers(cred, call.client_headers)}
    headers.update(
        {
            "authorization": f"Bearer {cred.secret}",
            "accept": "text/event-stream",
            "content-type": "application/json",
            "session_id": call.client_headers.get("session_id") or str(uuid.uuid4()),
        }
    )
    if acct := account_id(cred.data):
        headers["chatgpt-account-id"] = acct
    return UpstreamRequest(url=f"{base}/responses", headers=headers, secret_headers=("authorization",))


# What the backend rejects (400) although the public Responses API accepts it.
_REJECTED = (
    "max_output_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "truncation",
    "user",
    "previous_response_id",
    "prompt_cache_retention",
    "safety_identifier",
    "stream_options",
    "context_management",
)


def adapt_native(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses-format client's body, made acceptable to the Codex backend."""
    out = {k: v for k, v in body.items() if k not in _REJECTED}
    if out.get("service_tier") not in (None, "priority"):
        out.pop("service_tier")
    out["stream"] = True
    out["store"] = False
    out.setdefault("instructions", "")
    include = list(out.get("include") or [])
    if "reasoning.encrypted_content" not in include:
        include.append("reasoning.encrypted_content")
    out["include"] = include
    return out
