"""Which kind of request this is, from its method and path alone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["COUNT_ENDPOINTS", "ApiRoute", "classify"]

Kind = Literal["api", "models", "management", "health", "passthrough"]


@dataclass(frozen=True)
class ApiRoute:
    kind: Kind
    fmt: str = ""  # the client's API format: anthropic, openai, gemini, responses
    endpoint: str = ""
    model: str = ""  # for Gemini, the model is in the path

    @property
    def stream_by_path(self) -> bool:
        return self.endpoint == "streamGenerateContent"

    @property
    def call_kind(self) -> str:
        """"count" for token counting, "generate" for everything else."""
        return "count" if self.endpoint in COUNT_ENDPOINTS else "generate"


_GEMINI_ACTION = re.compile(
    r"^/v1beta/models/(?P<model>[^/:]+):(?P<action>generateContent|streamGenerateContent|countTokens)$"
)
_HEALTH = {"/health", "/healthz", "/ready", "/live"}
_API = {
    ("POST", "/v1/messages"): ("anthropic", "messages"),
    ("POST", "/v1/messages/count_tokens"): ("anthropic", "count_tokens"),
    ("POST", "/v1/chat/completions"): ("openai", "chat"),
    ("POST", "/v1/responses"): ("responses", "responses"),
    # Codex CLI's chatgpt_base_url form, as CLIProxyAPI accepts it.
    ("POST", "/backend-api/codex/responses"): ("responses", "responses"),
}

COUNT_ENDPOINTS = frozenset({"count_tokens", "countTokens"})


def classify(method: str, path: str) -> ApiRoute:
    """`path` without the query string."""
    path = path.rstrip("/") or "/"
    if path == "/v0/management" or path.startswith("/v0/management/") or path == "/metrics":
        return ApiRoute("management")
    if path in _HEALTH and method in ("GET", "HEAD"):
        return ApiRoute("health")
    if (method, path) in _API:
        fmt, endpoint = _API[(method, path)]
        return ApiRoute("api", fmt, endpoint)
    if method == "POST" and (m := _GEMINI_ACTION.match(path)):
        return ApiRoute("api", "gemini", m["action"], m["model"])
    if method == "GET" and path == "/v1/models":
        return ApiRoute("models", "openai")
    if method == "GET" and (path == "/v1beta/models" or path.startswith("/v1beta/models/")):
        return ApiRoute("models", "gemini", model=path.removeprefix("/v1beta/models").strip("/"))
    return ApiRoute("passthrough")
