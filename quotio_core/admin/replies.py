"""What a management route answers: a status and a JSON-able body (or text)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Reply", "err"]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    # Everything is JSON but the metrics text and the dashboard page.
    content_type: str = "application/json"


def err(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}
