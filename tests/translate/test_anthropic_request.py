import copy
import json

import pytest

from quotio_core.formats.anthropic.request import (
    assistant_turns,
    decode_request,
    encode_request,
    strip_thinking,
)
from quotio_core.formats.anthropic.response import is_signature_error
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

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
EPHEMERAL = {"type": "ephemeral"}

# A full Claude-Code-like request built from the documented shapes (wire-formats.md §1).
GOLDEN = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "system": [
        {"type": "text", "text": "You are helpful."},
        {"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL},
    ],
    "messages": [
        {"role": "user", "content": "What's the weather in Oslo and the time?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two tools needed.", "signature": "EqQB"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"tz": "CET"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "clock broken"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks", "cache_control": EPHEMERAL},
            ],
        },
    ],
    "tools": [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER_SCHEMA},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 10000},
    "stop_sequences": ["###"],
    "stream": True,
    "metadata": {"user_id": "user-42"},
}

GOLDEN_IR = Request(
    model="claude-sonnet-4-5",
    system=[Text("You are helpful."), Text("Be brief.", EPHEMERAL)],
    messages=[
        Message("user", [Text("What's the weather in Oslo and the time?")]),
        Message(
            "assistant",
            [
                Thinking("Two tools needed.", "EqQB", "anthropic"),
                Thinking(origin="anthropic", redacted="EmwKAhgB"),
                Text("Checking."),
                ToolCall("toolu_1", "get_weather", {"city": "Oslo"}),
                ToolCall("toolu_2", "get_time", {"tz": "CET"}),
            ],
        ),
        Message(
            "user",
            [
                ToolResult("toolu_1", [Text("22C")], False, "get_weather"),
                ToolResult("toolu_2", [Text("clock broken")], True, "get_time"),
                Text("Thanks", EPHEMERAL),
            ],
        ),
    ],
    tools=[
        Tool("get_weather", "Weather for a city", WEATHER_SCHEMA),
        Tool("get_time", "", {"type": "object", "properties": {"tz": {"type": "string"}}}),
    ],
    tool_choice=ToolChoice("auto"),
    parallel_tool_calls=False,
    max_tokens=32000,
    stop=["###"],
    stream=True,
    reasoning=Reasoning(budget_tokens=10000),
    user="user-42",
)


def user(text: str) -> Message:
    return Message("user", [Text(text)])


# --- decode --------------------------------------------------------------------


def test_decode_golden_request():
    assert decode_request(GOLDEN) == GOLDEN_IR


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        ("Be nice.", [Text("Be nice.")]),
        (
            [{"type": "text", "text": "A"}, {"type": "text", "text": "B", "cache_control": EPHEMERAL}],
            [Text("A"), Text("B", EPHEMERAL)],
        ),
        ("", []),
        (None, []),
    ],
)
def test_decode_system_forms(system, expected):
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    if system is not None:
        body["system"] = system
    assert decode_request(body).system == expected


def test_decode_images_base64_and_url():
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                    {"type": "text", "text": "Compare these."},
                ],
            }
        ],
    }
    assert decode_request(body).messages[0].parts == [
        Image(media_type="image/png", data="iVBOR"),
        Image(url="https://example.com/a.jpg"),
        Text("Compare these."),
    ]


def test_decode_tool_result_with_image_content():
    body = {
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_s", "name": "screenshot", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_s",
                        "content": [
                            {"type": "text", "text": "here"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j"}},
                        ],
                    }
                ],
            },
        ],
    }
    result = decode_request(body).messages[1].parts[0]
    assert result == ToolResult("toolu_s", [Text("here"), Image("image/jpeg", "/9j")], False, "screenshot")


def test_decode_tools_skip_server_tools_but_keep_them_for_anthropic():
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [],
        "tools": [
            {"type": "custom", "name": "a", "input_schema": {"type": "object"}},
            server_tool,
            {"name": "b", "description": "B", "input_schema": WEATHER_SCHEMA, "cache_control": EPHEMERAL},
        ],
    }
    req = decode_request(body)
    assert req.tools == [Tool("a", "", {"type": "object"}), Tool("b", "B", WEATHER_SCHEMA)]
    assert req.extra["anthropic"]["server_tools"] == [server_tool]
    out = encode_request(req, "m")
    assert out["tools"] == [
        {"name": "a", "input_schema": {"type": "object"}},
        {"name": "b", "input_schema": WEATHER_SCHEMA, "description": "B", "cache_control": EPHEMERAL},
        server_tool,
    ]


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, ToolChoice("auto"), None),
        ({"type": "any"}, ToolChoice("required"), None),
        ({"type": "tool", "name": "get_weather"}, ToolChoice("tool", "get_weather"), None),
        ({"type": "none"}, ToolChoice("none"), None),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("required"), False),
        ({"type": "auto", "disable_parallel_tool_use": False}, ToolChoice("auto"), True),
        ({"type": "bogus"}, None, None),
    ],
)
def test_decode_tool_choice(choice, expected, parallel):
    req = decode_request({"model": "m", "messages": [], "tool_choice": choice})
    assert req.tool_choice == expected
    assert req.parallel_tool_calls is parallel


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ({"type": "enabled", "budget_tokens": 2048}, Reasoning(budget_tokens=2048)),
        ({"type": "disabled"}, Reasoning(budget_tokens=0, include_thoughts=False)),
        ({"type": "adaptive"}, Reasoning()),
        (None, None),
    ],
)
def test_decode_thinking_config(thinking, expected):
    body = {"model": "m", "messages": []}
    if thinking is not None:
        body["thinking"] = thinking
    assert decode_request(body).reasoning == expected


def test_decode_sampling_fields():
    body = {"model": "m", "max_tokens": 100, "messages": [], "temperature": 0.2, "top_p": 0.9, "top_k": 40}
    req = decode_request(body)
    assert (req.max_tokens, req.temperature, req.top_p, req.top_k) == (100, 0.2, 0.9, 40)
    assert req.stream is False and req.user == "" and req.stop == []


def test_decode_tolerates_odd_input():
    body = {
        "model": "m",
        "messages": [
            "not a message",
            {
                "role": "user",
                "content": [{"type": "document", "source": {}}, 7, {"type": "image", "source": {"type": "file"}}],
            },
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": None}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "unknown"}]},
        ],
        "tools": "nope",
        "metadata": None,
        "stop_sequences": ["a", 3],
    }
    req = decode_request(body)
    assert req.messages == [
        Message("user", []),
        Message("assistant", [ToolCall("t", "f", {})]),
        Message("user", [ToolResult("unknown")]),
    ]
    assert req.stop == ["a"]


# --- encode --------------------------------------------------------------------


def test_encode_minimal_request_defaults():
    req = Request(model="gpt-4o", messages=[user("hi")], system=[Text("sys")])
    assert encode_request(req, "claude-x") == {
        "model": "claude-x",
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "system": "sys",
    }


def test_encode_system_blocks_keep_cache_control_and_drop_empty():
    req = Request(model="m", messages=[user("hi")], system=[Text("A"), Text(""), Text("B", EPHEMERAL)])
    assert encode_request(req, "m")["system"] == [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": EPHEMERAL},
    ]
    assert "system" not in encode_request(Request(model="m", messages=[user("hi")], system=[Text("  ")]), "m")


def test_encode_merges_roles_orders_tool_results_and_drops_empties():
    req = Request(
        model="m",
        messages=[
            user("first"),
            user("second"),
            Message("assistant", [Text(""), ToolCall("call_1", "f", {"x": 1}), ToolCall("call_2", "g")]),
            Message("assistant", []),
            Message("user", [Text("note")]),
            Message("user", [ToolResult("call_2", [Text("B")]), ToolResult("call_1", [Text("A")])]),
            Message("assistant", [Thinking("foreign", "gsig", "gemini")]),
            Message("assistant", [Text("done")]),
        ],
    )
    assert encode_request(req, "m")["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}},
                {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "B"}]},
                {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "A"}]},
                {"type": "text", "text": "note"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
    ]


def test_encode_thinking_only_same_origin_and_signed():
    req = Request(
        model="m",
        messages=[
            user("q"),
            Message(
                "assistant",
                [
                    Thinking("gemini says", "gsig", "gemini"),
                    Thinking("unsigned", "", "anthropic"),
                    Thinking(origin="responses", redacted="enc"),
                    Thinking("mine", "sig", "anthropic"),
                    Thinking(origin="anthropic", redacted="EmwK"),
                    Text("answer"),
                ],
            ),
        ],
    )
    assert encode_request(req, "m")["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "mine", "signature": "sig"},
        {"type": "redacted_thinking", "data": "EmwK"},
        {"type": "text", "text": "answer"},
    ]


def test_encode_images_and_tool_results():
    req = Request(
        model="m",
        messages=[
            Message("user", [Image(url="https://x/a.png"), Image("image/png", "iVBOR"), Text("look")]),
            Message("assistant", [ToolCall("call:1/x", "shot")]),
            Message(
                "user", [ToolResult("call:1/x", [Text("img"), Image("image/jpeg", "/9j"), Text("")], is_error=True)]
            ),
            Message("assistant", [ToolCall("call_2", "noop")]),
            Message("user", [ToolResult("call_2")]),
        ],
    )
    messages = encode_request(req, "m")["messages"]
    assert messages[0]["content"][:2] == [
        {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
    ]
    # Anthropic only accepts [a-zA-Z0-9_-] ids; call and result are rewritten alike.
    assert messages[1]["content"][0]["id"] == "call_1_x"
    assert messages[2]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "call_1_x",
            "content": [
                {"type": "text", "text": "img"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j"}},
            ],
            "is_error": True,
        }
    ]
    assert messages[4]["content"] == [{"type": "tool_result", "tool_use_id": "call_2"}]


def tools_req(**kwargs) -> Request:
    return Request(model="m", messages=[user("hi")], tools=[Tool("f", "F")], **kwargs)


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (ToolChoice("tool", "f"), None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ToolChoice("none"), False, {"type": "none"}),
        (ToolChoice("auto"), True, {"type": "auto"}),
    ],
)
def test_encode_tool_choice(choice, parallel, expected):
    body = encode_request(tools_req(tool_choice=choice, parallel_tool_calls=parallel), "m")
    assert body.get("tool_choice") == expected
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}, "description": "F"}]


def test_encode_no_tool_choice_without_tools():
    body = encode_request(Request(model="m", messages=[user("hi")], tool_choice=ToolChoice("required")), "m")
    assert "tool_choice" not in body and "tools" not in body


def test_encode_tool_schema_gets_object_type():
    req = Request(model="m", messages=[user("hi")], tools=[Tool("f", parameters={"properties": {"a": {}}})])
    assert encode_request(req, "m")["tools"][0]["input_schema"] == {"properties": {"a": {}}, "type": "object"}


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking", "expected_max"),
    [
        (Reasoning(budget_tokens=4000), 16000, {"type": "enabled", "budget_tokens": 4000}, 16000),
        (Reasoning(budget_tokens=500), 16000, {"type": "enabled", "budget_tokens": 1024}, 16000),
        (Reasoning(budget_tokens=10000), 4000, {"type": "enabled", "budget_tokens": 10000}, 11024),
        (Reasoning(budget_tokens=8192), None, {"type": "enabled", "budget_tokens": 8192}, 9216),
        (Reasoning(effort="minimal"), 30000, {"type": "enabled", "budget_tokens": 1024}, 30000),
        (Reasoning(effort="low"), 30000, {"type": "enabled", "budget_tokens": 2048}, 30000),
        (Reasoning(effort="medium"), 30000, {"type": "enabled", "budget_tokens": 8192}, 30000),
        (Reasoning(effort="high"), 30000, {"type": "enabled", "budget_tokens": 24576}, 30000),
        (Reasoning(effort="high"), None, {"type": "enabled", "budget_tokens": 24576}, 25600),
        (Reasoning(budget_tokens=-1), 30000, {"type": "enabled", "budget_tokens": 8192}, 30000),
        (Reasoning(budget_tokens=0, include_thoughts=False), 100, None, 100),
        (Reasoning(effort="none"), 100, None, 100),
        (Reasoning(), 100, None, 100),
        (None, 100, None, 100),
    ],
)
def test_encode_reasoning(reasoning, max_tokens, thinking, expected_max):
    req = Request(
        model="m", messages=[user("hi")], reasoning=reasoning, max_tokens=max_tokens, temperature=0.5, top_k=5
    )
    body = encode_request(req, "m")
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == expected_max
    if thinking is None:
        assert (body["temperature"], body["top_k"]) == (0.5, 5)
    else:
        assert "temperature" not in body and "top_k" not in body


def test_encode_thinking_keeps_only_allowed_top_p():
    base = {"model": "m", "messages": [user("hi")], "reasoning": Reasoning(effort="low")}
    assert encode_request(Request(top_p=0.97, **base), "m")["top_p"] == 0.97
    assert "top_p" not in encode_request(Request(top_p=0.5, **base), "m")


def test_encode_no_thinking_when_tool_is_forced():
    body = encode_request(tools_req(tool_choice=ToolChoice("required"), reasoning=Reasoning(effort="high")), "m")
    assert "thinking" not in body and body["tool_choice"] == {"type": "any"}


def test_encode_no_thinking_in_a_tool_loop_without_thinking_blocks():
    messages = [user("hi"), Message("assistant", [ToolCall("call_1", "f")]), Message("user", [ToolResult("call_1")])]
    req = Request(model="m", messages=messages, tools=[Tool("f")], reasoning=Reasoning(effort="high"))
    assert "thinking" not in encode_request(req, "m")
    messages[1].parts.insert(0, Thinking("t", "sig", "anthropic"))
    assert encode_request(req, "m")["thinking"] == {"type": "enabled", "budget_tokens": 24576}


def test_encode_scalars():
    req = Request(model="m", messages=[user("hi")], stop=["A", "B"], user="u1", stream=True, top_p=0.5, max_tokens=77)
    body = encode_request(req, "target")
    assert body["stop_sequences"] == ["A", "B"]
    assert body["metadata"] == {"user_id": "u1"}
    assert body["stream"] is True
    assert (body["top_p"], body["max_tokens"], body["model"]) == (0.5, 77, "target")


def test_encode_does_not_mutate_request():
    req = decode_request(GOLDEN)
    before = copy.deepcopy(req)
    encode_request(req, "m")
    assert req == before


# --- round trip ----------------------------------------------------------------


def test_round_trip_golden():
    ir = decode_request(GOLDEN)
    assert decode_request(encode_request(ir, GOLDEN["model"])) == ir


def test_round_trip_keeps_anthropic_only_fields():
    body = {
        "model": "m",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"type": "web_search_20250305", "name": "web_search"},
            {"name": "f", "input_schema": {"type": "object"}},
        ],
        "thinking": {"type": "adaptive"},
        "service_tier": "auto",
        "metadata": {"user_id": "u", "other": 1},
    }
    ir = decode_request(body)
    out = encode_request(ir, "m")
    assert out["thinking"] == {"type": "adaptive"}
    assert out["service_tier"] == "auto"
    assert out["metadata"] == {"other": 1, "user_id": "u"}
    assert out["tools"][1] == {"type": "web_search_20250305", "name": "web_search"}
    assert decode_request(out) == ir


# --- foreign thinking signatures -------------------------------------------------

def _conversation(last_tool: bool) -> dict:
    last = [{"type": "thinking", "thinking": "t2", "signature": "sig-b"}]
    last += [{"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {}}] if last_tool else [
        {"type": "text", "text": "done"}]
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t1", "signature": "sig-a"},
                                          {"type": "redacted_thinking", "data": "xx"},
                                          {"type": "text", "text": "hello"}]},
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": last},
    ]
    if last_tool:
        msgs.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]})
    return {"model": "m", "max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": msgs, "future_field": 1}


def test_strip_thinking_drops_every_thinking_block_and_keeps_the_rest():
    body = _conversation(last_tool=False)
    assert strip_thinking(body)
    assert body["messages"][1]["content"] == [{"type": "text", "text": "hello"}]
    assert body["messages"][3]["content"] == [{"type": "text", "text": "done"}]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["future_field"] == 1


def test_strip_thinking_turns_thinking_off_when_the_last_turn_used_a_tool():
    body = _conversation(last_tool=True)
    assert strip_thinking(body)
    assert "thinking" not in body
    assert body["messages"][3]["content"][0]["type"] == "tool_use"


def test_strip_thinking_of_the_first_turns_only_keeps_the_later_ones():
    body = _conversation(last_tool=True)
    assert assistant_turns(body) == 2
    assert strip_thinking(body, turns=1)
    assert body["messages"][1]["content"] == [{"type": "text", "text": "hello"}]
    assert body["messages"][3]["content"][0]["type"] == "thinking"
    assert body["thinking"]["type"] == "enabled"  # the last turn still starts with its own thinking


def test_strip_thinking_false_when_nothing_to_strip():
    body = {"model": "m", "messages": [{"role": "assistant", "content": [{"type": "text", "text": "x"}]}]}
    assert not strip_thinking(body)
    assert not strip_thinking({"messages": "text"})
    only_thinking = {"messages": [{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}]}
    assert strip_thinking(only_thinking)
    assert only_thinking["messages"][0]["content"] == [{"type": "text", "text": "(thinking omitted)"}]


def test_signature_error_is_recognised_only_as_a_400_about_thinking_signatures():
    body = json.dumps({"type": "error", "error": {"type": "invalid_request_error",
                       "message": "messages.1.content.0: Invalid `signature` in `thinking` block"}}).encode()
    assert is_signature_error(400, body)
    assert not is_signature_error(429, body)
    other = json.dumps({"type": "error", "error": {"type": "invalid_request_error",
                        "message": "max_tokens: must be positive"}}).encode()
    assert not is_signature_error(400, other)
