"""Errors, rendered in the shape of the API the client speaks.

GatewayError (status, code, message, extra, headers)
 ├── BadRequest             400: body is not the JSON the route needs (formats/errors.py)
 ├── ModelUnavailable       404: model_not_found
 └── NoCredential           429 model_cooldown / 503 no_credential: nothing in the pool can serve now

`render_error` picks the client format's renderer (formats/<format>/errors.py).
"""

from __future__ import annotations

from .formats import CLIENT_FORMATS, render_error
from .formats.errors import BadRequest, GatewayError

__all__ = [
    "CLIENT_FORMATS",
    "BadRequest",
    "GatewayError",
    "ModelUnavailable",
    "NoCredential",
    "render_error",
]


class ModelUnavailable(GatewayError):
    def __init__(self, message: str):
        super().__init__(404, "model_not_found", message)


class NoCredential(GatewayError):
    """`reset`: seconds until the first credential comes back, when all are cooling (None: none will)."""

    def __init__(self, status: int, code: str, message: str, extra=None, headers=None, reset: float | None = None):
        super().__init__(status, code, message, extra or {}, headers or {})
        self.reset = reset
