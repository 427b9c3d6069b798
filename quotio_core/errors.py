"""Errors, rendered in the shape of the API the client speaks.

GatewayError (status, code, message, extra, headers)
 ├── BadRequest             400: body is not the JSON the route needs
 ├── ModelUnavailable       404: model_not_found
 └── NoCredential           429 model_cooldown / 503 no_credential: nothing in the pool can serve now
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .translate.ir import kind_for_status

__all__ = [
    "ERROR_FORMATS",
    "BadRequest",
    "GatewayError",
    "ModelUnavailable",
    "NoCredential",
    "render_error",
]


@dataclass
class GatewayError(Exception):
    status: int
    code: str
    message: str
    # More fields for the client's error object (e.g. reset_seconds), and response headers.
    extra: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class BadRequest(GatewayError):
    def __init__(self, message: str, code: str = "invalid_request_error"):
        super().__init__(400, code, message)


class ModelUnavailable(GatewayError):
    def __init__(self, message: str):
        super().__init__(404, "model_not_found", message)


class NoCredential(GatewayError):
    pass


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _anthropic(status: int, code: str, message: str) -> dict:
    kind = kind_for_status(status)
    return {"type": "error", "error": {"type": kind, "message": message, "code": code}}


def _openai(status: int, code: str, message: str) -> dict:
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _gemini(status: int, code: str, message: str) -> dict:
    google = _GOOGLE_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": status, "message": message, "status": google, "reason": code}}


_RENDERERS = {
    "anthropic": _anthropic,
    "openai": _openai,
    "responses": _openai,
    "gemini": _gemini,
}
ERROR_FORMATS = frozenset(_RENDERERS)


def render_error(fmt: str, status: int, code: str, message: str, extra: dict | None = None) -> bytes:
    """The JSON body of an error for a client speaking `fmt` (management: openai-like)."""
    body = _RENDERERS.get(fmt, _openai)(status, code, message)
    if extra:
        body["error"].update(extra)
    return json.dumps(body).encode()
