"""OpenAI Chat Completions requests: decode to IR, encode from IR, round trip."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from openai.types import chat as chat_types
from openai.types.chat import completion_create_params

from quotio_core.formats.ir import (
    Image,
    Message,
    Reasoning,
    Request,
    Text,
    Thinking,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from quotio_core.formats.openai.request import decode_request, encode_request

PNG = "iVBORw0KGgo="
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_SCHEMA},
}

_PARAMS = pydantic.TypeAdapter(completion_create_params.CompletionCreateParamsStreaming)
_PARAMS_NON_STREAM = pydantic.TypeAdapter(completion_create_params.CompletionCreateParamsNonStreaming)


_MESSAGE = pydantic.TypeAdapter(chat_types.ChatCompletionMessageParam)
_CONTENT_PART = pydantic.TypeAdapter(chat_types.ChatCompletionContentPartParam)
_TOOL_CALL = pydantic.TypeAdapter(chat_types.ChatCompletionMessageFunctionToolCallParam)
_TOOL = pydantic.TypeAdapter(chat_types.ChatCompletionFunctionToolParam)
_TOOL_CHOICE = pydantic.TypeAdapter(chat_types.ChatCompletionToolChoiceOptionParam)


def assert_valid_openai_body(body: dict[str, Any]) -> None:
    """The SDK's own request types accept the body, nested lists included.

    The SDK types nested lists as Iterable, which pydantic validates lazily,
    so the items are checked one by one.
    """
    adapter = _PARAMS if body.get("stream") else _PARAMS_NON_STREAM
    adapter.validate_python(body)
    for message in body["messages"]:
        _MESSAGE.validate_python(message)
        if isinstance(message.get("content"), list):
            for part in message["content"]:
                _CONTENT_PART.validate_python(part)
        for call in message.get("tool_calls", []):
            _TOOL_CALL.validate_python(call)
    for tool in body.get("tools", []):
        _TOOL.validate_python(tool)
    if "tool_choice" in body:
        _TOOL_CHOICE.validate_python(body["tool_choice"])


def tool_turn_body() -> dict[str, Any]:
    """A documented-shape conversation: parallel tool calls, their results, a follow-up."""
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Oslo and Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "unknown city"}]},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }


# --- decode ------------------------------------------------------------------------


def test_decode_plain_text_request():
    req = decode_request(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}], "temperature": 0.2, "top_p": 0.9}
    )
    assert req == Request(model="gpt-4o", messages=[Message("user", [Text("Hello")])], temperature=0.2, top_p=0.9)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "system", "content": "Be brief."}], ["Be brief."]),
        ([{"role": "developer", "content": "Be brief."}], ["Be brief."]),
        ([{"role": "system", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}], ["A", "B"]),
        (
            [{"role": "system", "content": "one"}, {"role": "developer", "content": "two"}],
            ["one", "two"],
        ),
        ([{"role": "system", "content": ""}], []),
    ],
)
def test_decode_system_in_every_form(messages, expected):
    req = decode_request({"model": "m", "messages": [*messages, {"role": "user", "content": "hi"}]})
    assert [t.text for t in req.system] == expected
    assert req.messages == [Message("user", [Text("hi")])]


def test_decode_multi_turn_keeps_order_and_roles():
    req = decode_request(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "Fine."}]},
            ],
        }
    )
    assert req.messages == [
        Message("user", [Text("Hi")]),
        Message("assistant", [Text("Hello!")]),
        Message("user", [Text("How are you?")]),
        Message("assistant", [Text("Fine.")]),
    ]


def test_decode_images_base64_and_url():
    req = decode_request(
        {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "auto"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {"type": "image_url", "image_url": "https://example.com/bare.jpg"},
                        {"type": "image_url", "image_url": {"url": "data:image/svg+xml,%3Csvg%2F%3E"}},
                    ],
                }
            ],
        }
    )
    assert req.messages[0].parts == [
        Text("Compare"),
        Image(media_type="image/png", data=PNG),
        Image(url="https://example.com/cat.jpg"),
        Image(url="https://example.com/bare.jpg"),
        Image(media_type="image/svg+xml", data="PHN2Zy8+"),  # base64 of "<svg/>"
    ]


def test_decode_tool_calls_results_and_follow_up_merge_into_one_user_turn():
    req = decode_request(tool_turn_body())
    assert req.system == [Text("You are terse.")]
    assert req.messages == [
        Message("user", [Text("Weather in Oslo and Paris?")]),
        Message(
            "assistant",
            [
                ToolCall(id="call_1", name="get_weather", arguments={"city": "Oslo"}),
                ToolCall(id="call_2", name="get_weather", arguments={"city": "Paris"}),
            ],
        ),
        Message(
            "user",
            [
                ToolResult(call_id="call_1", content=[Text("22C")], name="get_weather"),
                ToolResult(call_id="call_2", content=[Text("unknown city")], name="get_weather"),
                Text("And tomorrow?"),
            ],
        ),
    ]
    assert req.tools == [Tool(name="get_weather", description="Weather for a city", parameters=WEATHER_SCHEMA)]
    assert req.tool_choice == ToolChoice("auto")
    assert req.parallel_tool_calls is True


def test_decode_tool_message_with_image_part_and_unknown_call():
    req = decode_request(
        {
            "model": "m",
            "messages": [
                {
                    "role": "tool",
                    "tool_call_id": "call_x",
                    "content": [
                        {"type": "text", "text": "screenshot:"},
                        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{PNG}"}},
                    ],
                }
            ],
        }
    )
    assert req.messages == [
        Message(
            "user",
            [ToolResult(call_id="call_x", content=[Text("screenshot:"), Image(media_type="image/jpeg", data=PNG)])],
        )
    ]


def test_decode_unparseable_arguments_become_empty_object_and_keep_going():
    body = tool_turn_body()
    body["messages"][2]["tool_calls"][0]["function"]["arguments"] = '{"city": "Os'
    req = decode_request(body)
    calls = req.messages[1].parts
    assert calls == [
        ToolCall(id="call_1", name="get_weather", arguments={}),
        ToolCall(id="call_2", name="get_weather", arguments={"city": "Paris"}),
    ]


def test_decode_assistant_reasoning_content_and_text():
    req = decode_request(
        {
            "model": "deepseek-reasoner",
            "messages": [
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": "4", "reasoning_content": "Add them."},
            ],
        }
    )
    assert req.messages[1] == Message("assistant", [Thinking(text="Add them.", origin="openai"), Text("4")])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("none", ToolChoice("none")),
        ("auto", ToolChoice("auto")),
        ("required", ToolChoice("required")),
        ({"type": "function", "function": {"name": "get_weather"}}, ToolChoice("tool", "get_weather")),
        (None, None),
    ],
)
def test_decode_tool_choice_variants(raw, expected):
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL]}
    if raw is not None:
        body["tool_choice"] = raw
    assert decode_request(body).tool_choice == expected


def test_decode_sampling_limits_reasoning_stream_and_extra():
    req = decode_request(
        {
            "model": "o3",
            "messages": [{"role": "user", "content": "x"}],
            "max_completion_tokens": 500,
            "max_tokens": 100,
            "reasoning_effort": "high",
            "stop": "END",
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u-42",
            "response_format": {"type": "json_object"},
            "n": 1,
            "seed": 7,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.1,
            "logit_bias": {"50256": -100},
            "logprobs": True,
        }
    )
    assert req.max_tokens == 500  # max_completion_tokens wins
    assert req.reasoning == Reasoning(effort="high")
    assert req.stop == ["END"]
    assert req.stream is True and req.include_usage is True
    assert req.user == "u-42"
    extra = req.extra["openai"]
    assert extra["response_format"] == {"type": "json_object"}
    assert (extra["n"], extra["seed"], extra["logprobs"]) == (1, 7, True)
    assert (extra["presence_penalty"], extra["frequency_penalty"]) == (0.5, 0.1)
    assert extra["logit_bias"] == {"50256": -100}


def test_decode_defaults_for_a_bare_body():
    req = decode_request({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a", "b"]})
    assert (req.max_tokens, req.reasoning, req.stream, req.include_usage) == (None, None, False, False)
    assert req.stop == ["a", "b"]
    assert req.extra == {}


def test_decode_tolerates_odd_input():
    req = decode_request(
        {
            "model": "m",
            "messages": [
                "junk",
                {"role": "function", "content": "legacy"},
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {}}, {"type": "text", "text": "ok"}],
                },
                {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1,2]"}}]},
            ],
            "tools": [{"type": "custom", "custom": {"name": "x"}}, "junk"],
            "tool_choice": {"type": "allowed_tools"},
        }
    )
    assert req.messages == [
        Message("user", [Text("ok")]),
        Message("assistant", [ToolCall(id="c", name="f", arguments={"value": [1, 2]})]),
    ]
    assert req.tools == [] and req.tool_choice is None


# --- encode ------------------------------------------------------------------------


def test_encode_system_texts_become_one_leading_system_message():
    req = Request(
        model="ignored",
        system=[Text("You are terse."), Text("Answer in French.", cache_control={"type": "ephemeral"})],
        messages=[Message("user", [Text("Hi")])],
    )
    body = encode_request(req, "gpt-4o")
    assert body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse.\n\nAnswer in French."},
            {"role": "user", "content": "Hi"},
        ],
    }
    assert_valid_openai_body(body)


def test_encode_user_text_is_a_string_and_images_make_parts():
    req = Request(
        model="m",
        messages=[
            Message("user", [Text("first"), Text("second")]),
            Message("assistant", [Text("ok")]),
            Message("user", [Text("look"), Image(media_type="image/png", data=PNG), Image(url="https://x/y.jpg")]),
        ],
    )
    body = encode_request(req, "gpt-4o")
    assert body["messages"] == [
        {"role": "user", "content": "first\n\nsecond"},
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}},
            ],
        },
    ]
    assert_valid_openai_body(body)


def test_encode_tool_turn_order_args_and_results():
    req = Request(
        model="m",
        messages=[
            Message("user", [Text("Weather?")]),
            Message(
                "assistant",
                [
                    Thinking(text="call the tool", signature="sig", origin="anthropic"),
                    ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Oslo"}),
                    ToolCall(id="toolu_2", name="get_weather", arguments={"city": "Zürich"}),
                ],
            ),
            Message(
                "user",
                [
                    ToolResult(call_id="toolu_1", content=[Text("22C"), Text("sunny")]),
                    ToolResult(call_id="toolu_2", content=[Text("city not found")], is_error=True),
                    Text("thanks"),
                ],
            ),
        ],
        tools=[Tool("get_weather", "Weather for a city", WEATHER_SCHEMA)],
        tool_choice=ToolChoice("required"),
        parallel_tool_calls=False,
    )
    body = encode_request(req, "gpt-4o")
    assert body["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "22C\nsunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "city not found"},
        {"role": "user", "content": "thanks"},
    ]
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == "required"
    assert body["parallel_tool_calls"] is False
    assert json.loads(body["messages"][1]["tool_calls"][1]["function"]["arguments"]) == {"city": "Zürich"}
    assert_valid_openai_body(body)


def test_encode_tool_result_images_follow_the_tool_messages():
    req = Request(
        model="m",
        messages=[
            Message("assistant", [ToolCall(id="c1", name="screenshot")]),
            Message(
                "user",
                [
                    ToolResult(call_id="c1", content=[Text("here"), Image(media_type="image/png", data=PNG)]),
                    Text("what do you see?"),
                ],
            ),
        ],
    )
    body = encode_request(req, "gpt-4o")
    assert body["messages"][1:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "here"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "text", "text": "what do you see?"},
            ],
        },
    ]
    assert body["messages"][0]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert_valid_openai_body(body)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("auto"), "auto"),
        (ToolChoice("none"), "none"),
        (ToolChoice("required"), "required"),
        (ToolChoice("tool", "get_weather"), {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_encode_tool_choice_variants(choice, expected):
    req = Request(model="m", messages=[Message("user", [Text("x")])], tools=[Tool("get_weather")], tool_choice=choice)
    body = encode_request(req, "m")
    assert body["tool_choice"] == expected
    assert_valid_openai_body(body)


def test_encode_without_tools_omits_tool_choice_and_parallel_flag():
    req = Request(
        model="m", messages=[Message("user", [Text("x")])], tool_choice=ToolChoice("auto"), parallel_tool_calls=True
    )
    body = encode_request(req, "m")
    assert "tool_choice" not in body and "parallel_tool_calls" not in body and "tools" not in body


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        (None, None),
        (Reasoning(budget_tokens=0), None),
        (Reasoning(budget_tokens=1024), "low"),
        (Reasoning(budget_tokens=1025), "medium"),
        (Reasoning(budget_tokens=8192), "medium"),
        (Reasoning(budget_tokens=8193), "high"),
        (Reasoning(effort="minimal", budget_tokens=50000), "minimal"),
    ],
)
def test_encode_reasoning_effort_and_max_tokens_field(reasoning, effort):
    req = Request(model="m", messages=[Message("user", [Text("x")])], max_tokens=4096, reasoning=reasoning)
    body = encode_request(req, "m")
    assert body.get("reasoning_effort") == effort
    if effort is None:
        assert body["max_tokens"] == 4096 and "max_completion_tokens" not in body
    else:
        assert body["max_completion_tokens"] == 4096 and "max_tokens" not in body
    assert_valid_openai_body(body)


def test_encode_stream_always_asks_for_usage_and_maps_sampling():
    req = Request(
        model="m",
        messages=[Message("user", [Text("x")])],
        stream=True,
        include_usage=False,
        temperature=0.0,
        top_p=1.0,
        top_k=40,
        stop=["END"],
        user="u-1",
    )
    body = encode_request(req, "gpt-4o-mini")
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["stop"], body["user"]) == (0.0, 1.0, ["END"], "u-1")
    assert "top_k" not in body
    assert_valid_openai_body(body)


def test_encode_empty_assistant_and_unknown_thinking_only_turns():
    req = Request(model="m", messages=[Message("user", [Text("x")]), Message("assistant", [Thinking(text="hm")])])
    body = encode_request(req, "m")
    assert body["messages"][1] == {"role": "assistant", "content": ""}


# --- round trip --------------------------------------------------------------------


def test_same_format_round_trip_restores_extras_and_strict_and_max_field():
    original = tool_turn_body()
    original.update(
        {
            "max_completion_tokens": 300,
            "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
            "seed": 3,
            "n": 1,
            "logprobs": True,
            "presence_penalty": 0.2,
            "frequency_penalty": 0.3,
            "logit_bias": {"1": 2},
            "stop": ["X"],
            "stream": True,
            "stream_options": {"include_usage": True},
            "user": "u",
        }
    )
    original["tools"][0] = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "strict": True}}
    req = decode_request(original)
    body = encode_request(req, "gpt-4o")
    assert_valid_openai_body(body)
    for key in ("response_format", "seed", "n", "logprobs", "presence_penalty", "frequency_penalty", "logit_bias"):
        assert body[key] == original[key]
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body
    assert body["tools"][0]["function"]["strict"] is True
    assert not any(key.startswith("_") for key in body)
    assert decode_request(body) == req


def test_round_trip_with_images_reasoning_effort_and_tool_choice():
    original = {
        "model": "o4-mini",
        "messages": [
            {"role": "developer", "content": "dev rules"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": f"data:image/webp;base64,{PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": "a cat",
                "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "zoom", "arguments": '{"x": 1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": "zoomed"},
        ],
        "tools": [{"type": "function", "function": {"name": "zoom", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "zoom"}},
        "reasoning_effort": "low",
        "max_completion_tokens": 1000,
    }
    req = decode_request(original)
    body = encode_request(req, "o4-mini")
    assert_valid_openai_body(body)
    assert body["reasoning_effort"] == "low"
    assert body["messages"][0] == {"role": "system", "content": "dev rules"}
    assert decode_request(body) == req
