"""gemini_request: generateContent bodies ↔ ir.Request, both directions."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from google.genai import types

from quotio_core.formats import ir
from quotio_core.formats.gemini.request import (
    SKIP_SIGNATURE_SENTINEL,
    decode_request,
    encode_request,
    parse_args,
    synth_call_id,
    unwrap_code_assist,
    wrap_code_assist,
)

WEATHER_DECL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING", "description": "City name"}},
        "required": ["city"],
    },
}

# A Gemini CLI-like conversation: thinking, parallel calls without ids, results, an image.
CONVERSATION: dict[str, Any] = {
    "systemInstruction": {"role": "user", "parts": [{"text": "Be brief."}, {"text": "Use tools."}]},
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "Weather in Oslo and Rome? And what is this?"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Checking both.", "thought": True, "thoughtSignature": "U0lH"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "RkM="},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": "22C"}}},
                {"functionResponse": {"name": "get_weather", "response": {"error": "station offline"}}},
            ],
        },
        {"role": "model", "parts": [{"text": "Oslo 22C; Rome unknown."}]},
        {"role": "user", "parts": [{"text": "Thanks"}]},
    ],
    "tools": [{"functionDeclarations": [WEATHER_DECL]}],
    "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    "generationConfig": {
        "maxOutputTokens": 1024,
        "stopSequences": ["END"],
        "temperature": 0.5,
        "topP": 0.9,
        "topK": 40,
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
    },
}


# --- decode -----------------------------------------------------------------------


def test_decode_conversation() -> None:
    req = decode_request(CONVERSATION)
    oslo_id = synth_call_id("m1", 1, "get_weather")
    rome_id = synth_call_id("m1", 2, "get_weather")
    assert oslo_id != rome_id and oslo_id.startswith("call_")
    assert req.model == ""
    assert req.system == [ir.Text("Be brief."), ir.Text("Use tools.")]
    assert req.messages == [
        ir.Message(
            "user",
            [
                ir.Text("Weather in Oslo and Rome? And what is this?"),
                ir.Image(media_type="image/jpeg", data="AAAA"),
                ir.Image(media_type="image/png", url="https://example.com/a.png"),
            ],
        ),
        ir.Message(
            "assistant",
            [
                ir.Thinking("Checking both.", signature="U0lH", origin="gemini"),
                ir.ToolCall(oslo_id, "get_weather", {"city": "Oslo"}, signature="RkM=", origin="gemini"),
                ir.ToolCall(rome_id, "get_weather", {"city": "Rome"}, origin="gemini"),
            ],
        ),
        ir.Message(
            "user",
            [
                # Matched by name, earliest unanswered call first.
                ir.ToolResult(oslo_id, [ir.Text("22C")], name="get_weather"),
                ir.ToolResult(rome_id, [ir.Text("station offline")], is_error=True, name="get_weather"),
            ],
        ),
        ir.Message("assistant", [ir.Text("Oslo 22C; Rome unknown.")]),
        ir.Message("user", [ir.Text("Thanks")]),
    ]
    assert req.tools == [
        ir.Tool(
            "get_weather",
            "Weather for a city",
            {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "City name"}},
                "required": ["city"],
            },
        )
    ]
    assert req.tool_choice == ir.ToolChoice("auto")
    assert (req.max_tokens, req.stop, req.temperature, req.top_p, req.top_k) == (1024, ["END"], 0.5, 0.9, 40)
    assert req.reasoning == ir.Reasoning(budget_tokens=2048, include_thoughts=True)
    assert req.extra == {}


def test_decode_ids_are_stable() -> None:
    assert decode_request(CONVERSATION) == decode_request(copy.deepcopy(CONVERSATION))


def test_decode_explicit_ids_and_json_response() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "go"}]},
            {"role": "model", "parts": [{"functionCall": {"id": "fc-1", "name": "ls", "args": {}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"id": "fc-1", "name": "ls", "response": {"files": ["a", "b"]}}}],
            },
        ]
    }
    msgs = decode_request(body).messages
    assert msgs[1].parts == [ir.ToolCall("fc-1", "ls", {}, origin="gemini")]
    assert msgs[2].parts == [ir.ToolResult("fc-1", [ir.Text('{"files": ["a", "b"]}')], name="ls")]


def test_decode_response_for_unknown_call_gets_synth_id() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"functionResponse": {"name": "x", "response": {"output": "ok"}}}]}]
    }
    (result,) = decode_request(body).messages[0].parts
    assert result == ir.ToolResult(synth_call_id("m0", 0, "x"), [ir.Text("ok")], name="x")


@pytest.mark.parametrize(
    "system",
    [
        {"parts": [{"text": "S"}]},
        {"role": "system", "parts": [{"text": "S"}]},
        "S",
    ],
)
def test_decode_system_forms(system: Any) -> None:
    req = decode_request({"systemInstruction": system, "contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert req.system == [ir.Text("S")]
    assert req.messages == [ir.Message("user", [ir.Text("hi")])]


def test_decode_snake_case_body() -> None:
    body = {
        "system_instruction": {"parts": [{"text": "S"}]},
        "contents": [{"parts": [{"text": "hi"}, {"inline_data": {"mime_type": "image/webp", "data": "QQ=="}}]}],
        "generation_config": {"max_output_tokens": 10},
        "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}],
    }
    req = decode_request(body)
    assert req.system == [ir.Text("S")]
    assert req.messages[0].parts == [ir.Text("hi"), ir.Image(media_type="image/webp", data="QQ==")]
    assert req.max_tokens == 10
    assert req.tools == [ir.Tool("f", "", {"type": "object"})]
    assert req.extra == {}


@pytest.mark.parametrize(
    ("config", "choice", "extra"),
    [
        ({"mode": "AUTO"}, ir.ToolChoice("auto"), {}),
        ({"mode": "NONE"}, ir.ToolChoice("none"), {}),
        ({"mode": "ANY"}, ir.ToolChoice("required"), {}),
        ({"mode": "ANY", "allowedFunctionNames": ["f"]}, ir.ToolChoice("tool", "f"), {}),
        (
            {"mode": "ANY", "allowedFunctionNames": ["f", "g"]},
            ir.ToolChoice("required"),
            {"gemini": {"allowedFunctionNames": ["f", "g"]}},
        ),
        ({"mode": "VALIDATED"}, ir.ToolChoice("auto"), {}),
    ],
)
def test_decode_tool_config(config: dict[str, Any], choice: ir.ToolChoice, extra: dict[str, Any]) -> None:
    req = decode_request({"contents": [], "toolConfig": {"functionCallingConfig": config}})
    assert req.tool_choice == choice
    assert req.extra == extra


@pytest.mark.parametrize(
    ("thinking", "reasoning"),
    [
        ({"thinkingBudget": 0}, ir.Reasoning(budget_tokens=0, include_thoughts=False)),
        ({"thinkingBudget": -1, "includeThoughts": True}, ir.Reasoning(include_thoughts=True)),
        ({"thinkingLevel": "HIGH", "includeThoughts": True}, ir.Reasoning(effort="high", include_thoughts=True)),
        ({"thinkingLevel": "low"}, ir.Reasoning(effort="low", include_thoughts=False)),
    ],
)
def test_decode_thinking_config(thinking: dict[str, Any], reasoning: ir.Reasoning) -> None:
    req = decode_request({"contents": [], "generationConfig": {"thinkingConfig": thinking}})
    assert req.reasoning == reasoning


def test_decode_count_tokens_bodies() -> None:
    contents = [{"role": "user", "parts": [{"text": "count me"}]}]
    expected = [ir.Message("user", [ir.Text("count me")])]
    assert decode_request({"contents": contents}).messages == expected
    wrapped = {"generateContentRequest": {"model": "models/gemini-2.5-pro", "contents": contents}}
    req = decode_request(wrapped)
    assert req.messages == expected and req.model == "" and req.extra == {}


def test_decode_code_assist_body() -> None:
    body = {
        "model": "gemini-2.5-pro",
        "project": "p-1",
        "request": {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
    }
    assert decode_request(body).messages == [ir.Message("user", [ir.Text("x")])]


def test_decode_keeps_gemini_only_fields_in_extra() -> None:
    body = {
        "contents": [],
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "tools": [{"googleSearch": {}}, {"functionDeclarations": [{"name": "f"}]}],
        "generationConfig": {"responseMimeType": "application/json", "temperature": 0},
    }
    req = decode_request(body)
    assert req.temperature == 0.0
    assert req.tools == [ir.Tool("f")]
    assert req.extra == {
        "gemini": {
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "tools": [{"googleSearch": {}}],
            "generationConfig": {"responseMimeType": "application/json"},
        }
    }
    out = encode_request(req, "gemini-2.5-flash")
    assert out["safetySettings"] == body["safetySettings"]
    assert out["tools"] == [{"functionDeclarations": [{"name": "f"}]}, {"googleSearch": {}}]
    assert out["generationConfig"] == {"responseMimeType": "application/json", "temperature": 0.0}


def test_decode_odd_input_does_not_crash() -> None:
    body = {
        "contents": [
            "junk",
            {"role": "user", "parts": ["junk", {"unknownPart": 1}, {"text": ""}, {"executableCode": {"code": "1"}}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": '{"a": 1'}}]},
        ],
        "tools": "nope",
        "generationConfig": {"maxOutputTokens": "many"},
    }
    req = decode_request(body)
    assert req.messages == [
        ir.Message("assistant", [ir.ToolCall(synth_call_id("m2", 0, "f"), "f", {"a": 1}, origin="gemini")])
    ]
    assert req.max_tokens is None and req.tools == []
    assert decode_request("not a dict") == ir.Request(model="")  # type: ignore[arg-type]


# --- encode -----------------------------------------------------------------------


def _validate(body: dict[str, Any]) -> None:
    """The pieces of a request body against google-genai's own models (extra keys are rejected)."""
    for content in body["contents"]:
        types.Content.model_validate(content)
    if "systemInstruction" in body:
        types.Content.model_validate(body["systemInstruction"])
    for tool in body.get("tools", []):
        types.Tool.model_validate(tool)
    if "toolConfig" in body:
        types.ToolConfig.model_validate(body["toolConfig"])
    if "generationConfig" in body:
        types.GenerationConfig.model_validate(body["generationConfig"])
    assert "model" not in body


def _anthropic_style_request() -> ir.Request:
    """What an Anthropic client's request decodes to: foreign ids, signatures and thinking."""
    return ir.Request(
        model="claude-sonnet-4",
        system=[ir.Text("You are helpful.", cache_control={"type": "ephemeral"})],
        messages=[
            ir.Message("user", [ir.Text("Weather in Oslo?")]),
            ir.Message(
                "user", [ir.Image(media_type="image/png", data="iVBO"), ir.Image(url="https://x.test/p.jpg?s=1")]
            ),
            ir.Message(
                "assistant",
                [
                    ir.Thinking("let me check", signature="EqQB", origin="anthropic"),
                    ir.Text(""),
                    ir.ToolCall("toolu_1", "get_weather", {"city": "Oslo"}, origin="anthropic"),
                    ir.ToolCall("toolu_2", "get_time", {}, origin="anthropic"),
                ],
            ),
            ir.Message(
                "user",
                [
                    ir.ToolResult("toolu_1", [ir.Text("22C")]),
                    ir.ToolResult("toolu_2", [ir.Text("boom")], is_error=True, name="get_time"),
                    ir.Text("and now?"),
                ],
            ),
        ],
        tools=[
            ir.Tool(
                "get_weather",
                "Weather",
                {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
            ),
            ir.Tool("get_time"),
        ],
        tool_choice=ir.ToolChoice("required"),
        max_tokens=4096,
        temperature=0.2,
        stop=["\n\nHuman:"],
        reasoning=ir.Reasoning(budget_tokens=2000),
    )


def test_encode_foreign_request() -> None:
    body = encode_request(_anthropic_style_request(), "gemini-2.5-pro")
    _validate(body)
    assert body == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Weather in Oslo?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/p.jpg?s=1"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                    {"functionCall": {"name": "get_time", "args": {}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"content": "22C"}}},
                    {"functionResponse": {"name": "get_time", "response": {"error": "boom"}}},
                    {"text": "and now?"},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "You are helpful."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                    {"name": "get_time"},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        "generationConfig": {
            "maxOutputTokens": 4096,
            "stopSequences": ["\n\nHuman:"],
            "temperature": 0.2,
            "thinkingConfig": {"thinkingBudget": 2000, "includeThoughts": True},
        },
    }


def test_encode_gemini3_puts_sentinel_on_foreign_calls() -> None:
    body = encode_request(_anthropic_style_request(), "models/gemini-3-pro-preview")
    calls = [p for c in body["contents"] for p in c["parts"] if "functionCall" in p]
    assert [c["thoughtSignature"] for c in calls] == [SKIP_SIGNATURE_SENTINEL] * 2


def test_encode_gemini_origin_call_keeps_id_and_signature() -> None:
    req = ir.Request(
        model="",
        messages=[
            ir.Message("user", [ir.Text("go")]),
            ir.Message(
                "assistant",
                [
                    ir.Thinking("plan", signature="VA==", origin="gemini"),
                    ir.ToolCall("call_abc", "ls", {"path": "."}, signature="RkM=", origin="gemini"),
                ],
            ),
            ir.Message("user", [ir.ToolResult("call_abc", [ir.Text("a.txt")], name="ls")]),
        ],
    )
    body = encode_request(req, "gemini-3-pro-preview")
    _validate(body)
    assert body["contents"][1]["parts"] == [
        {"text": "plan", "thought": True, "thoughtSignature": "VA=="},
        {"functionCall": {"name": "ls", "args": {"path": "."}, "id": "call_abc"}, "thoughtSignature": "RkM="},
    ]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "ls", "response": {"content": "a.txt"}, "id": "call_abc"}}
    ]


def test_encode_merges_same_role_turns_and_drops_empty() -> None:
    req = ir.Request(
        model="",
        messages=[
            ir.Message("user", [ir.Text("a")]),
            ir.Message("assistant", [ir.Thinking("foreign", origin="responses", redacted="enc")]),
            ir.Message("user", [ir.Text("b")]),
            ir.Message("assistant", [ir.Text("c")]),
            ir.Message("assistant", [ir.Text("d")]),
        ],
    )
    assert encode_request(req, "gemini-2.5-flash")["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}, {"text": "d"}]},
    ]


def test_encode_tool_result_images_and_unknown_name() -> None:
    req = ir.Request(
        model="",
        messages=[
            ir.Message(
                "user",
                [ir.ToolResult("orphan", [ir.Text("see"), ir.Image(media_type="image/gif", data="R0lG")])],
            )
        ],
    )
    assert encode_request(req, "gemini-2.5-pro")["contents"][0]["parts"] == [
        {"functionResponse": {"name": "unknown_tool", "response": {"content": "see"}}},
        {"inlineData": {"mimeType": "image/gif", "data": "R0lG"}},
    ]


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("data:image/webp;base64,UklG", {"inlineData": {"mimeType": "image/webp", "data": "UklG"}}),
        ("https://x.test/a.gif", {"fileData": {"mimeType": "image/gif", "fileUri": "https://x.test/a.gif"}}),
        ("https://x.test/image", {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/image"}}),
        ("gs://bucket/doc.pdf", {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"}}),
    ],
)
def test_encode_image_urls(url: str, part: dict[str, Any]) -> None:
    req = ir.Request(model="", messages=[ir.Message("user", [ir.Image(url=url)])])
    assert encode_request(req, "gemini-2.5-pro")["contents"][0]["parts"] == [part]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (ir.ToolChoice("auto"), {"mode": "AUTO"}),
        (ir.ToolChoice("none"), {"mode": "NONE"}),
        (ir.ToolChoice("required"), {"mode": "ANY"}),
        (ir.ToolChoice("tool", "f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_encode_tool_choice(choice: ir.ToolChoice, config: dict[str, Any]) -> None:
    body = encode_request(ir.Request(model="", tool_choice=choice), "gemini-2.5-pro")
    assert body["toolConfig"] == {"functionCallingConfig": config}
    types.ToolConfig.model_validate(body["toolConfig"])


@pytest.mark.parametrize(
    ("reasoning", "model", "thinking"),
    [
        (ir.Reasoning(effort="minimal"), "gemini-2.5-flash", {"thinkingBudget": 512, "includeThoughts": True}),
        (ir.Reasoning(effort="low"), "gemini-2.5-flash", {"thinkingBudget": 1024, "includeThoughts": True}),
        (ir.Reasoning(effort="medium"), "gemini-2.5-pro", {"thinkingBudget": 8192, "includeThoughts": True}),
        (ir.Reasoning(effort="high"), "gemini-2.5-pro", {"thinkingBudget": 24576, "includeThoughts": True}),
        (ir.Reasoning(effort="none"), "gemini-2.5-flash", {"thinkingBudget": 0, "includeThoughts": False}),
        (ir.Reasoning(budget_tokens=0), "gemini-2.5-flash", {"thinkingBudget": 0, "includeThoughts": False}),
        (
            ir.Reasoning(budget_tokens=5000, include_thoughts=False),
            "gemini-2.5-pro",
            {"thinkingBudget": 5000, "includeThoughts": False},
        ),
        (ir.Reasoning(effort="high"), "gemini-3-pro-preview", {"thinkingLevel": "high", "includeThoughts": True}),
        (ir.Reasoning(effort="none"), "gemini-3-flash", {"thinkingLevel": "low", "includeThoughts": True}),
        (ir.Reasoning(), "gemini-2.5-pro", {"includeThoughts": True}),
    ],
)
def test_encode_reasoning(reasoning: ir.Reasoning, model: str, thinking: dict[str, Any]) -> None:
    body = encode_request(ir.Request(model="", reasoning=reasoning), model)
    assert body["generationConfig"] == {"thinkingConfig": thinking}
    types.GenerationConfig.model_validate(body["generationConfig"])


def test_encode_minimal_request_has_only_contents() -> None:
    req = ir.Request(model="x", messages=[ir.Message("user", [ir.Text("hi")])])
    assert encode_request(req, "gemini-2.5-pro") == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


# --- round trip and helpers -------------------------------------------------------


@pytest.mark.parametrize("model", ["gemini-2.5-pro", "gemini-3-pro-preview"])
def test_round_trip(model: str) -> None:
    first = decode_request(CONVERSATION)
    body = encode_request(first, model)
    _validate(body)
    assert decode_request(body) == first


def test_round_trip_thinking_level_on_gemini3() -> None:
    body = {"contents": [], "generationConfig": {"thinkingConfig": {"thinkingLevel": "low", "includeThoughts": True}}}
    first = decode_request(body)
    assert decode_request(encode_request(first, "gemini-3-pro-preview")) == first


def test_code_assist_wrapper() -> None:
    inner = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert wrap_code_assist(inner, "gemini-2.5-pro", "proj-1") == {
        "model": "gemini-2.5-pro",
        "project": "proj-1",
        "request": inner,
    }
    assert unwrap_code_assist({"response": {"candidates": []}, "traceId": "t"}) == {"candidates": []}
    assert unwrap_code_assist({"candidates": []}) == {"candidates": []}


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("", {}),
        ('{"a": 1}', {"a": 1}),
        ('{"a": 1, "b": "tru', {"a": 1, "b": "tru"}),
        ('{"a": [1, 2', {"a": [1, 2]}),
        ('{"a": 1, "b":', {"a": 1}),
        ("[1, 2]", {}),
        ("garbage", {}),
    ],
)
def test_parse_args_keeps_what_it_can(text: str, args: dict[str, Any]) -> None:
    assert parse_args(text) == args
