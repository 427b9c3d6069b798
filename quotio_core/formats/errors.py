"""Errors a request can be refused with, and the shape rules requests are checked by.

`GatewayError` (status, code, message, extra, headers) is rendered in the
client's own API shape by `<format>/errors.py`; `BadRequest` is the 400 the
format validators (`<format>/request.py` `validate`) raise, naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BOOLEAN",
    "INTEGER",
    "LIST",
    "NUMBER",
    "OBJECT",
    "STRING",
    "BadRequest",
    "GatewayError",
    "Rule",
    "check",
    "check_fields",
    "objects",
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
