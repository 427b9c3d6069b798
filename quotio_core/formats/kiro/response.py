"""Kiro error bodies -> `ir.ErrorInfo` (Kiro answers only stream, see kiro_stream).

Kiro's HTTP errors are JSON `{"message": "…", "reason": "…"}`; AWS's own
layer answers `{"__type": "…#ValidationException", "message": "…"}`. The
`reason` says more than the status, so it decides the meaning a client
sees: a spent monthly quota is a 429 to the client whatever status Kiro
used (third-party clients report 402), so SDKs and agents treat it as a
quota problem rather than a bad request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..ir import ErrorInfo, Response, kind_for_status

__all__ = ["decode_error", "decode_response", "error_info", "exception_info"]

FORMAT = "kiro"

_MAX_ERROR_MESSAGE = 2000

# reason -> (client status, kind, what to tell the client before Kiro's message)
REASONS: dict[str, tuple[int, str, str]] = {
    "MONTHLY_REQUEST_COUNT": (429, "rate_limit_error", "Kiro monthly request quota exhausted"),
    "DAILY_REQUEST_COUNT": (429, "rate_limit_error", "Kiro daily request quota exhausted"),
    "USER_REQUEST_RATE_EXCEEDED": (429, "rate_limit_error", "Kiro rate limit"),
    "INSUFFICIENT_MODEL_CAPACITY": (529, "overloaded_error", "Kiro has no capacity for this model now"),
    # Agents (Claude Code) compact the conversation on Anthropic's wording.
    "CONTENT_LENGTH_EXCEEDS_THRESHOLD": (400, "invalid_request_error", "prompt is too long"),
    "INVALID_MODEL_ID": (400, "invalid_request_error", "model not available on Kiro"),
}

# AWS exception type (the part after '#') -> (status, kind)
EXCEPTIONS: dict[str, tuple[int, str]] = {
    "ValidationException": (400, "invalid_request_error"),
    "AccessDeniedException": (403, "permission_error"),
    "UnauthorizedException": (401, "authentication_error"),
    "ExpiredTokenException": (401, "authentication_error"),
    "ResourceNotFoundException": (404, "not_found_error"),
    "ThrottlingException": (429, "rate_limit_error"),
    "ServiceQuotaExceededException": (429, "rate_limit_error"),
    "ContentLengthExceededException": (400, "invalid_request_error"),
    "ConflictException": (409, "invalid_request_error"),
    "InternalServerException": (500, "api_error"),
    "ServiceUnavailableException": (503, "overloaded_error"),
}

# Kiro answers a dead or expired token with 403 and this text; it is an auth error.
_BAD_TOKEN = "bearer token included in the request is invalid"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def exception_info(exception_type: str, message: str, default_status: int = 500) -> ErrorInfo:
    """An AWS exception (by its type name, any `namespace#` prefix allowed) as an ErrorInfo."""
    name = exception_type.rpartition("#")[2].rpartition(":")[2]
    status, kind = EXCEPTIONS.get(name, (default_status, kind_for_status(default_status)))
    text = f"{name}: {message}" if name and message else (message or name or "Kiro error")
    return ErrorInfo(status, kind, text[:_MAX_ERROR_MESSAGE])


def error_info(status: int, body: Mapping[str, Any], fallback: str = "") -> ErrorInfo:
    """The meaning of one Kiro error object, answered with HTTP `status`."""
    message = _str(body.get("message")) or _str(body.get("Message")) or fallback or f"HTTP {status}"
    reason = _str(body.get("reason"))
    if reason in REASONS:
        out_status, kind, what = REASONS[reason]
        return ErrorInfo(out_status, kind, f"{what}: {message}"[:_MAX_ERROR_MESSAGE])
    if _BAD_TOKEN in message.lower():
        return ErrorInfo(401, "authentication_error", message[:_MAX_ERROR_MESSAGE])
    exc = _str(body.get("__type")) or _str(body.get("_type"))
    if exc:
        return exception_info(exc, message, status if status >= 400 else 500)
    text = f"{reason}: {message}" if reason else message
    return ErrorInfo(status, kind_for_status(status), text[:_MAX_ERROR_MESSAGE])


def decode_error(status: int, raw: bytes) -> ErrorInfo:
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return ErrorInfo(status, kind_for_status(status), (text.strip() or f"HTTP {status}")[:_MAX_ERROR_MESSAGE])
    return error_info(status, body, text.strip())


def decode_response(body: Any) -> Response:
    """Kiro has no non-stream answer; a JSON success body is not something we can read."""
    raise ValueError("Kiro answers as an event stream; got a plain JSON body instead")
