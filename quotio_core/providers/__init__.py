"""How each provider is called: one module per provider, one registry.

An executor turns (credential, client request) into the upstream URL and the
headers to set; it does no I/O. The addon applies the result to the flow.

Besides `prepare` and `FORMAT` an executor may define `format_for(model)`
when its format depends on the model, and `wrap(body, call)` for the
envelope its upstream puts around every body in that format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..pool.credentials import Credential

__all__ = [
    "CLIENT_SECRET_HEADERS",
    "Call",
    "UpstreamRequest",
    "executor_for",
    "format_of",
    "servable",
]

# Headers that carry the client's own key to us; never forwarded upstream.
CLIENT_SECRET_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
CLIENT_SECRET_PARAMS = ("key", "auth_token")


@dataclass(frozen=True)
class Call:
    credential: Credential
    upstreams: Mapping[str, Mapping[str, str]]
    client_headers: Mapping[str, str]
    endpoint: str  # "messages", "count_tokens", "chat", "generateContent", ...
    model: str  # the model name to send upstream
    query: Mapping[str, str] = field(default_factory=dict)
    # Configured client-identity headers for this provider (`header-defaults`).
    header_defaults: Mapping[str, str] = field(default_factory=dict)
    # The request body in the provider's format (before any wrapping), for
    # headers that depend on it (Copilot's X-Initiator and vision flag).
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class UpstreamRequest:
    url: str
    headers: Mapping[str, str]
    # Names of headers in `headers` whose values are credentials (masked on the stored flow).
    secret_headers: tuple[str, ...]


def extra_headers(cred: Credential, client_headers: Mapping[str, str]) -> dict[str, str]:
    """A key entry's own `headers`; a value `$name` copies that client header."""
    out = {}
    for name, value in cred.headers.items():
        if value.startswith("$"):
            copied = client_headers.get(value[1:].lower())
            if copied is not None:
                out[name.lower()] = copied
        else:
            out[name.lower()] = value
    return out


from . import claude, codex, gemini_api, gemini_cli, github_copilot, iflow, kiro, openai_compat, qwen, vertex

_EXECUTORS = {
    ("claude", "oauth"): claude,
    ("claude", "api-key"): claude,
    ("openai-compatibility", "api-key"): openai_compat,
    ("codex", "api-key"): openai_compat,
    ("codex", "oauth"): codex,
    ("gemini", "api-key"): gemini_api,
    ("gemini", "oauth"): gemini_cli,
    ("github-copilot", "oauth"): github_copilot,
    ("qwen", "oauth"): qwen,
    ("iflow", "oauth"): iflow,
    ("vertex", "service-account"): vertex,
    ("vertex", "api-key"): vertex,
    ("kiro", "oauth"): kiro,
}


def executor_for(cred: Credential):
    return _EXECUTORS.get((cred.provider, cred.kind))


def servable(cred: Credential) -> bool:
    return executor_for(cred) is not None and not cred.disabled and not cred.needs_login


def format_of(cred: Credential, model: str = "") -> str:
    """The API format the credential's upstream speaks (for `model`, on upstreams
    that host several vendors' models behind one credential, like Vertex)."""
    executor = executor_for(cred)
    if model and (per_model := getattr(executor, "format_for", None)):
        return per_model(model)
    return executor.FORMAT


def stream_only(cred: Credential) -> bool:
    return getattr(executor_for(cred), "STREAM_ONLY", False)


def token_refused(cred: Credential, status: int, body: bytes) -> bool:
    """Whether an upstream answer means the credential's token was refused.

    A 401 everywhere; an executor's `token_refused(status, body)` names other
    answers that mean the same (Kiro's 403 for an expired token).
    """
    check = getattr(executor_for(cred), "token_refused", None)
    return status == 401 or (check is not None and check(status, body))


def wrapped(cred: Credential) -> bool:
    """Whether the upstream wraps the format's bodies (Code Assist), so always translates."""
    return getattr(executor_for(cred), "WRAPPED", False)


# The upstream endpoint for each kind of call, per provider format. A format
# missing from "count" has no token-counting endpoint: the gateway estimates.
ENDPOINTS = {
    "generate": {
        "anthropic": "messages",
        "openai": "chat",
        "responses": "responses",
        "kiro": "generateAssistantResponse",
    },
    "count": {"anthropic": "count_tokens", "gemini": "countTokens"},
}


def endpoint_for(fmt: str, kind: str, stream: bool) -> str | None:
    if fmt == "gemini" and kind == "generate":
        return "streamGenerateContent" if stream else "generateContent"
    return ENDPOINTS[kind].get(fmt)
