"""Errors, rendered in the shape of the API the client speaks.

GatewayError (status, code, message, extra, headers)
 ├── BadRequest             400: body is not the JSON the route needs
 │                          (`check`/`objects` below: the field-type rules of translate/*_request.validate)
 ├── ModelUnavailable       404: model_not_found
 └── NoCredential           429 model_cooldown / 503 no_credential: nothing in the pool can serve now
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .translate.ir import kind_for_status

__all__ = [
    "BOOLEAN",
    "ERROR_FORMATS",
    "INTEGER",
    "LIST",
    "NUMBER",
    "OBJECT",
    "STRING",
    "BadRequest",
    "GatewayError",
    "ModelUnavailable",
    "NoCredential",
    "Rule",
    "check",
    "check_fields",
    "objects",
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


# --- request shape rules ------------------------------------------------------------
# What a field must be: (test, what the 400 says it must be). JSON null counts as
# absent, as the decoders read it; booleans are not numbers.

Rule = tuple[Callable[[Any], bool], str]

STRING: Rule = (lambda v: isinstance(v, str), "a string")
INTEGER: Rule = (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer")
NUMBER: Rule = (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number")
BOOLEAN: Rule = (lambda v: isinstance(v, bool), "a boolean")
OBJECT: Rule = (lambda v: isinstance(v, dict), "an object")
LIST: Rule = (lambda v: isinstance(v, list), "a list")


def check(value: Any, rule: Rule, path: str, required: bool = False) -> None:
    """BadRequest naming `path` unless `value` is absent (None) or passes `rule`."""
    if value is None and not required:
        return
    test, what = rule
    if value is None or not test(value):
        raise BadRequest(f"{path} must be {what}")


def check_fields(obj: dict[str, Any], rules: dict[str, Rule], prefix: str = "") -> None:
    for key, rule in rules.items():
        check(obj.get(key), rule, prefix + key)


def objects(value: Any, path: str, what: str = "a list", required: bool = False) -> list[dict[str, Any]]:
    """`value`, a list whose items must all be objects; [] when absent and not `required`."""
    check(value, (LIST[0], what), path, required)
    for i, item in enumerate(value or ()):
        if not isinstance(item, dict):
            raise BadRequest(f"{path}.{i} must be an object")
    return value or []


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
