"""Anthropic's error body: `{"type": "error", "error": {"type", "message"}}` (plus our `code`)."""

from __future__ import annotations

from typing import Any

from ..ir import kind_for_status


def render(status: int, code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind_for_status(status), "message": message, "code": code}}
