"""Model listings in each client API's own shape."""

from __future__ import annotations

from typing import Any

__all__ = ["anthropic_list", "gemini_list", "gemini_model", "openai_list"]

Ids = list[tuple[str, str]]  # (model id, provider)


def openai_list(ids: Ids) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": 0, "owned_by": p} for m, p in ids],
    }


def anthropic_list(ids: Ids) -> dict[str, Any]:
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"}
        for m, _ in ids
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def _gemini_entry(model: str) -> dict[str, Any]:
    return {
        "name": f"models/{model}",
        "displayName": model,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    }


def gemini_list(ids: Ids) -> dict[str, Any]:
    return {"models": [_gemini_entry(m) for m, _ in ids]}


def gemini_model(ids: Ids, name: str) -> dict[str, Any] | None:
    name = name.removeprefix("models/")
    return next((_gemini_entry(m) for m, _ in ids if m == name), None)
