"""JSON Schema ↔ the OpenAPI 3.0 subset Gemini's `parameters` accepts.

Gemini rejects a function declaration whose `parameters` holds any key outside
a short list (wire-formats §4) with a 400 "Unknown name …", and the tool
schemas coding agents send are full JSON Schema ($ref/$defs, const, type
lists, anyOf-with-null, additionalProperties …). `clean_schema` rewrites them
into the accepted subset, keeping as much meaning as the subset can carry.
`to_json_schema` goes the other way for schemas a Gemini client sent, so
other providers get plain JSON Schema.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["ALLOWED_KEYS", "clean_schema", "to_json_schema"]

ALLOWED_KEYS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "items",
        "minItems", "maxItems", "properties", "required", "minProperties",
        "maxProperties", "minLength", "maxLength", "pattern", "example",
        "anyOf", "propertyOrdering", "default", "minimum", "maximum",
    }
)  # fmt: skip

# Gemini answers 400 "only 'enum' and 'date-time' are supported for STRING
# type" for other formats (uri, email, …), so only these survive.
_FORMATS_BY_TYPE = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}

# Deep enough for any real tool schema; stops pathological nesting.
_MAX_DEPTH = 64

# What a recursive $ref resolves to once it loops back on itself.
_CYCLE_PLACEHOLDER: dict[str, Any] = {"type": "object"}


class _Context:
    """The document root (for local $ref lookups) and the refs being expanded."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.active_refs: tuple[str, ...] = ()


def clean_schema(schema: Any) -> dict[str, Any]:
    """A new Gemini-acceptable schema for the JSON Schema ``schema``; the input is not touched."""
    if not isinstance(schema, Mapping):
        return {}
    return _clean(schema, _Context(schema), 0)


def _clean(node: Any, ctx: _Context, depth: int) -> dict[str, Any]:
    if not isinstance(node, Mapping) or depth > _MAX_DEPTH:
        return {}
    node, popped = _resolve(node, ctx)
    try:
        node = _merge_all_of(node, ctx)
        out: dict[str, Any] = {}
        _apply_type(node, out)
        for key, value in node.items():
            handler = _KEY_HANDLERS.get(key)
            if handler is not None:
                handler(value, out, ctx, depth)
            elif key in _PLAIN_KEYS:
                out[key] = copy.deepcopy(value)
        # After the node's own keys, so its description etc. beat an inlined branch's.
        _apply_alternatives(node, out, ctx, depth)
        _finish(out)
        return out
    finally:
        if popped:
            ctx.active_refs = ctx.active_refs[:-1]


def _resolve(node: Mapping[str, Any], ctx: _Context) -> tuple[Mapping[str, Any], bool]:
    """Inline a local $ref (siblings override the target); (node, whether a ref was pushed)."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node, False
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    if ref in ctx.active_refs:
        return {**_CYCLE_PLACEHOLDER, **siblings}, False
    target = _lookup(ref, ctx.root)
    if target is None:
        # A remote or broken ref: keep what the node says about itself.
        return siblings or dict(_CYCLE_PLACEHOLDER), False
    ctx.active_refs = (*ctx.active_refs, ref)
    inner, pushed_inner = _resolve(target, ctx)
    if pushed_inner:
        ctx.active_refs = ctx.active_refs[:-1]
    return {**inner, **siblings}, True


def _lookup(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if not ref.startswith("#"):
        return None
    node: Any = root
    for raw in ref[1:].split("/"):
        if not raw:
            continue
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node if isinstance(node, Mapping) else None


def _merge_all_of(node: Mapping[str, Any], ctx: _Context) -> Mapping[str, Any]:
    branches = node.get("allOf")
    if not isinstance(branches, list):
        return node
    merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
    for branch in branches:
        if not isinstance(branch, Mapping):
            continue
        branch, popped = _resolve(branch, ctx)
        try:
            # Still inside the ref, so a branch that refers back to itself stops here.
            branch = _merge_all_of(branch, ctx)
        finally:
            if popped:
                ctx.active_refs = ctx.active_refs[:-1]
        _merge_into(merged, branch)
    return merged


def _merge_into(target: dict[str, Any], branch: Mapping[str, Any]) -> None:
    """allOf semantics for the common case: objects' properties and required add up."""
    for key, value in branch.items():
        if key == "properties" and isinstance(value, Mapping):
            props = dict(target.get("properties") or {})
            for name, sub in value.items():
                props.setdefault(name, sub)
            target["properties"] = props
        elif key == "required" and isinstance(value, list):
            target["required"] = [*(target.get("required") or []), *value]
        else:
            target.setdefault(key, value)


def _apply_type(node: Mapping[str, Any], out: dict[str, Any]) -> None:
    kind = node.get("type")
    if isinstance(kind, str):
        if kind == "null":
            out["nullable"] = True
        else:
            out["type"] = kind
        return
    if not isinstance(kind, list):
        return
    real = [t for t in kind if isinstance(t, str) and t != "null"]
    if len(real) < len(kind):
        out["nullable"] = True
    if len(real) == 1:
        out["type"] = real[0]
    elif real:
        # The subset has no type lists; a union of types is what anyOf expresses.
        out["anyOf"] = [{"type": t} for t in real]


def _is_null_schema(branch: Any) -> bool:
    return isinstance(branch, Mapping) and (branch.get("type") == "null" or branch.get("type") == ["null"])


def _apply_alternatives(node: Mapping[str, Any], out: dict[str, Any], ctx: _Context, depth: int) -> None:
    """anyOf/oneOf: null branches become `nullable`, a lone remaining branch is inlined."""
    branches: list[Any] = []
    for key in ("anyOf", "oneOf"):
        value = node.get(key)
        if isinstance(value, list):
            branches += value
    if not branches:
        return
    real = [b for b in branches if not _is_null_schema(b)]
    if len(real) < len(branches):
        out["nullable"] = True
    cleaned = [_clean(b, ctx, depth + 1) for b in real]
    if len(cleaned) == 1:
        for key, value in cleaned[0].items():
            out.setdefault(key, value)
    elif cleaned:
        out["anyOf"] = cleaned


def _properties(value: Any, out: dict[str, Any], ctx: _Context, depth: int) -> None:
    if isinstance(value, Mapping) and value:
        out["properties"] = {str(name): _clean(sub, ctx, depth + 1) for name, sub in value.items()}


def _items(value: Any, out: dict[str, Any], ctx: _Context, depth: int) -> None:
    # Tuple-style `items: [a, b]` has no equivalent; the first schema is the best guess.
    if isinstance(value, list):
        value = value[0] if value else {}
    if isinstance(value, Mapping):
        out["items"] = _clean(value, ctx, depth + 1)


def _const(value: Any, out: dict[str, Any], ctx: _Context, depth: int) -> None:
    out.setdefault("enum", [value])


def _enum(value: Any, out: dict[str, Any], ctx: _Context, depth: int) -> None:
    if isinstance(value, list):
        out["enum"] = value


def _required(value: Any, out: dict[str, Any], ctx: _Context, depth: int) -> None:
    if isinstance(value, list):
        out["required"] = value


def _format(value: Any, out: dict[str, Any], ctx: _Context, depth: int) -> None:
    if isinstance(value, str):
        out["format"] = value


def _ignore(value: Any, out: dict[str, Any], ctx: _Context, depth: int) -> None:
    pass  # handled before the key loop


_KEY_HANDLERS = {
    "properties": _properties,
    "items": _items,
    "const": _const,
    "enum": _enum,
    "required": _required,
    "format": _format,
    "type": _ignore,
    "anyOf": _ignore,
    "oneOf": _ignore,
}

_PLAIN_KEYS = ALLOWED_KEYS - _KEY_HANDLERS.keys()


def _finish(out: dict[str, Any]) -> None:
    """Constraints that need the whole node: required ⊆ properties, enum as strings, formats."""
    if "required" in out:
        names = out.get("properties") or {}
        kept = list(dict.fromkeys(r for r in out["required"] if isinstance(r, str) and r in names))
        if kept:
            out["required"] = kept
        else:
            del out["required"]
    if "enum" in out:
        out["enum"] = [v if isinstance(v, str) else _enum_text(v) for v in out["enum"] if v is not None]
        if not out["enum"]:
            del out["enum"]
    if "properties" in out and "type" not in out and "anyOf" not in out:
        out["type"] = "object"
    if "format" in out and out["format"] not in _FORMATS_BY_TYPE.get(out.get("type", ""), ()):
        del out["format"]


def _enum_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the other way: a Gemini client's `parameters` → JSON Schema ----------------


def to_json_schema(schema: Any) -> dict[str, Any]:
    """Plain JSON Schema from Gemini OpenAPI-style `parameters` (upper-case types, nullable)."""
    if not isinstance(schema, Mapping):
        return {}
    return _to_json(schema, 0)


def _to_json(node: Mapping[str, Any], depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if depth > _MAX_DEPTH:
        return out
    for key, value in node.items():
        if key in ("nullable", "propertyOrdering"):
            continue
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, Mapping):
            out["properties"] = {
                str(k): _to_json(v, depth + 1) if isinstance(v, Mapping) else {} for k, v in value.items()
            }
        elif key == "items" and isinstance(value, Mapping):
            out["items"] = _to_json(value, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            out["anyOf"] = [_to_json(v, depth + 1) for v in value if isinstance(v, Mapping)]
        elif key == "example":
            out["examples"] = [copy.deepcopy(value)]
        else:
            out[key] = copy.deepcopy(value)
    if node.get("nullable") is True:
        _make_nullable(out)
    return out


def _make_nullable(out: dict[str, Any]) -> None:
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif "anyOf" in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
