"""<fmt>_request.validate: a wrong type is a 400 naming the field; every valid shape passes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from quotio_core.errors import BadRequest
from quotio_core.formats import module

ANTHROPIC = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "stream": False,
    "temperature": 1,
    "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "22C"},
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "x"}]},
            {"type": "tool_result", "tool_use_id": "t1"},
        ]},
    ],
    "tools": [{"name": "f", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "ws"}],
    "unknown_extra": {"anything": [1, "two"]},
}
OPENAI = {
    "model": "gpt-4o",
    "max_tokens": 64,
    "max_completion_tokens": None,  # null is absent
    "temperature": 0.5,
    "stream": True,
    "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "22C"},
    ],
    "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "custom", "custom": {"name": "g"}}],
    "unknown_extra": True,
}
RESPONSES = {
    "model": "gpt-5",
    "instructions": "be brief",
    "max_output_tokens": 100,
    "stream": True,
    "input": [
        {"role": "user", "content": "hi"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "look"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "22C"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "e"},
    ],
    "tools": [{"type": "function", "name": "f", "parameters": {}}, {"type": "web_search"}],
}
GEMINI = {
    "contents": [{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"functionCall": {"name": "f"}}]}],
    "systemInstruction": {"parts": [{"text": "be brief"}]},
    "tools": [{"functionDeclarations": [{"name": "f"}]}],
    "generationConfig": {"maxOutputTokens": 100, "temperature": 0.2, "topK": 40.0},
}
VALID = {"anthropic": ANTHROPIC, "openai": OPENAI, "responses": RESPONSES, "gemini": GEMINI}

# Other valid shapes: minimal bodies and the alternatives each format allows.
ALSO_VALID = [
    ("anthropic", {"model": "m", "messages": []}),  # count_tokens: no max_tokens
    ("anthropic", {"model": "m", "max_tokens": 1, "messages": [], "system": "plain"}),
    ("openai", {"model": "m", "messages": [{"role": "assistant", "tool_calls": []}]}),  # content left out
    ("responses", {"model": "m", "input": "just a string"}),
    ("responses", {"model": "m", "previous_response_id": "resp_1"}),  # no input at all
    ("gemini", {}),
    ("gemini", {"generateContentRequest": {"model": "models/m", "contents": []}}),  # countTokens
    ("gemini", {"system_instruction": {"parts": []}, "generation_config": {"max_output_tokens": 5}}),
    ("gemini", {"model": "m", "project": "p", "request": {"contents": []}}),  # Code Assist wrapper
]

# (format, where in the body, the bad value, what the 400 must name)
INVALID: list[tuple[str, tuple, Any, str]] = [
    ("anthropic", ("messages",), "hi", "messages must be a list"),
    ("anthropic", ("messages",), None, "messages must be a list"),
    ("anthropic", ("messages", 0), "hi", "messages.0 must be an object"),
    ("anthropic", ("messages", 1, "content"), 5, "messages.1.content must be a string or a list of content blocks"),
    ("anthropic", ("messages", 0, "content"), None, "messages.0.content must be"),
    ("anthropic", ("messages", 1, "content", 0), 7, "messages.1.content.0 must be an object"),
    ("anthropic", ("messages", 2, "content", 0, "content"), {"a": 1}, "messages.2.content.0.content must be"),
    ("anthropic", ("messages", 2, "content", 1, "content", 0), "x", "messages.2.content.1.content.0 must be an object"),
    ("anthropic", ("tools",), {"name": "f"}, "tools must be a list"),
    ("anthropic", ("tools", 1), "ws", "tools.1 must be an object"),
    ("anthropic", ("max_tokens",), "64", "max_tokens must be an integer"),
    ("anthropic", ("max_tokens",), True, "max_tokens must be an integer"),
    ("anthropic", ("max_tokens",), 64.5, "max_tokens must be an integer"),
    ("anthropic", ("stream",), "true", "stream must be a boolean"),
    ("anthropic", ("stream",), 1, "stream must be a boolean"),
    ("anthropic", ("model",), 5, "model must be a string"),
    ("anthropic", ("temperature",), "hot", "temperature must be a number"),
    ("anthropic", ("temperature",), False, "temperature must be a number"),
    ("anthropic", ("system",), {"text": "x"}, "system must be a string or a list of text blocks"),
    ("anthropic", ("system", 0), "x", "system.0 must be a text block"),
    ("anthropic", ("system", 0), {"type": "image"}, "system.0 must be a text block"),
    ("openai", ("messages",), "hi", "messages must be a list"),
    ("openai", ("messages", 1, "content"), {"text": "x"}, "messages.1.content must be a string or a list"),
    ("openai", ("messages", 1, "content", 1), 3, "messages.1.content.1 must be an object"),
    ("openai", ("messages", 2, "tool_calls"), {"id": "c1"}, "messages.2.tool_calls must be a list"),
    ("openai", ("tools",), {}, "tools must be a list"),
    ("openai", ("tools", 0), "f", "tools.0 must be an object"),
    ("openai", ("max_tokens",), "64", "max_tokens must be an integer"),
    ("openai", ("max_completion_tokens",), True, "max_completion_tokens must be an integer"),
    ("openai", ("stream",), "yes", "stream must be a boolean"),
    ("openai", ("model",), ["gpt"], "model must be a string"),
    ("openai", ("temperature",), "0.5", "temperature must be a number"),
    ("responses", ("input",), 5, "input must be a string or a list of input items"),
    ("responses", ("input",), {"role": "user"}, "input must be a string or a list of input items"),
    ("responses", ("input", 0), "hi", "input.0 must be an object"),
    ("responses", ("input", 1, "content"), 5, "input.1.content must be a string or a list of content parts"),
    ("responses", ("input", 1, "content", 0), None, "input.1.content.0 must be an object"),
    ("responses", ("input", 3, "output"), {"x": 1}, "input.3.output must be a string or a list"),
    ("responses", ("tools",), "f", "tools must be a list"),
    ("responses", ("max_output_tokens",), "100", "max_output_tokens must be an integer"),
    ("responses", ("stream",), "true", "stream must be a boolean"),
    ("responses", ("instructions",), ["x"], "instructions must be a string"),
    ("responses", ("model",), {}, "model must be a string"),
    ("responses", ("include",), "reasoning.encrypted_content", "include must be a list"),
    ("gemini", ("contents",), "hi", "contents must be a list"),
    ("gemini", ("contents", 0), "hi", "contents.0 must be an object"),
    ("gemini", ("contents", 1, "parts"), {"text": "x"}, "contents.1.parts must be a list"),
    ("gemini", ("contents", 0, "parts", 0), "hi", "contents.0.parts.0 must be an object"),
    ("gemini", ("tools",), {"functionDeclarations": []}, "tools must be a list"),
    ("gemini", ("generationConfig",), [], "generationConfig must be an object"),
    ("gemini", ("generationConfig", "maxOutputTokens"), "100", "generationConfig.maxOutputTokens must be an integer"),
    ("gemini", ("generationConfig", "maxOutputTokens"), True, "generationConfig.maxOutputTokens must be an integer"),
    ("gemini", ("generationConfig", "temperature"), "hot", "generationConfig.temperature must be a number"),
]


def put(body: dict, path: tuple, value: Any) -> dict:
    body = copy.deepcopy(body)
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


@pytest.mark.parametrize("fmt", VALID)
def test_valid_body_passes(fmt: str) -> None:
    module(fmt, "request").validate(copy.deepcopy(VALID[fmt]))


@pytest.mark.parametrize(("fmt", "body"), ALSO_VALID)
def test_other_valid_shapes_pass(fmt: str, body: dict) -> None:
    module(fmt, "request").validate(body)


@pytest.mark.parametrize(("fmt", "path", "value", "message"), INVALID, ids=lambda v: repr(v)[:40])
def test_wrong_type_is_refused_naming_the_field(fmt: str, path: tuple, value: Any, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        module(fmt, "request").validate(put(VALID[fmt], path, value))
    assert e.value.status == 400 and e.value.code == "invalid_request_error"
    assert message in e.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"generateContentRequest": "x"}, "generateContentRequest must be an object"),
        ({"generateContentRequest": {"contents": "x"}}, "generateContentRequest.contents must be a list"),
        ({"request": {"contents": [{"parts": [1]}]}}, "request.contents.0.parts.0 must be an object"),
        ({"generation_config": {"max_output_tokens": "5"}}, "generationConfig.maxOutputTokens must be an integer"),
    ],
)
def test_gemini_wrappers_and_snake_case_are_checked(body: dict, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        module("gemini", "request").validate(body)
    assert message in e.value.message


def test_validate_does_not_touch_the_body() -> None:
    for fmt, body in VALID.items():
        before = copy.deepcopy(body)
        module(fmt, "request").validate(body)
        assert body == before
