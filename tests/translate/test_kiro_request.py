"""kiro_request and kiro_response: conversationState bodies and Kiro's errors."""

from __future__ import annotations

import json

import pytest

from quotio_core.formats import ir
from quotio_core.formats.anthropic.request import decode_request as from_anthropic
from quotio_core.formats.kiro.request import (
    EMPTY_ASSISTANT,
    EMPTY_TOOL_RESULTS,
    EMPTY_USER,
    MAX_TOOL_DESCRIPTION,
    decode_request,
    encode_request,
)
from quotio_core.formats.kiro.response import decode_error, decode_response
from quotio_core.formats.openai.request import decode_request as from_openai

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def state(body: dict) -> dict:
    return body["conversationState"]


def current(body: dict) -> dict:
    return state(body)["currentMessage"]["userInputMessage"]


def test_single_turn_with_system_prompt_and_tools():
    req = from_openai({
        "model": "x",
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "weather?"}],
        "tools": [WEATHER],
    })
    body = encode_request(req, "claude-sonnet-4-5")
    st = state(body)
    assert st["chatTriggerType"] == "MANUAL" and st["conversationId"]
    assert "history" not in st
    cur = current(body)
    assert cur["content"] == "Be terse.\n\nweather?"
    assert (cur["modelId"], cur["origin"]) == ("claude-sonnet-4-5", "AI_EDITOR")
    assert cur["userInputMessageContext"]["tools"] == [{
        "toolSpecification": {
            "name": "get_weather",
            "description": "Weather for a city",
            "inputSchema": {"json": WEATHER["function"]["parameters"]},
        }
    }]
    assert "profileArn" not in body  # the executor adds it, from the account


def test_tool_loop_becomes_alternating_history_with_results_in_context():
    req = from_openai({
        "model": "x",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "weather in Oslo and Bergen?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Bergen"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "boom"},
        ],
        "tools": [WEATHER],
    })
    req.messages[-1].parts[1].is_error = True
    body = encode_request(req, "m")
    history = state(body)["history"]
    assert [list(h) for h in history] == [["userInputMessage"], ["assistantResponseMessage"]]
    assert history[0]["userInputMessage"]["content"] == "sys\n\nweather in Oslo and Bergen?"
    assert history[1]["assistantResponseMessage"] == {
        "content": "Let me check.",
        "toolUses": [
            {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"toolUseId": "call_2", "name": "get_weather", "input": {"city": "Bergen"}},
        ],
    }
    cur = current(body)
    assert cur["content"] == EMPTY_TOOL_RESULTS
    assert cur["userInputMessageContext"]["toolResults"] == [
        {"toolUseId": "call_1", "status": "success", "content": [{"text": "22C"}]},
        {"toolUseId": "call_2", "status": "error", "content": [{"text": "boom"}]},
    ]
    assert len(cur["userInputMessageContext"]["tools"]) == 1


def test_roles_are_merged_and_padded_to_alternate():
    req = ir.Request(model="m", messages=[
        ir.Message("assistant", [ir.Text("I greet first")]),
        ir.Message("user", [ir.Text("a")]),
        ir.Message("user", [ir.Text("b")]),
        ir.Message("assistant", [ir.Text("prefill")]),
    ])
    body = encode_request(req, "m")
    history = state(body)["history"]
    assert [next(iter(h)) for h in history] == [
        "userInputMessage", "assistantResponseMessage", "userInputMessage", "assistantResponseMessage"
    ]
    assert history[0]["userInputMessage"]["content"] == EMPTY_USER
    assert history[2]["userInputMessage"]["content"] == "a\n\nb"
    assert current(body)["content"] == EMPTY_USER


def test_duplicate_call_ids_and_unmatched_results():
    req = ir.Request(model="m", messages=[
        ir.Message("user", [ir.ToolResult("orphan", [ir.Text("stray result")]), ir.Text("hi")]),
        ir.Message("assistant", [ir.ToolCall("t1", "f", {"a": 1})]),
        ir.Message("user", [ir.ToolResult("t1", [ir.Text("one")])]),
        ir.Message("assistant", [ir.ToolCall("t1", "f", {"a": 2}), ir.ToolCall("t2", "g", {})]),
        ir.Message("user", [ir.ToolResult("t1", [ir.Text("again")]), ir.ToolResult("t2", [ir.Text("two")])]),
    ])
    body = encode_request(req, "m")
    history = state(body)["history"]
    first = history[0]["userInputMessage"]
    assert "userInputMessageContext" not in first
    assert first["content"] == "Result of tool call orphan:\nstray result\n\nhi"
    assert history[1]["assistantResponseMessage"]["toolUses"][0]["toolUseId"] == "t1"
    assert history[3]["assistantResponseMessage"]["toolUses"] == [{"toolUseId": "t2", "name": "g", "input": {}}]
    assert history[3]["assistantResponseMessage"]["content"] == EMPTY_ASSISTANT
    cur = current(body)
    assert [r["toolUseId"] for r in cur["userInputMessageContext"]["toolResults"]] == ["t2"]
    assert cur["content"] == "Result of tool call t1:\nagain"
    # Tools called in the history stay defined, though the request sends none.
    names = [t["toolSpecification"]["name"] for t in cur["userInputMessageContext"]["tools"]]
    assert names == ["f", "g"]


def test_tool_choice_none_drops_the_request_tools_only():
    req = from_openai({"model": "x", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER],
                       "tool_choice": "none"})
    assert "userInputMessageContext" not in current(encode_request(req, "m"))


def test_schema_cleanup_and_long_descriptions():
    req = ir.Request(model="m", messages=[ir.Message("user", [ir.Text("x")])], tools=[
        ir.Tool("mcp_tool", "d" * (MAX_TOOL_DESCRIPTION + 50), {"type": "object", "properties": None, "required": None}),
        ir.Tool("bare", "", {}),
    ])
    specs = current(encode_request(req, "m"))["userInputMessageContext"]["tools"]
    assert specs[0]["toolSpecification"]["inputSchema"]["json"] == {"type": "object", "properties": {}}
    assert len(specs[0]["toolSpecification"]["description"]) == MAX_TOOL_DESCRIPTION
    assert specs[1]["toolSpecification"]["description"] == "bare"


def test_images_travel_as_bytes():
    req = from_anthropic({"model": "x", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
        {"type": "text", "text": "what is it"},
    ]}]})
    cur = current(encode_request(req, "m"))
    assert cur["images"] == [{"format": "jpeg", "source": {"bytes": "QUJD"}}]
    assert cur["content"] == "what is it"
    with pytest.raises(ValueError, match="not fetched"):
        encode_request(ir.Request(model="m", messages=[ir.Message("user", [ir.Image(url="https://x/y.png")])]), "m")


@pytest.mark.parametrize(
    ("reasoning", "budget"),
    [(ir.Reasoning(budget_tokens=3000), 3000), (ir.Reasoning(effort="low"), 2048), (ir.Reasoning(budget_tokens=10), 1024)],
)
def test_thinking_is_asked_for_in_the_prompt(reasoning, budget):
    req = ir.Request(model="m", messages=[ir.Message("user", [ir.Text("hi")])], system=[ir.Text("sys")],
                     reasoning=reasoning)
    content = current(encode_request(req, "m"))["content"]
    assert content == (
        f"<thinking_mode>interleaved</thinking_mode><max_thinking_length>{budget}</max_thinking_length>\n\nsys\n\nhi"
    )
    assert decode_request(encode_request(req, "m")).reasoning == ir.Reasoning(budget_tokens=budget)


def test_thinking_off_and_history_thinking_dropped():
    req = ir.Request(model="m", reasoning=ir.Reasoning(effort="none"), messages=[
        ir.Message("user", [ir.Text("q")]),
        ir.Message("assistant", [ir.Thinking("secret", "sig", origin="anthropic"), ir.Text("a")]),
        ir.Message("user", [ir.Text("q2")]),
    ])
    body = encode_request(req, "m")
    assert "thinking" not in json.dumps(body)
    assert state(body)["history"][1]["assistantResponseMessage"] == {"content": "a"}


def test_decode_reads_back_what_encode_wrote():
    req = from_openai({
        "model": "x",
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
        "tools": [WEATHER],
    })
    back = decode_request(encode_request(req, "claude-sonnet-4.5"))
    assert back.model == "claude-sonnet-4.5"
    assert [m.role for m in back.messages] == ["user", "assistant", "user"]
    assert back.messages[1].parts == [ir.ToolCall("c1", "get_weather", {"city": "Oslo"})]
    assert back.messages[2].parts == [ir.ToolResult("c1", [ir.Text("sunny")])]
    assert [t.name for t in back.tools] == ["get_weather"]
    with pytest.raises(TypeError):
        decode_request({"messages": []})


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "want_status", "kind", "words"),
    [
        (402, {"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}, 429,
         "rate_limit_error", "monthly request quota"),
        (429, {"message": "Too many", "reason": "USER_REQUEST_RATE_EXCEEDED"}, 429, "rate_limit_error", "Too many"),
        (400, {"message": "Input is too long.", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"}, 400,
         "invalid_request_error", "prompt is too long"),
        (503, {"message": "busy", "reason": "INSUFFICIENT_MODEL_CAPACITY"}, 529, "overloaded_error", "busy"),
        (403, {"message": "The bearer token included in the request is invalid.", "reason": None}, 401,
         "authentication_error", "bearer token"),
        (400, {"__type": "com.amazon.aws.codewhisperer#ValidationException", "message": "Improperly formed request."},
         400, "invalid_request_error", "ValidationException: Improperly formed request."),
        (403, {"message": "x-amz-target must be …", "reason": None}, 403, "permission_error", "x-amz-target"),
    ],
)
def test_decode_error(status, body, want_status, kind, words):
    err = decode_error(status, json.dumps(body).encode())
    assert (err.status, err.kind) == (want_status, kind)
    assert words in err.message


def test_decode_error_of_a_non_json_body_and_no_plain_answers():
    err = decode_error(502, b"<html>bad gateway</html>")
    assert (err.status, err.kind, err.message) == (502, "api_error", "<html>bad gateway</html>")
    with pytest.raises(ValueError, match="event stream"):
        decode_response({"anything": 1})
