"""Responses SSE <-> IR stream events, from the event tables in wire-formats.md §3."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from quotio_core.formats.sse import SSEDecoder, encode_event
from quotio_core.formats import ir
from quotio_core.formats.responses.stream import StreamDecoder, StreamEncoder

EVENT_ADAPTER = TypeAdapter(ResponseStreamEvent)

USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 64},
    "output_tokens": 50,
    "output_tokens_details": {"reasoning_tokens": 32},
    "total_tokens": 150,
}
IR_USAGE = ir.Usage(input_tokens=100, output_tokens=50, cached_tokens=64, reasoning_tokens=32)


def _response(status: str, output: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1710000000,
        "status": status,
        "model": "gpt-5",
        "output": output or [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        **extra,
    }


def _sse(events: list[dict[str, Any]], crlf: bool = False, named: bool = True) -> bytes:
    """Frame events the way the upstream does, numbering them as it does."""
    raw = b"".join(
        encode_event(json.dumps({**e, "sequence_number": i}), e["type"] if named else None)
        for i, e in enumerate(events)
    )
    return raw.replace(b"\n", b"\r\n") if crlf else raw


HEAD = [
    {"type": "response.created", "response": _response("in_progress")},
    {"type": "response.in_progress", "response": _response("in_progress")},
]
MSG_ITEM = {"type": "message", "id": "msg_1", "status": "in_progress", "role": "assistant", "content": []}
DONE_TEXT_PART = {"type": "output_text", "text": "Hello", "annotations": []}

TEXT_EVENTS = [
    *HEAD,
    {"type": "response.output_item.added", "output_index": 0, "item": MSG_ITEM},
    {
        "type": "response.content_part.added",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "part": {"type": "output_text", "text": "", "annotations": []},
    },
    {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hel",
        "logprobs": [],
    },
    {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "lo",
        "logprobs": [],
    },
    {
        "type": "response.output_text.done",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "text": "Hello",
        "logprobs": [],
    },
    {
        "type": "response.content_part.done",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "part": DONE_TEXT_PART,
    },
    {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": {**MSG_ITEM, "status": "completed", "content": [DONE_TEXT_PART]},
    },
    {"type": "response.completed", "response": _response("completed", usage=USAGE)},
]
TEXT_IR = [
    ir.MessageStart(id="resp_1", model="gpt-5"),
    ir.BlockStart(0, "text"),
    ir.TextDelta(0, "Hel"),
    ir.TextDelta(0, "lo"),
    ir.BlockStop(0),
    ir.MessageDelta(stop_reason="end_turn", usage=IR_USAGE),
    ir.MessageStop(),
]

RS_ITEM = {"type": "reasoning", "id": "rs_1", "summary": []}
FC1 = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "shell",
    "arguments": "",
    "status": "in_progress",
}
FC2 = {
    "type": "function_call",
    "id": "fc_2",
    "call_id": "call_2",
    "name": "read",
    "arguments": "",
    "status": "in_progress",
}


def _summary(kind: str, index: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": f"response.reasoning_summary_{kind}",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": index,
        **fields,
    }


TOOLS_EVENTS = [
    *HEAD,
    {"type": "response.output_item.added", "output_index": 0, "item": RS_ITEM},
    _summary("part.added", 0, part={"type": "summary_text", "text": ""}),
    _summary("text.delta", 0, delta="Plan"),
    _summary("text.done", 0, text="Plan"),
    _summary("part.done", 0, part={"type": "summary_text", "text": "Plan"}),
    _summary("part.added", 1, part={"type": "summary_text", "text": ""}),
    _summary("text.delta", 1, delta="More"),
    _summary("text.done", 1, text="More"),
    {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": {
            **RS_ITEM,
            "summary": [{"type": "summary_text", "text": "Plan"}, {"type": "summary_text", "text": "More"}],
            "encrypted_content": "gAAAA-enc",
        },
    },
    {"type": "response.output_item.added", "output_index": 1, "item": FC1},
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 1,
        "delta": '{"cmd":',
    },
    {
        "type": "response.function_call_arguments.delta",
        "item_id": "fc_1",
        "output_index": 1,
        "delta": '["ls"]}',
    },
    {
        "type": "response.function_call_arguments.done",
        "item_id": "fc_1",
        "output_index": 1,
        "arguments": '{"cmd":["ls"]}',
    },
    {
        "type": "response.output_item.done",
        "output_index": 1,
        "item": {**FC1, "arguments": '{"cmd":["ls"]}', "status": "completed"},
    },
    # A second, parallel call whose arguments come only whole, at the end.
    {"type": "response.output_item.added", "output_index": 2, "item": FC2},
    {
        "type": "response.function_call_arguments.done",
        "item_id": "fc_2",
        "output_index": 2,
        "arguments": '{"path":"a.py"}',
    },
    {
        "type": "response.output_item.done",
        "output_index": 2,
        "item": {**FC2, "arguments": '{"path":"a.py"}', "status": "completed"},
    },
    {"type": "response.completed", "response": _response("completed", usage=USAGE)},
]
TOOLS_IR = [
    ir.MessageStart(id="resp_1", model="gpt-5"),
    ir.BlockStart(0, "thinking", origin="responses"),
    ir.ThinkingDelta(0, "Plan"),
    ir.ThinkingDelta(0, "\n\n"),
    ir.ThinkingDelta(0, "More"),
    ir.SignatureDelta(0, "gAAAA-enc"),
    ir.BlockStop(0),
    ir.BlockStart(1, "tool_call", id="call_1", name="shell"),
    ir.ToolArgsDelta(1, '{"cmd":'),
    ir.ToolArgsDelta(1, '["ls"]}'),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="call_2", name="read"),
    ir.ToolArgsDelta(2, '{"path":"a.py"}'),
    ir.BlockStop(2),
    ir.MessageDelta(stop_reason="tool_use", usage=IR_USAGE),
    ir.MessageStop(),
]


def decode(raw: bytes, chunks: list[bytes]) -> list[ir.StreamEvent]:
    sse, decoder = SSEDecoder(), StreamDecoder()
    out: list[ir.StreamEvent] = []
    for chunk in chunks:
        for event in sse.feed(chunk):
            out.extend(decoder.feed(event))
    for event in sse.flush():
        out.extend(decoder.feed(event))
    out.extend(decoder.finish())
    return out


def decode_all_splits(raw: bytes) -> list[ir.StreamEvent]:
    """The IR of `raw`, asserting it is the same however the bytes are chunked."""
    whole = decode(raw, [raw])
    for cut in range(1, len(raw)):
        assert decode(raw, [raw[:cut], raw[cut:]]) == whole, f"split at byte {cut}"
    assert decode(raw, [raw[i : i + 1] for i in range(len(raw))]) == whole
    return whole


# --- decode ----------------------------------------------------------------------


def test_decode_text():
    assert decode_all_splits(_sse(TEXT_EVENTS)) == TEXT_IR


def test_decode_text_crlf_without_event_lines():
    assert decode_all_splits(_sse(TEXT_EVENTS, crlf=True, named=False)) == TEXT_IR


def test_decode_reasoning_and_parallel_tool_calls():
    assert decode_all_splits(_sse(TOOLS_EVENTS)) == TOOLS_IR


def test_decode_text_only_in_done_events():
    events = [
        e for e in TEXT_EVENTS if e["type"] not in ("response.output_text.delta", "response.output_text.done")
    ]
    assert decode_all_splits(_sse(events)) == [*TEXT_IR[:2], ir.TextDelta(0, "Hello"), *TEXT_IR[4:]]


def test_decode_tool_call_only_in_item_done():
    item = {**FC1, "arguments": '{"cmd":["ls"]}', "status": "completed"}
    events = [*HEAD, {"type": "response.output_item.done", "output_index": 0, "item": item}, TOOLS_EVENTS[-1]]
    assert decode_all_splits(_sse(events)) == [
        ir.MessageStart(id="resp_1", model="gpt-5"),
        ir.BlockStart(0, "tool_call", id="call_1", name="shell"),
        ir.ToolArgsDelta(0, '{"cmd":["ls"]}'),
        ir.BlockStop(0),
        ir.MessageDelta(stop_reason="tool_use", usage=IR_USAGE),
        ir.MessageStop(),
    ]


def test_decode_empty_message_item_opens_no_block():
    empty_done = {
        **MSG_ITEM,
        "status": "completed",
        "content": [{"type": "output_text", "text": "", "annotations": []}],
    }
    events = [
        *HEAD,
        *TEXT_EVENTS[2:4],  # item added + empty content part
        {"type": "response.output_item.done", "output_index": 0, "item": empty_done},
        *TOOLS_EVENTS[11:16],  # then a tool call at output_index 1
        TOOLS_EVENTS[-1],
    ]
    decoded = decode_all_splits(_sse(events))
    assert decoded[1] == ir.BlockStart(0, "tool_call", id="call_1", name="shell")
    assert not any(isinstance(e, ir.BlockStart) and e.kind == "text" for e in decoded)
    assert decoded[-2].stop_reason == "tool_use"


def test_decode_reasoning_without_summary_carries_signature():
    item = {**RS_ITEM, "encrypted_content": "enc"}
    events = [*HEAD, {"type": "response.output_item.added", "output_index": 0, "item": RS_ITEM}]
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events += [{**e, "output_index": 1} if "output_index" in e else e for e in TEXT_EVENTS[2:]]
    decoded = decode_all_splits(_sse(events))
    assert decoded[1:5] == [
        ir.BlockStart(0, "thinking", origin="responses"),
        ir.SignatureDelta(0, "enc"),
        ir.BlockStop(0),
        ir.BlockStart(1, "text"),
    ]


@pytest.mark.parametrize("reason, stop", [("max_output_tokens", "max_tokens"), ("content_filter", "refusal")])
def test_decode_incomplete(reason, stop):
    end = {
        "type": "response.incomplete",
        "response": _response("incomplete", incomplete_details={"reason": reason}, usage=USAGE),
    }
    assert decode_all_splits(_sse([*TEXT_EVENTS[:5], end])) == [
        *TEXT_IR[:3],
        ir.BlockStop(0),
        ir.MessageDelta(stop_reason=stop, usage=IR_USAGE),
        ir.MessageStop(),
    ]


def test_decode_failed():
    failed = _response("failed", error={"code": "rate_limit_exceeded", "message": "Slow down"})
    decoded = decode_all_splits(_sse([*TEXT_EVENTS[:5], {"type": "response.failed", "response": failed}]))
    assert decoded[:3] == TEXT_IR[:3]
    assert decoded[3:] == [ir.StreamError(ir.ErrorInfo(429, "rate_limit_error", "Slow down"))]


@pytest.mark.parametrize(
    "event, info",
    [
        (
            {"type": "error", "code": "server_error", "message": "boom", "param": None},
            ir.ErrorInfo(500, "api_error", "boom"),
        ),
        (
            {
                "type": "error",
                "error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 60},
            },
            ir.ErrorInfo(429, "rate_limit_error", "limit", 60.0),
        ),
    ],
)
def test_decode_error_event(event, info):
    # Arriving first: a MessageStart is made up so the IR grammar holds.
    assert decode_all_splits(_sse([event, *TEXT_EVENTS])) == [
        ir.MessageStart(id="", model=""),
        ir.StreamError(info),
    ]


def test_decode_truncated_stream_is_an_error():
    decoded = decode_all_splits(_sse(TEXT_EVENTS[:5]))
    assert decoded[:3] == TEXT_IR[:3]
    err = decoded[3]
    assert isinstance(err, ir.StreamError) and len(decoded) == 4
    assert (err.error.status, err.error.kind) == (502, "api_error")
    assert "ended early" in err.error.message


def test_decode_empty_stream_is_an_error():
    assert [type(e) for e in decode(b"", [b""])] == [ir.MessageStart, ir.StreamError]


def test_decode_ignores_unknown_and_malformed_events():
    noise = [
        {"type": "response.web_search_call.in_progress", "item_id": "ws", "output_index": 9},
        {
            "type": "response.output_item.added",
            "output_index": 9,
            "item": {"type": "web_search_call", "id": "ws"},
        },
        {
            "type": "response.output_item.done",
            "output_index": 9,
            "item": {"type": "web_search_call", "id": "ws"},
        },
        {"type": "keepalive"},
    ]
    raw = _sse([*TEXT_EVENTS[:2], *noise, *TEXT_EVENTS[2:]]) + b"data: not json\n\ndata: [1,2]\n\n"
    assert decode_all_splits(raw) == TEXT_IR


def test_decoder_finish_after_completion_is_silent():
    sse, decoder = SSEDecoder(), StreamDecoder()
    for event in sse.feed(_sse(TEXT_EVENTS)):
        decoder.feed(event)
    assert decoder.finish() == []
    assert decoder.finish() == []


# --- encode ----------------------------------------------------------------------


def encode(events: list[ir.StreamEvent], model: str = "gpt-5") -> tuple[bytes, list[dict[str, Any]]]:
    """Encoder output, and its events after checking framing, numbering and SDK validity."""
    encoder = StreamEncoder(model)
    raw = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    assert encoder.finish() == b""
    parsed = []
    for sse in SSEDecoder().feed(raw):
        data = json.loads(sse.data)
        assert sse.event == data["type"]
        EVENT_ADAPTER.validate_python(data)
        parsed.append(data)
    assert [d["sequence_number"] for d in parsed] == list(range(len(parsed)))
    return raw, parsed


def test_encode_text():
    _, events = encode(TEXT_IR)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    created, done, completed = events[0]["response"], events[8]["item"], events[-1]["response"]
    assert (created["id"], created["status"], created["output"], created["model"]) == (
        "resp_1",
        "in_progress",
        [],
        "gpt-5",
    )
    assert [e["delta"] for e in events[4:6]] == ["Hel", "lo"]
    assert events[6]["text"] == "Hello" and events[7]["part"]["text"] == "Hello"
    assert done["status"] == "completed" and done["content"][0]["text"] == "Hello"
    assert completed["status"] == "completed" and completed["output"] == [done]
    assert (
        completed["usage"]["input_tokens"] == 100
        and completed["usage"]["output_tokens_details"]["reasoning_tokens"] == 32
    )


def test_encode_reasoning_and_tools():
    _, events = encode(TOOLS_IR)
    kinds = [e["type"] for e in events]
    assert kinds[2:8] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
    ]
    items = {e["item"]["id"]: e["item"] for e in events if e["type"] == "response.output_item.done"}
    reasoning, call1, call2 = items.values()
    assert reasoning["summary"] == [{"type": "summary_text", "text": "Plan\n\nMore"}]
    assert reasoning["encrypted_content"] == "gAAAA-enc"
    assert (call1["call_id"], call1["name"], call1["arguments"]) == ("call_1", "shell", '{"cmd":["ls"]}')
    assert call1["id"].startswith("fc_") and call1["id"] != call2["id"]
    assert [e["arguments"] for e in events if e["type"] == "response.function_call_arguments.done"] == [
        '{"cmd":["ls"]}',
        '{"path":"a.py"}',
    ]
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"] == list(items.values())


def test_encode_foreign_thinking_and_argless_call():
    _, events = encode(
        [
            ir.MessageStart(id="msg_01", model="claude"),
            ir.BlockStart(0, "thinking", origin="anthropic"),
            ir.ThinkingDelta(0, "hmm"),
            ir.SignatureDelta(0, "anthropic-sig"),
            ir.BlockStop(0),
            ir.BlockStart(1, "redacted_thinking", data="opaque"),
            ir.BlockStop(1),
            ir.BlockStart(2, "tool_call", id="toolu_1", name="noop"),
            ir.BlockStop(2),
            ir.MessageDelta(stop_reason="tool_use", usage=ir.Usage(10, 5)),
            ir.MessageStop(),
        ]
    )
    output = events[-1]["response"]["output"]
    assert [i["type"] for i in output] == ["reasoning", "function_call"]
    assert "encrypted_content" not in output[0]
    assert output[1]["arguments"] == "{}"
    assert events[0]["response"]["id"] == "resp_01"


def test_encode_signature_only_thinking_has_no_summary_part():
    _, events = encode(
        [
            ir.MessageStart(id="r", model="m"),
            ir.BlockStart(0, "thinking", origin="responses"),
            ir.SignatureDelta(0, "enc"),
            ir.BlockStop(0),
            ir.MessageDelta(stop_reason="end_turn"),
            ir.MessageStop(),
        ]
    )
    assert not any("summary_part" in e["type"] for e in events)
    assert events[-1]["response"]["output"][0]["encrypted_content"] == "enc"


@pytest.mark.parametrize("stop, reason", [("max_tokens", "max_output_tokens"), ("refusal", "content_filter")])
def test_encode_incomplete(stop, reason):
    _, events = encode([*TEXT_IR[:5], ir.MessageDelta(stop_reason=stop), ir.MessageStop()])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": reason}


def test_encode_stream_error():
    _, events = encode(
        [
            *TEXT_IR[:3],
            ir.StreamError(ir.ErrorInfo(429, "rate_limit_error", "Slow down")),
            ir.TextDelta(0, "x"),
        ]
    )
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["message"] == "Slow down" and events[-2]["code"] == "rate_limit_exceeded"
    assert events[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "Slow down"}
    assert events[-1]["response"]["status"] == "failed"


def test_encode_finish_mid_stream_fails_once():
    encoder = StreamEncoder("gpt-5")
    for event in TEXT_IR[:3]:
        encoder.encode(event)
    tail = [json.loads(e.data) for e in SSEDecoder().feed(encoder.finish())]
    assert [e["type"] for e in tail] == ["error", "response.failed"]
    assert "ended early" in tail[0]["message"]
    assert encoder.finish() == b""
    assert encoder.encode(ir.MessageStop()) == b""


def test_encode_ping_is_an_sse_comment():
    encoder = StreamEncoder("gpt-5")
    assert encoder.encode(ir.Ping()) == b": ping\n\n"
    assert SSEDecoder().feed(b": ping\n\n") == []


def test_encode_without_message_start_still_starts():
    _, events = encode(TEXT_IR[1:])
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"


# --- round trips -----------------------------------------------------------------


@pytest.mark.parametrize("events", [TEXT_EVENTS, TOOLS_EVENTS], ids=["text", "tools"])
def test_round_trip_wire_ir_wire(events):
    first = decode_all_splits(_sse(events))
    raw, _ = encode(first)
    assert decode_all_splits(raw) == first


def test_round_trip_error():
    first = [
        ir.MessageStart(id="resp_9", model="gpt-5"),
        ir.StreamError(ir.ErrorInfo(429, "rate_limit_error", "Slow")),
    ]
    raw, _ = encode(first)
    assert decode(raw, [raw]) == first
