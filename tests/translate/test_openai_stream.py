"""OpenAI Chat Completions streams: chunks -> IR events and IR events -> chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.lib.streaming.chat._completions import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from quotio_core.formats.sse import SSEDecoder
from quotio_core.formats.ir import (
    BlockStart,
    BlockStop,
    ErrorInfo,
    MessageDelta,
    MessageStart,
    MessageStop,
    Ping,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)
from quotio_core.formats.openai.stream import StreamDecoder, StreamEncoder

# --- helpers -----------------------------------------------------------------------


def chunk(delta: dict | None = None, finish: str | None = None, **extra: Any) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1710000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }


def usage_chunk(**usage: Any) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1710000000,
        "model": "gpt-4o",
        "choices": [],
        "usage": usage,
    }


def call_piece(index: int, args: str, call_id: str = "", name: str = "") -> dict:
    piece: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id:
        piece.update(id=call_id, type="function")
        piece["function"]["name"] = name
    return {"tool_calls": [piece]}


def sse(*items: dict | str, newline: str = "\n") -> bytes:
    """Chat framing: `data: <json>` plus a blank line; strings are sent as raw data."""
    out = []
    for item in items:
        data = item if isinstance(item, str) else json.dumps(item)
        out.append(f"data: {data}{newline}{newline}")
    return "".join(out).encode()


def run_decoder(pieces: list[bytes]) -> list[StreamEvent]:
    sse_decoder, decoder = SSEDecoder(), StreamDecoder()
    events: list[StreamEvent] = []
    for piece in pieces:
        for event in sse_decoder.feed(piece):
            events += decoder.feed(event)
    for event in sse_decoder.flush():
        events += decoder.feed(event)
    return events + decoder.finish()


def decode(raw: bytes) -> list[StreamEvent]:
    """The IR events of a stream, checked identical however the bytes are split."""
    whole = run_decoder([raw])
    for cut in range(1, len(raw)):
        assert run_decoder([raw[:cut], raw[cut:]]) == whole, f"differs when split at byte {cut}"
    assert run_decoder([raw[i : i + 1] for i in range(len(raw))]) == whole
    return whole


def encode(events: list[StreamEvent], model: str = "gpt-4o", include_usage: bool = False) -> bytes:
    encoder = StreamEncoder(model, include_usage=include_usage)
    out = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    assert encoder.finish() == b""  # nothing twice
    return out


def payloads(raw: bytes) -> list[Any]:
    """The data of each SSE event: parsed JSON, or the raw string ([DONE])."""
    decoder = SSEDecoder()
    events = decoder.feed(raw) + decoder.flush()
    assert all(e.event is None for e in events)  # Chat framing has no event: lines
    return [e.json() if e.json() is not None else e.data for e in events]


def validated_chunks(raw: bytes) -> list[ChatCompletionChunk]:
    items = payloads(raw)
    assert items[-1] == "[DONE]"
    assert "[DONE]" not in items[:-1]
    return [ChatCompletionChunk.model_validate(item) for item in items[:-1]]


USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 50,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 64},
    "completion_tokens_details": {"reasoning_tokens": 32},
}
IR_USAGE = Usage(input_tokens=100, output_tokens=50, cached_tokens=64, reasoning_tokens=32)

TEXT_STREAM = (
    chunk({"role": "assistant", "content": ""}, usage=None),
    chunk({"content": "Hel"}, usage=None),
    chunk({"content": "lo"}, usage=None),
    chunk({}, "stop", usage=None),
    usage_chunk(**USAGE),
    "[DONE]",
)

TOOL_STREAM = (
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Checking."}),
    chunk(call_piece(0, "", "call_1", "get_weather")),
    chunk(call_piece(0, '{"city":')),
    chunk(call_piece(0, '"Oslo"}')),
    chunk(call_piece(1, "", "call_2", "get_weather")),
    chunk(call_piece(1, '{"city":"Paris"}')),
    chunk({}, "tool_calls"),
    "[DONE]",
)


# --- decoder -----------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_decode_text_stream_with_usage_after_finish(newline):
    events = decode(sse(*TEXT_STREAM, newline=newline))
    assert events == [
        MessageStart(id="chatcmpl-1", model="gpt-4o"),
        BlockStart(0, "text"),
        TextDelta(0, "Hel"),
        TextDelta(0, "lo"),
        BlockStop(0),
        MessageDelta(stop_reason="end_turn", usage=IR_USAGE),
        MessageStop(),
    ]


def test_decode_text_then_parallel_tool_calls():
    events = decode(sse(*TOOL_STREAM))
    assert events == [
        MessageStart(id="chatcmpl-1", model="gpt-4o"),
        BlockStart(0, "text"),
        TextDelta(0, "Checking."),
        BlockStop(0),
        BlockStart(1, "tool_call", id="call_1", name="get_weather"),
        ToolArgsDelta(1, '{"city":'),
        ToolArgsDelta(1, '"Oslo"}'),
        BlockStop(1),
        BlockStart(2, "tool_call", id="call_2", name="get_weather"),
        ToolArgsDelta(2, '{"city":"Paris"}'),
        BlockStop(2),
        MessageDelta(stop_reason="tool_use", usage=None),
        MessageStop(),
    ]


def test_decode_interleaved_parallel_calls_arrive_whole_and_in_order():
    raw = sse(
        chunk({"role": "assistant", "content": None}),
        chunk(call_piece(0, "", "call_a", "f")),
        chunk(call_piece(1, '{"b"', "call_b", "g")),
        chunk(call_piece(0, '{"a"')),
        chunk(call_piece(1, ":2")),
        chunk(call_piece(0, ":1}")),
        chunk(call_piece(1, "}")),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    events = decode(raw)
    assert events == [
        MessageStart(id="chatcmpl-1", model="gpt-4o"),
        BlockStart(0, "tool_call", id="call_a", name="f"),
        ToolArgsDelta(0, '{"a"'),
        ToolArgsDelta(0, ":1}"),
        BlockStop(0),
        BlockStart(1, "tool_call", id="call_b", name="g"),
        ToolArgsDelta(1, '{"b":2}'),
        BlockStop(1),
        MessageDelta(stop_reason="tool_use"),
        MessageStop(),
    ]


def test_decode_several_calls_in_one_chunk():
    both = {
        "tool_calls": [
            {"index": 0, "id": "c0", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"index": 1, "id": "c1", "type": "function", "function": {"name": "g", "arguments": '{"x":1}'}},
        ]
    }
    events = decode(sse(chunk(both), chunk({}, "tool_calls"), "[DONE]"))
    assert events[1:-2] == [
        BlockStart(0, "tool_call", id="c0", name="f"),
        ToolArgsDelta(0, "{}"),
        BlockStop(0),
        BlockStart(1, "tool_call", id="c1", name="g"),
        ToolArgsDelta(1, '{"x":1}'),
        BlockStop(1),
    ]


def test_decode_reasoning_then_text_then_tool():
    raw = sse(
        chunk({"role": "assistant", "content": "", "reasoning_content": ""}),
        chunk({"reasoning_content": "Think"}),
        chunk({"reasoning_content": "ing."}),
        chunk({"content": "Answer"}),
        chunk(call_piece(0, '{"q":"x"}', "call_1", "search")),
        chunk({}, "stop"),  # some servers say stop after a tool call
        usage_chunk(prompt_tokens=10, completion_tokens=20, completion_tokens_details={"reasoning_tokens": 5}),
        "[DONE]",
    )
    events = decode(raw)
    assert events == [
        MessageStart(id="chatcmpl-1", model="gpt-4o"),
        BlockStart(0, "thinking", origin="openai"),
        ThinkingDelta(0, "Think"),
        ThinkingDelta(0, "ing."),
        BlockStop(0),
        BlockStart(1, "text"),
        TextDelta(1, "Answer"),
        BlockStop(1),
        BlockStart(2, "tool_call", id="call_1", name="search"),
        ToolArgsDelta(2, '{"q":"x"}'),
        BlockStop(2),
        MessageDelta(stop_reason="tool_use", usage=Usage(10, 20, 0, 5)),
        MessageStop(),
    ]


@pytest.mark.parametrize(
    ("finish", "stop"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), ("tool_calls", "tool_use")],
)
def test_decode_finish_reasons(finish, stop):
    events = decode(sse(chunk({"content": "x"}), chunk({}, finish), "[DONE]"))
    assert events[-2:] == [MessageDelta(stop_reason=stop), MessageStop()]


def test_decode_error_payload_ends_the_stream():
    raw = sse(
        chunk({"content": "partial"}),
        {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
        chunk({"content": "ignored"}),
        "[DONE]",
    )
    events = decode(raw)
    assert events == [
        MessageStart(id="chatcmpl-1", model="gpt-4o"),
        BlockStart(0, "text"),
        TextDelta(0, "partial"),
        StreamError(ErrorInfo(status=429, kind="rate_limit_error", message="Rate limit reached")),
    ]


def test_decode_error_as_first_payload_still_starts_the_message():
    events = decode(sse({"error": {"message": "overloaded", "code": 503}}))
    assert events == [
        MessageStart(id="", model=""),
        StreamError(ErrorInfo(status=503, kind="overloaded_error", message="overloaded")),
    ]


def test_decode_stream_cut_short_is_an_error():
    events = decode(sse(chunk({"content": "Hel"})))
    assert events[:3] == [MessageStart(id="chatcmpl-1", model="gpt-4o"), BlockStart(0, "text"), TextDelta(0, "Hel")]
    assert len(events) == 4 and isinstance(events[3], StreamError)
    err = events[3].error
    assert (err.status, err.kind) == (502, "api_error")
    assert "ended early" in err.message


def test_decode_empty_stream_is_an_error():
    decoder = StreamDecoder()
    events = decoder.finish()
    assert isinstance(events[0], MessageStart) and isinstance(events[1], StreamError)
    assert events[1].error.status == 502
    assert decoder.finish() == []


def test_decode_missing_done_after_finish_reason_completes_at_finish():
    events = decode(
        sse(chunk({"content": "ok"}), chunk({}, "length"), usage_chunk(prompt_tokens=3, completion_tokens=1))
    )
    assert events[-3:] == [BlockStop(0), MessageDelta(stop_reason="max_tokens", usage=Usage(3, 1)), MessageStop()]


def test_decode_ignores_junk_and_other_choices():
    raw = (
        b": keep-alive comment\n\n"
        + sse(
            "not json",
            chunk({"role": "assistant", "content": ""}),
            {"object": "chat.completion.chunk", "choices": [{"index": 1, "delta": {"content": "other choice"}}]},
            {"unexpected": True},
            chunk({"content": ""}),
            chunk({"content": "only this"}),
            chunk({"tool_calls": ["junk", {"index": 0}]}, usage=None),
            chunk({}, "stop"),
        )
        + b"event: ping\ndata: {}\n\n"
        + sse("[DONE]", chunk({"content": "after done"}))
    )
    events = decode(raw)
    assert events == [
        MessageStart(id="chatcmpl-1", model="gpt-4o"),
        BlockStart(0, "text"),
        TextDelta(0, "only this"),
        BlockStop(0),
        # The index-only tool piece named nothing and carried nothing: no call.
        MessageDelta(stop_reason="end_turn"),
        MessageStop(),
    ]


def test_decode_malformed_streamed_arguments_pass_through():
    raw = sse(
        chunk(call_piece(0, '{"a": tru', "c1", "f")), chunk(call_piece(0, "e,,}")), chunk({}, "tool_calls"), "[DONE]"
    )
    events = decode(raw)
    args = "".join(e.partial_json for e in events if isinstance(e, ToolArgsDelta))
    assert args == '{"a": true,,}'
    assert events[-2] == MessageDelta(stop_reason="tool_use")


def test_decode_nameless_call_with_arguments_is_kept_with_a_made_up_id():
    events = decode(sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}), "[DONE]"))
    assert events[1:] == [
        BlockStart(0, "tool_call", id="call_chatcmpl-1_0", name=""),
        ToolArgsDelta(0, "{}"),
        BlockStop(0),
        MessageDelta(stop_reason="tool_use"),
        MessageStop(),
    ]


def test_decode_calls_without_index_and_late_name():
    raw = sse(
        chunk({"tool_calls": [{"id": "x1", "type": "function", "function": {"arguments": '{"k":'}}]}),
        chunk({"tool_calls": [{"function": {"name": "lookup", "arguments": "1}"}}]}),
        chunk({"tool_calls": [{"id": "x2", "function": {"name": "other", "arguments": {"z": 0}}}]}),
        chunk({}, "tool_calls"),
        "[DONE]",
    )
    events = decode(raw)
    assert events[1:-2] == [
        BlockStart(0, "tool_call", id="x1", name="lookup"),
        ToolArgsDelta(0, '{"k":1}'),
        BlockStop(0),
        BlockStart(1, "tool_call", id="x2", name="other"),
        ToolArgsDelta(1, '{"z":0}'),
        BlockStop(1),
    ]


# --- encoder -----------------------------------------------------------------------

TEXT_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_1", model="claude-sonnet-4", usage=Usage(input_tokens=25)),
    Ping(),
    BlockStart(0, "text"),
    TextDelta(0, "Hel"),
    TextDelta(0, ""),
    TextDelta(0, "lo"),
    BlockStop(0),
    MessageDelta(stop_reason="end_turn", usage=Usage(input_tokens=25, output_tokens=7)),
    MessageStop(),
]

TOOL_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_1", model="claude-sonnet-4"),
    BlockStart(0, "thinking", origin="anthropic"),
    ThinkingDelta(0, "Let me"),
    SignatureDelta(0, "EqQB"),
    BlockStop(0),
    BlockStart(1, "text"),
    TextDelta(1, "Checking."),
    BlockStop(1),
    BlockStart(2, "tool_call", id="toolu_1", name="get_weather"),
    ToolArgsDelta(2, ""),
    ToolArgsDelta(2, '{"city":'),
    ToolArgsDelta(2, '"Oslo"}'),
    BlockStop(2),
    BlockStart(3, "tool_call", id="toolu_2", name="get_time"),
    ToolArgsDelta(3, "{}"),
    BlockStop(3),
    MessageDelta(stop_reason="tool_use", usage=IR_USAGE),
    MessageStop(),
]


def test_encode_text_stream_without_usage():
    raw = encode(TEXT_EVENTS, model="my-model")
    chunks = validated_chunks(raw)
    items = payloads(raw)[:-1]
    assert all("usage" not in item for item in items)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert len({c.created for c in chunks}) == 1
    assert {c.model for c in chunks} == {"my-model"}
    assert [c.object for c in chunks] == ["chat.completion.chunk"] * len(chunks)
    assert items[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [item["choices"][0]["delta"] for item in items[1:]] == [{"content": "Hel"}, {"content": "lo"}, {}]
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None, "stop"]


def test_encode_include_usage_adds_null_usage_and_a_usage_chunk():
    raw = encode(TEXT_EVENTS, include_usage=True)
    chunks = validated_chunks(raw)
    items = payloads(raw)[:-1]
    assert all(item["usage"] is None for item in items[:-1])
    assert items[-1]["choices"] == []
    assert items[-1]["usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 7,
        "total_tokens": 32,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_encode_tool_calls_are_numbered_from_zero_and_accumulate():
    raw = encode(TOOL_EVENTS, include_usage=True)
    chunks = validated_chunks(raw)
    items = payloads(raw)[:-1]
    deltas = [item["choices"][0]["delta"] for item in items if item["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Let me"},
        {"content": "Checking."},
        {
            "tool_calls": [
                {"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},
    ]
    assert items[-1]["usage"] == USAGE
    # The SDK's own accumulator rebuilds the whole message from the chunks.
    state = ChatCompletionStreamState()
    for c in chunks:
        state.handle_chunk(c)
    final = state.get_final_completion()
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.content == "Checking."
    assert [(t.id, t.function.name, t.function.arguments) for t in message.tool_calls] == [
        ("toolu_1", "get_weather", '{"city":"Oslo"}'),
        ("toolu_2", "get_time", "{}"),
    ]
    assert final.usage is not None and final.usage.prompt_tokens == 100


def test_encode_tool_calls_finish_as_tool_calls_even_when_told_end_turn():
    events = [*TOOL_EVENTS[:-2], MessageDelta(stop_reason="end_turn"), MessageStop()]
    chunks = validated_chunks(encode(events))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [("max_tokens", "length"), ("refusal", "content_filter"), ("stop_sequence", "stop"), ("pause_turn", "stop")],
)
def test_encode_stop_reasons(stop, finish):
    events = [
        MessageStart("m", "x"),
        BlockStart(0, "text"),
        TextDelta(0, "a"),
        BlockStop(0),
        MessageDelta(stop),
        MessageStop(),
    ]
    assert validated_chunks(encode(events))[-1].choices[0].finish_reason == finish


def test_encode_stream_error_writes_error_then_done_once():
    encoder = StreamEncoder("m", include_usage=True)
    out = encoder.encode(MessageStart("msg", "m")) + encoder.encode(BlockStart(0, "text"))
    out += encoder.encode(TextDelta(0, "par"))
    out += encoder.encode(StreamError(ErrorInfo(529, "overloaded_error", "Overloaded")))
    assert encoder.encode(TextDelta(0, "more")) == b""
    assert encoder.finish() == b""
    items = payloads(out)
    assert items[-2:] == [{"error": {"message": "Overloaded", "type": "server_error", "code": "overloaded"}}, "[DONE]"]
    for item in items[:-2]:
        ChatCompletionChunk.model_validate(item)


def test_encode_finish_after_message_delta_only_writes_done():
    encoder = StreamEncoder("m")
    encoder.encode(MessageStart("msg", "m"))
    body = encoder.encode(MessageDelta(stop_reason="end_turn"))
    assert payloads(body)[-1]["choices"][0]["finish_reason"] == "stop"
    assert encoder.finish() == b"data: [DONE]\n\n"
    assert encoder.finish() == b""


def test_encode_finish_on_unfinished_stream_reports_error():
    encoder = StreamEncoder("m")
    encoder.encode(MessageStart("msg", "m"))
    items = payloads(encoder.finish())
    assert items[0]["error"]["type"] == "server_error" and "ended early" in items[0]["error"]["message"]
    assert items[1] == "[DONE]"
    assert encoder.finish() == b""


def test_encode_message_stop_without_delta_still_finishes():
    raw = encode([MessageStart("msg", "m"), BlockStart(0, "text"), TextDelta(0, "x"), BlockStop(0), MessageStop()])
    chunks = validated_chunks(raw)
    assert chunks[-1].choices[0].finish_reason == "stop"


# --- round trip --------------------------------------------------------------------


def without_ids(events: list[StreamEvent]) -> list[StreamEvent]:
    return [MessageStart("", e.model) if isinstance(e, MessageStart) else e for e in events]


@pytest.mark.parametrize(
    "stream",
    [
        TEXT_STREAM,
        TOOL_STREAM,
        (
            chunk({"role": "assistant", "content": ""}, usage=None),
            chunk({"reasoning_content": "hm"}, usage=None),
            chunk({"content": "x"}, usage=None),
            chunk(call_piece(0, '{"a":1}', "call_9", "f"), usage=None),
            chunk({}, "tool_calls", usage=None),
            usage_chunk(**USAGE),
            "[DONE]",
        ),
    ],
)
def test_stream_round_trip(stream):
    first = decode(sse(*stream))
    # Asked for, usage is always sent (zeros if unknown), so ask only when there was some.
    has_usage = any(isinstance(e, MessageDelta) and e.usage is not None for e in first)
    again = decode(encode(first, model="gpt-4o", include_usage=has_usage))
    assert without_ids(again) == without_ids(first)
