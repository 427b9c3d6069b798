"""Responses request decoding/encoding, from the shapes in wire-formats.md §3 and §6."""

from __future__ import annotations

import json

import pytest

from quotio_core.formats import ir
from quotio_core.formats.responses.request import decode_request, encode_request, parse_arguments

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

# The Codex CLI shape of §3, one turn of each kind.
CODEX_BODY = {
    "model": "gpt-5-codex",
    "instructions": "You are Codex.",
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "Sandbox: read-only"}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in this image, and the weather?"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
            ],
        },
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [
                {"type": "summary_text", "text": "Look at it"},
                {"type": "summary_text", "text": "then call"},
            ],
            "encrypted_content": "gAAAAenc",
        },
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {
            "type": "function_call",
            "call_id": "call_2",
            "name": "get_weather",
            "arguments": '{"city":"Bergen"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "22C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "error: station offline"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks"}]},
    ],
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather",
            "parameters": WEATHER_SCHEMA,
            "strict": False,
        },
        {"type": "web_search"},
        {"type": "local_shell"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": {"effort": "high", "summary": "auto"},
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "conv-123",
    "text": {"verbosity": "low"},
    "service_tier": "priority",
}


def test_decode_codex_body_system_and_messages():
    req = decode_request(CODEX_BODY)
    assert req.model == "gpt-5-codex"
    assert req.system == [ir.Text("You are Codex."), ir.Text("Sandbox: read-only")]
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    user, assistant, results = req.messages
    assert user.parts == [
        ir.Text("What is in this image, and the weather?"),
        ir.Image(media_type="image/png", data="iVBORw0KGgo="),
        ir.Image(url="https://example.com/cat.jpg"),
    ]
    assert assistant.parts == [
        ir.Thinking(text="Look at it\n\nthen call", origin="responses", redacted="gAAAAenc"),
        ir.Text("Checking."),
        ir.ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"}),
        ir.ToolCall(id="call_2", name="get_weather", arguments={"city": "Bergen"}),
    ]
    assert results.parts == [
        ir.ToolResult("call_1", [ir.Text("22C")], name="get_weather"),
        ir.ToolResult("call_2", [ir.Text("error: station offline")], name="get_weather"),
        ir.Text("Thanks"),
    ]


def test_decode_codex_body_options_and_extra():
    req = decode_request(CODEX_BODY)
    assert req.tools == [ir.Tool("get_weather", "Weather", WEATHER_SCHEMA)]
    assert req.tool_choice == ir.ToolChoice("auto")
    assert req.parallel_tool_calls is False
    assert req.reasoning == ir.Reasoning(effort="high", summary="auto", include_thoughts=True)
    assert req.stream is True
    assert req.extra["responses"] == {
        "prompt_cache_key": "conv-123",
        "include": ["reasoning.encrypted_content"],
        "text": {"verbosity": "low"},
        "service_tier": "priority",
        "store": False,
        "tools": [{"type": "web_search"}, {"type": "local_shell"}],
    }


def test_decode_string_input_and_sampling():
    req = decode_request(
        {
            "model": "gpt-4.1",
            "input": "Hi",
            "max_output_tokens": 256,
            "temperature": 0.2,
            "top_p": 0.9,
            "user": "u1",
        }
    )
    assert req.messages == [ir.Message("user", [ir.Text("Hi")])]
    assert req.system == []
    assert (req.max_tokens, req.temperature, req.top_p, req.user) == (256, 0.2, 0.9, "u1")
    assert req.stream is False
    assert req.reasoning is None


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("none", ir.ToolChoice("none")),
        ("auto", ir.ToolChoice("auto")),
        ("required", ir.ToolChoice("required")),
        ({"type": "function", "name": "get_weather"}, ir.ToolChoice("tool", "get_weather")),
        (None, None),
    ],
)
def test_decode_tool_choice(raw, expected):
    assert decode_request({"input": "x", "tool_choice": raw}).tool_choice == expected


def test_decode_hosted_tool_choice_kept_in_extra():
    req = decode_request({"input": "x", "tool_choice": {"type": "web_search_preview"}})
    assert req.tool_choice is None
    assert req.extra["responses"]["tool_choice"] == {"type": "web_search_preview"}


def test_decode_easy_messages_and_system_roles_in_order():
    req = decode_request(
        {
            "instructions": "A",
            "input": [
                {"role": "system", "content": "B"},
                {"role": "user", "content": "hello"},
                {"role": "developer", "content": [{"type": "input_text", "text": "C"}]},
                {"role": "assistant", "content": "hi"},
            ],
        }
    )
    assert [t.text for t in req.system] == ["A", "B", "C"]
    assert req.messages == [ir.Message("user", [ir.Text("hello")]), ir.Message("assistant", [ir.Text("hi")])]


def test_decode_odd_input_is_tolerated():
    req = decode_request(
        {
            "input": [
                "not an item",
                {"type": "unknown_item", "foo": 1},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a": 1, "b": '},
                {
                    "type": "function_call_output",
                    "call_id": "zzz",
                    "output": [{"type": "input_text", "text": "ok"}],
                },
                {"type": "message", "role": "user", "content": [{"type": "input_file", "file_id": "f"}]},
            ],
            "tools": "nope",
            "reasoning": "high",
        }
    )
    assert req.messages[0].parts == [ir.ToolCall("c1", "f", {"_raw": '{"a": 1, "b": '})]
    assert req.messages[1].parts == [ir.ToolResult("zzz", [ir.Text("ok")], name="")]
    assert req.tools == [] and req.reasoning is None


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('{"city":"Oslo"}', {"city": "Oslo"}),
        ("", {}),
        ('{"city":"Os', {"city": "Os"}),  # cut short: repaired
        ("[1,2]", {"input": [1, 2]}),
        ("{nonsense", {"_raw": "{nonsense"}),
    ],
)
def test_parse_arguments(raw, expected):
    assert parse_arguments(raw) == expected


def test_decode_reasoning_without_summary_means_no_thoughts():
    req = decode_request({"input": "x", "reasoning": {"effort": "minimal"}})
    assert req.reasoning == ir.Reasoning(effort="minimal", summary=None, include_thoughts=False)


# --- encode ----------------------------------------------------------------------


def _full_request(**kw) -> ir.Request:
    return ir.Request(
        model="claude-x",
        system=[ir.Text("Be brief."), ir.Text("Use tools.")],
        messages=[
            ir.Message(
                "user",
                [
                    ir.Text("Weather in Oslo?"),
                    ir.Image(media_type="image/jpeg", data="AAAA"),
                    ir.Image(url="https://x/y.png"),
                ],
            ),
            ir.Message(
                "assistant",
                [
                    ir.Thinking(text="anthropic thoughts", signature="sig", origin="anthropic"),
                    ir.Text(""),
                    ir.Text("Let me check."),
                    ir.ToolCall("toolu_1", "get_weather", {"city": "Oslo"}),
                    ir.ToolCall("toolu_2", "get_time", {}),
                ],
            ),
            ir.Message(
                "user",
                [
                    ir.ToolResult("toolu_1", [ir.Text("22C"), ir.Text("sunny")], name="get_weather"),
                    ir.ToolResult("toolu_2", [ir.Text("boom")], is_error=True, name="get_time"),
                    ir.Text("And tomorrow?"),
                ],
            ),
        ],
        tools=[ir.Tool("get_weather", "Weather", WEATHER_SCHEMA), ir.Tool("get_time")],
        tool_choice=ir.ToolChoice("tool", "get_weather"),
        max_tokens=1000,
        temperature=0.5,
        top_p=0.8,
        user="user-1",
        stream=False,
        **kw,
    )


def test_encode_items_in_order():
    body = encode_request(_full_request(), "gpt-5")
    assert body["model"] == "gpt-5"
    assert body["instructions"] == "Be brief.\n\nUse tools."
    assert body["input"] == [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather in Oslo?"},
                {"type": "input_image", "image_url": "data:image/jpeg;base64,AAAA"},
                {"type": "input_image", "image_url": "https://x/y.png"},
            ],
        },
        # Foreign (anthropic) thinking is dropped; the empty text makes no item.
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me check."}],
        },
        {
            "type": "function_call",
            "call_id": "toolu_1",
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        },
        {"type": "function_call", "call_id": "toolu_2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "22C\nsunny"},
        {"type": "function_call_output", "call_id": "toolu_2", "output": "boom"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "And tomorrow?"}]},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather",
            "parameters": WEATHER_SCHEMA,
            "strict": False,
        },
        {
            "type": "function",
            "name": "get_time",
            "description": "",
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        },
    ]
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["parallel_tool_calls"] is True


def test_encode_codex_backend_rules():
    req = _full_request()
    req.extra["responses"] = {"service_tier": "flex", "store": True, "include": ["x"]}
    body = encode_request(req, "gpt-5")
    for key in ("max_output_tokens", "temperature", "top_p", "user", "service_tier"):
        assert key not in body
    assert body["stream"] is True
    assert body["store"] is False
    assert body["include"] == ["x", "reasoning.encrypted_content"]


def test_encode_codex_keeps_priority_tier():
    req = _full_request()
    req.extra["responses"] = {"service_tier": "priority"}
    assert encode_request(req, "gpt-5")["service_tier"] == "priority"


def test_encode_public_api_sends_sampling():
    body = encode_request(_full_request(), "gpt-5", codex_backend=False)
    assert body["max_output_tokens"] == 1000
    assert body["temperature"] == 0.5
    assert body["top_p"] == 0.8
    assert body["user"] == "user-1"
    assert body["stream"] is False
    assert "store" not in body and "include" not in body


def test_encode_empty_system_still_sends_instructions():
    body = encode_request(ir.Request(model="m", messages=[ir.Message("user", [ir.Text("hi")])]), "gpt-5")
    assert body["instructions"] == ""
    assert body["tools"] == [] and body["tool_choice"] == "auto"


@pytest.mark.parametrize(
    "reasoning, expected",
    [
        (None, {"effort": "medium", "summary": "auto"}),
        (ir.Reasoning(budget_tokens=0), None),
        (ir.Reasoning(budget_tokens=1024), {"effort": "low", "summary": "auto"}),
        (ir.Reasoning(budget_tokens=1025), {"effort": "medium", "summary": "auto"}),
        (ir.Reasoning(budget_tokens=8192), {"effort": "medium", "summary": "auto"}),
        (ir.Reasoning(budget_tokens=32000), {"effort": "high", "summary": "auto"}),
        (ir.Reasoning(budget_tokens=-1), {"effort": "medium", "summary": "auto"}),
        (ir.Reasoning(effort="minimal", summary="detailed"), {"effort": "minimal", "summary": "detailed"}),
        (ir.Reasoning(effort="low", include_thoughts=False), {"effort": "low"}),
    ],
)
def test_encode_reasoning(reasoning, expected):
    body = encode_request(ir.Request(model="m", reasoning=reasoning), "gpt-5")
    assert body.get("reasoning") == expected


@pytest.mark.parametrize(
    "choice, expected",
    [
        (ir.ToolChoice("none"), "none"),
        (ir.ToolChoice("auto"), "auto"),
        (ir.ToolChoice("required"), "required"),
        (ir.ToolChoice("tool", "f"), {"type": "function", "name": "f"}),
    ],
)
def test_encode_tool_choice(choice, expected):
    assert encode_request(ir.Request(model="m", tool_choice=choice), "x")["tool_choice"] == expected


def test_encode_thinking_only_same_origin_with_payload():
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                "assistant",
                [
                    ir.Thinking(text="mine", origin="responses", redacted="enc1"),
                    ir.Thinking(
                        text="", origin="responses", signature="enc2"
                    ),  # streamed: payload as signature
                    ir.Thinking(text="no payload", origin="responses"),
                    ir.Thinking(text="gemini", signature="g", origin="gemini"),
                    ir.Thinking(redacted="anthropic-redacted", origin="anthropic"),
                ],
            )
        ],
    )
    assert encode_request(req, "gpt-5")["input"] == [
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "mine"}],
            "encrypted_content": "enc1",
        },
        {"type": "reasoning", "summary": [], "encrypted_content": "enc2"},
    ]


def test_encode_tool_result_with_image_uses_part_list():
    req = ir.Request(
        model="m",
        messages=[
            ir.Message(
                "user",
                [ir.ToolResult("c1", [ir.Text("shot:"), ir.Image(media_type="image/png", data="QQ==")])],
            )
        ],
    )
    assert encode_request(req, "gpt-5")["input"] == [
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [
                {"type": "input_text", "text": "shot:"},
                {"type": "input_image", "image_url": "data:image/png;base64,QQ=="},
            ],
        }
    ]


def test_encode_restores_extra_fields():
    req = decode_request(CODEX_BODY)
    body = encode_request(req, "gpt-5-codex")
    assert body["tools"][1:] == [{"type": "web_search"}, {"type": "local_shell"}]
    assert body["prompt_cache_key"] == "conv-123"
    assert body["text"] == {"verbosity": "low"}
    assert body["service_tier"] == "priority"
    assert body["parallel_tool_calls"] is False
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    json.dumps(body)  # plain JSON all the way down


def test_encode_strict_tool_kept():
    body = {
        "input": "x",
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
    }
    assert encode_request(decode_request(body), "m")["tools"][0]["strict"] is True


def test_round_trip_same_ir():
    body = {**CODEX_BODY, "input": [i for i in CODEX_BODY["input"] if i.get("role") != "developer"]}
    first = decode_request(body)
    second = decode_request(encode_request(first, "gpt-5-codex"))
    assert second == first


def test_round_trip_public_api_keeps_sampling():
    body = {
        "model": "gpt-4.1",
        "instructions": "S",
        "input": "hi",
        "max_output_tokens": 50,
        "temperature": 1.0,
        "top_p": 0.5,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }
    first = decode_request(body)
    encoded = encode_request(first, "gpt-4.1", codex_backend=False)
    assert "reasoning" not in encoded  # a public-API model may not reason: nothing unasked is sent
    assert decode_request(encoded) == first


def test_encoded_input_validates_against_sdk_params():
    # The SDK ships TypedDicts for params; check the item shapes against the response item models instead.
    from openai.types.responses import ResponseFunctionToolCall, ResponseReasoningItem

    body = encode_request(decode_request(CODEX_BODY), "gpt-5-codex")
    for item in body["input"]:
        if item["type"] == "function_call":
            ResponseFunctionToolCall.model_validate(item)
        elif item["type"] == "reasoning":
            ResponseReasoningItem.model_validate({**item, "id": "rs_x"})
