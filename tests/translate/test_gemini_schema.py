"""gemini_schema: JSON Schema → the OpenAPI subset Gemini's `parameters` accepts, and back."""

from __future__ import annotations

import copy
from typing import Any

from google.genai import types

from quotio_core.formats.gemini.schema import ALLOWED_KEYS, clean_schema, to_json_schema


def _assert_only_allowed(schema: dict[str, Any]) -> None:
    assert set(schema) <= ALLOWED_KEYS, set(schema) - ALLOWED_KEYS
    for sub in (schema.get("properties") or {}).values():
        _assert_only_allowed(sub)
    if "items" in schema:
        _assert_only_allowed(schema["items"])
    for sub in schema.get("anyOf", []):
        _assert_only_allowed(sub)


# A schema in the style coding agents send (zod-to-json-schema, pydantic).
AGENT_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "title": "Args",
    "additionalProperties": False,
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {"value": {"type": "integer"}, "next": {"$ref": "#/$defs/Node"}},
        },
        "Mode": {"type": "string", "enum": ["fast", "slow"]},
    },
    "definitions": {"Path": {"type": "string", "description": "a path"}},
    "properties": {
        "path": {"$ref": "#/definitions/Path", "description": "file to read"},
        "mode": {"$ref": "#/$defs/Mode"},
        "list": {"$ref": "#/$defs/Node"},
        "limit": {"type": ["integer", "null"], "exclusiveMinimum": 0, "examples": [5]},
        "url": {"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}], "description": "where"},
        "kind": {"const": "file"},
        "level": {"enum": [1, 2, True]},
        "either": {"oneOf": [{"type": "string"}, {"type": "number"}]},
        "both": {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "number"}}, "required": ["b", "ghost"]},
            ]
        },
        "tags": {"type": "array", "items": {"type": "string", "x-ui": "chip"}, "minItems": 1},
        "when": {"type": "string", "format": "date-time"},
        "extra": {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
        "cond": {"type": "string", "if": {"minLength": 1}, "then": {}, "else": {}},
    },
    "required": ["path", "missing", "mode"],
}


def test_agent_schema_cleaned_to_subset() -> None:
    out = clean_schema(AGENT_SCHEMA)
    _assert_only_allowed(out)
    props = out["properties"]
    assert out["type"] == "object" and out["title"] == "Args"
    assert out["required"] == ["path", "mode"]  # "missing" names no property
    # $ref inlined; the sibling description beats the target's.
    assert props["path"] == {"type": "string", "description": "file to read"}
    assert props["mode"] == {"type": "string", "enum": ["fast", "slow"]}
    assert props["limit"] == {"type": "integer", "nullable": True}
    assert props["url"] == {"type": "string", "nullable": True, "description": "where"}  # format uri dropped
    assert props["kind"] == {"enum": ["file"]}
    assert props["level"] == {"enum": ["1", "2", "true"]}
    assert props["either"] == {"anyOf": [{"type": "string"}, {"type": "number"}]}
    assert props["both"] == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    }
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "minItems": 1}
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["extra"] == {"type": "object"}
    assert props["cond"] == {"type": "string"}
    # Gemini's own SDK model accepts the result.
    types.Schema.model_validate(out)


def test_recursive_ref_is_cut_not_infinite() -> None:
    node = clean_schema(AGENT_SCHEMA)["properties"]["list"]
    assert node["properties"]["value"] == {"type": "integer"}
    assert node["properties"]["next"] == {"type": "object"}


def test_self_referencing_all_of_terminates() -> None:
    schema = {"$defs": {"L": {"allOf": [{"$ref": "#/$defs/L"}], "type": "string"}}, "$ref": "#/$defs/L"}
    assert clean_schema(schema)["type"] == "string"


def test_root_ref_and_unknown_ref() -> None:
    schema = {"type": "object", "properties": {"self": {"$ref": "#"}, "remote": {"$ref": "https://x/s.json"}}}
    out = clean_schema(schema)
    assert out["properties"]["self"]["type"] == "object"
    assert out["properties"]["self"]["properties"]["self"] == {"type": "object"}
    assert out["properties"]["remote"] == {"type": "object"}


def test_input_not_mutated() -> None:
    before = copy.deepcopy(AGENT_SCHEMA)
    clean_schema(AGENT_SCHEMA)
    assert before == AGENT_SCHEMA


def test_multi_type_list_becomes_any_of() -> None:
    out = clean_schema({"type": ["string", "integer", "null"], "description": "id"})
    assert out == {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True, "description": "id"}


def test_non_dict_input_gives_empty_schema() -> None:
    assert clean_schema(None) == {}
    assert clean_schema(True) == {}


def test_to_json_schema_from_openapi_parameters() -> None:
    params = {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING", "nullable": True, "example": "Oslo"},
            "days": {"type": "ARRAY", "items": {"type": "INTEGER"}},
        },
        "required": ["city"],
        "propertyOrdering": ["city", "days"],
    }
    assert to_json_schema(params) == {
        "type": "object",
        "properties": {
            "city": {"type": ["string", "null"], "examples": ["Oslo"]},
            "days": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["city"],
    }
