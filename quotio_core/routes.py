"""Which kind of request this is, from its method and path alone.

The API routes come from each format's `ROUTES` (formats/registry.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .formats import COUNT_ENDPOINTS, ROUTE_PATTERNS, ROUTES, STREAM_ENDPOINTS

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
        return self.endpoint in STREAM_ENDPOINTS

    @property
    def call_kind(self) -> str:
        """"count" for token counting, "generate" for everything else."""
        return "count" if self.endpoint in COUNT_ENDPOINTS else "generate"


_HEALTH = {"/health", "/healthz", "/ready", "/live"}


def classify(method: str, path: str) -> ApiRoute:
    """`path` without the query string."""
    path = path.rstrip("/") or "/"
    if path == "/v0/management" or path.startswith("/v0/management/") or path == "/metrics":
        return ApiRoute("management")
    if path in _HEALTH and method in ("GET", "HEAD"):
        return ApiRoute("health")
    if (method, path) in ROUTES:
        fmt, endpoint = ROUTES[(method, path)]
        return ApiRoute("api", fmt, endpoint)
    for route_method, pattern, fmt in ROUTE_PATTERNS:
        if method == route_method and (m := pattern.match(path)):
            return ApiRoute("api", fmt, m["endpoint"], m["model"])
    if method == "GET" and path == "/v1/models":
        return ApiRoute("models", "openai")
    if method == "GET" and (path == "/v1beta/models" or path.startswith("/v1beta/models/")):
        return ApiRoute("models", "gemini", model=path.removeprefix("/v1beta/models").strip("/"))
    return ApiRoute("passthrough")
