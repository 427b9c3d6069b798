"""How OpenAI-compatible upstreams are called: Chat Completions with a bearer key.

Serves `openai-compatibility` entries and `codex-api-key` entries (plain
OpenAI platform keys).
"""

from __future__ import annotations

from ..base import Call, UpstreamRequest, extra_headers

FORMAT = "openai"

_PATHS = {"chat": "/chat/completions"}


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    base = cred.base_url or call.upstreams["codex"]["api-key-base-url"]
    headers = {**call.header_defaults, **extra_headers(cred, call.client_headers)}
    headers["authorization"] = f"Bearer {cred.secret}"
    return UpstreamRequest(
        url=f"{base}{_PATHS[call.endpoint]}", headers=headers, secret_headers=("authorization",)
    )
