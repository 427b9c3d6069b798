"""gemini_stream: streamGenerateContent?alt=sse ↔ IR stream events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.genai import types

from quotio_core.formats.sse import SSEDecoder
from quotio_core.formats import ir
from quotio_core.formats.gemini.request import synth_call_id
from quotio_core.formats.gemini.stream import StreamDecoder, StreamEncoder
from quotio_core.formats.usage import Usage

MODEL = "gemini-2.5-pro"


def sse(*payloads: Any) -> bytes:
    """Gemini's framing: one `data:` line per event, CRLF CRLF after it."""
    return b"".join(b"data: " + json.dumps(p).encode() + b"\r\n\r\n" for p in payloads)


def chunk(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": MODEL, "responseId": "resp-1"}
    if usage:
        out["usageMetadata"] = usage
    return out


def _run(pieces: list[bytes]) -> list[ir.StreamEvent]:
    sse_dec, dec = SSEDecoder(), StreamDecoder()
    events: list[ir.StreamEvent] = []
    for piece in pieces:
        for e in sse_dec.feed(piece):
            events += dec.feed(e)
    for e in sse_dec.flush():
        events += dec.feed(e)
    return events + dec.finish()


def decode(raw: bytes) -> list[ir.StreamEvent]:
    """The IR events for ``raw``, checked identical however the bytes are chunked."""
    whole = _run([raw])
    for cut in range(len(raw) + 1):
        assert _run([raw[:cut], raw[cut:]]) == whole, f"split at byte {cut}"
    assert _run([raw[i : i + 1] for i in range(len(raw))]) == whole, "byte by byte"
    return whole


FINAL_USAGE = {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 3, "totalTokenCount": 18}


# --- decode -----------------------------------------------------------------------


def test_decode_text_stream() -> None:
    raw = sse(
        chunk([{"text": "Hel"}], usage={"promptTokenCount": 10, "cachedContentTokenCount": 4}),
        chunk([{"text": "lo "}, {"text": "world"}]),
        chunk(
            [{"text": "!"}],
            finish="STOP",
            usage={
                "promptTokenCount": 10,
                "cachedContentTokenCount": 4,
                "candidatesTokenCount": 4,
                "totalTokenCount": 14,
            },
        ),
    )
    assert decode(raw) == [
        ir.MessageStart("resp-1", MODEL, Usage(input_tokens=10, cached_tokens=4)),
        ir.BlockStart(0, "text"),
        ir.TextDelta(0, "Hel"),
        ir.TextDelta(0, "lo "),
        ir.TextDelta(0, "world"),
        ir.TextDelta(0, "!"),
        ir.BlockStop(0),
        ir.MessageDelta("end_turn", usage=Usage(input_tokens=10, output_tokens=4, cached_tokens=4)),
        ir.MessageStop(),
    ]


def test_decode_thinking_text_and_signed_tool_call() -> None:
    raw = sse(
        chunk([{"text": "Let me think", "thought": True}]),
        chunk([{"text": " more.", "thought": True, "thoughtSignature": "U0lH"}]),
        chunk([{"text": "Checking."}]),
        chunk(
            [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "RkM="}],
            finish="STOP",
            usage=FINAL_USAGE,
        ),
    )
    call_id = synth_call_id("resp-1", 0, "get_weather")
    assert decode(raw) == [
        ir.MessageStart("resp-1", MODEL),
        ir.BlockStart(0, "thinking", origin="gemini"),
        ir.ThinkingDelta(0, "Let me think"),
        ir.ThinkingDelta(0, " more."),
        ir.SignatureDelta(0, "U0lH"),
        ir.BlockStop(0),
        ir.BlockStart(1, "text"),
        ir.TextDelta(1, "Checking."),
        ir.BlockStop(1),
        ir.BlockStart(2, "tool_call", id=call_id, name="get_weather", origin="gemini"),
        ir.SignatureDelta(2, "RkM="),
        ir.ToolArgsDelta(2, '{"city":"Oslo"}'),
        ir.BlockStop(2),
        # STOP plus a functionCall is tool_use, never end_turn.
        ir.MessageDelta("tool_use", usage=Usage(input_tokens=10, output_tokens=8, reasoning_tokens=3)),
        ir.MessageStop(),
    ]


def test_decode_parallel_calls_with_and_without_ids() -> None:
    raw = sse(
        chunk(
            [
                {"functionCall": {"name": "read", "args": {"path": "a"}}},
                {"functionCall": {"name": "read", "args": {"path": "b"}, "id": "fc-7"}},
                {"functionCall": {"name": "ls"}},
            ],
            finish="STOP",
        )
    )
    first = synth_call_id("resp-1", 0, "read")
    third = synth_call_id("resp-1", 2, "ls")
    assert len({first, third, "fc-7"}) == 3
    assert decode(raw)[1:-2] == [
        ir.BlockStart(0, "tool_call", id=first, name="read", origin="gemini"),
        ir.ToolArgsDelta(0, '{"path":"a"}'),
        ir.BlockStop(0),
        ir.BlockStart(1, "tool_call", id="fc-7", name="read", origin="gemini"),
        ir.ToolArgsDelta(1, '{"path":"b"}'),
        ir.BlockStop(1),
        ir.BlockStart(2, "tool_call", id=third, name="ls", origin="gemini"),
        ir.ToolArgsDelta(2, "{}"),
        ir.BlockStop(2),
    ]


def test_decode_empty_signed_text_part_opens_no_block() -> None:
    # Gemini 3 often ends with {"text": "", "thoughtSignature": …}: no empty text block.
    raw = sse(chunk([{"text": "", "thoughtSignature": "WA=="}], finish="STOP", usage=FINAL_USAGE))
    assert decode(raw) == [
        ir.MessageStart("resp-1", MODEL, Usage(input_tokens=10)),
        ir.MessageDelta("end_turn", usage=Usage(input_tokens=10, output_tokens=8, reasoning_tokens=3)),
        ir.MessageStop(),
    ]


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("MAX_TOKENS", "max_tokens"),
        ("SAFETY", "refusal"),
        ("RECITATION", "refusal"),
        ("MALFORMED_FUNCTION_CALL", "end_turn"),
    ],
)
def test_decode_stop_reasons(finish: str, stop: str) -> None:
    events = decode(sse(chunk([{"text": "x"}]), chunk([], finish=finish)))
    assert events[-3:] == [ir.BlockStop(0), ir.MessageDelta(stop), ir.MessageStop()]  # type: ignore[arg-type]


def test_decode_prompt_blocked() -> None:
    raw = sse({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "resp-1", "modelVersion": MODEL})
    assert decode(raw) == [ir.MessageStart("resp-1", MODEL), ir.MessageDelta("refusal"), ir.MessageStop()]


def test_decode_code_assist_stream() -> None:
    wrapped = [
        {"response": chunk([{"text": "Hi"}]), "traceId": "t"},
        {"response": chunk([], finish="STOP"), "traceId": "t"},
    ]
    # Code Assist frames with LF only.
    raw = b"".join(b"data: " + json.dumps(w).encode() + b"\n\n" for w in wrapped)
    assert decode(raw) == [
        ir.MessageStart("resp-1", MODEL),
        ir.BlockStart(0, "text"),
        ir.TextDelta(0, "Hi"),
        ir.BlockStop(0),
        ir.MessageDelta("end_turn"),
        ir.MessageStop(),
    ]


def test_decode_error_event_mid_stream() -> None:
    error = {
        "error": {
            "code": 429,
            "message": "Resource exhausted",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
        }
    }
    raw = sse(chunk([{"text": "par"}]), error, chunk([{"text": "ignored"}], finish="STOP"))
    assert decode(raw) == [
        ir.MessageStart("resp-1", MODEL),
        ir.BlockStart(0, "text"),
        ir.TextDelta(0, "par"),
        ir.StreamError(ir.ErrorInfo(429, "rate_limit_error", "Resource exhausted", 7.0)),
    ]


def test_decode_stream_cut_before_finish() -> None:
    events = decode(sse(chunk([{"text": "half"}])))
    assert events[:3] == [ir.MessageStart("resp-1", MODEL), ir.BlockStart(0, "text"), ir.TextDelta(0, "half")]
    (error,) = events[3:]
    assert isinstance(error, ir.StreamError)
    assert (error.error.status, error.error.kind) == (502, "api_error")
    assert "ended early" in error.error.message


def test_decode_empty_stream_is_an_error() -> None:
    (error,) = decode(b"")
    assert isinstance(error, ir.StreamError) and error.error.status == 502


def test_decode_ignores_odd_events() -> None:
    raw = (
        b": keepalive\r\n\r\n"
        + b"data: not json\r\n\r\n"
        + b"data: [DONE]\r\n\r\n"
        + sse(
            {"unknown": 1, "responseId": "resp-1", "modelVersion": MODEL},
            chunk(["junk", {"executableCode": {}}, {"text": "ok"}], finish="STOP"),
        )
    )
    assert decode(raw) == [
        ir.MessageStart("resp-1", MODEL),
        ir.BlockStart(0, "text"),
        ir.TextDelta(0, "ok"),
        ir.BlockStop(0),
        ir.MessageDelta("end_turn"),
        ir.MessageStop(),
    ]


def test_decode_multibyte_text() -> None:
    raw = sse(chunk([{"text": "Grüße 🌍 日本"}], finish="STOP"))
    assert ir.TextDelta(0, "Grüße 🌍 日本") in decode(raw)


# --- encode -----------------------------------------------------------------------


def encode(events: list[ir.StreamEvent], model: str = MODEL) -> tuple[bytes, list[dict[str, Any]]]:
    """(bytes, payloads); every payload that is not an error validates as a GenerateContentResponse."""
    enc = StreamEncoder(model)
    out = b"".join(enc.encode(e) for e in events) + enc.finish()
    assert enc.finish() == b""  # never twice
    payloads = []
    for e in SSEDecoder().feed(out):
        payload = json.loads(e.data)
        if "error" not in payload:
            types.GenerateContentResponse.model_validate(payload)
        payloads.append(payload)
    return out, payloads


FOREIGN_STREAM: list[ir.StreamEvent] = [
    ir.MessageStart("msg_1", "claude-sonnet-4", Usage(input_tokens=50, cached_tokens=20)),
    ir.Ping(),
    ir.BlockStart(0, "thinking", origin="anthropic"),
    ir.ThinkingDelta(0, "hmm"),
    ir.SignatureDelta(0, "EqQB"),
    ir.BlockStop(0),
    ir.BlockStart(1, "text"),
    ir.TextDelta(1, "Hi"),
    ir.TextDelta(1, ""),
    ir.BlockStop(1),
    ir.BlockStart(2, "tool_call", id="toolu_1", name="get_weather", origin="anthropic"),
    ir.ToolArgsDelta(2, ""),
    ir.ToolArgsDelta(2, '{"city":'),
    ir.ToolArgsDelta(2, '"Oslo"}'),
    ir.BlockStop(2),
    ir.MessageDelta("tool_use", usage=Usage(input_tokens=50, output_tokens=30, cached_tokens=20, reasoning_tokens=10)),
    ir.MessageStop(),
]


def test_encode_foreign_stream() -> None:
    out, payloads = encode(FOREIGN_STREAM)
    assert out.count(b"\r\n\r\n") == len(payloads) == 4 and b"\n\n" not in out
    meta = {"modelVersion": MODEL, "responseId": "msg_1"}
    # Every content chunk reports the prompt size, as the real API does.
    prompt_usage = {
        "promptTokenCount": 50,
        "candidatesTokenCount": 0,
        "thoughtsTokenCount": 0,
        "cachedContentTokenCount": 20,
        "totalTokenCount": 50,
    }

    def part_chunk(part: dict[str, Any]) -> dict[str, Any]:
        content = {"role": "model", "parts": [part]}
        return {"candidates": [{"content": content, "index": 0}], "usageMetadata": prompt_usage, **meta}

    assert payloads == [
        part_chunk({"text": "hmm", "thought": True}),  # the Anthropic signature is not sent
        part_chunk({"text": "Hi"}),
        part_chunk({"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}, "id": "toolu_1"}}),
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {
                "promptTokenCount": 50,
                "candidatesTokenCount": 20,
                "thoughtsTokenCount": 10,
                "cachedContentTokenCount": 20,
                "totalTokenCount": 80,
            },
            **meta,
        },
    ]


def test_encode_holds_tool_args_until_block_stop() -> None:
    enc = StreamEncoder(MODEL)
    assert enc.encode(ir.MessageStart("r", "m")) == b""
    assert enc.encode(ir.BlockStart(0, "tool_call", id="c1", name="f")) == b""
    assert enc.encode(ir.ToolArgsDelta(0, '{"a":')) == b""
    assert enc.encode(ir.ToolArgsDelta(0, "1}")) == b""
    stopped = enc.encode(ir.BlockStop(0))
    assert stopped.startswith(b"data: ") and stopped.endswith(b"\r\n\r\n")
    assert json.loads(stopped[6:])["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "c1"}}
    ]


@pytest.mark.parametrize(
    ("pieces", "args"),
    [([], {}), ([""], {}), (['{"path": "/tmp/x", "depth": 3'], {"path": "/tmp/x", "depth": 3}), (["nonsense"], {})],
)
def test_encode_tool_args_edge_cases(pieces: list[str], args: dict[str, Any]) -> None:
    events: list[ir.StreamEvent] = [ir.MessageStart("r", "m"), ir.BlockStart(0, "tool_call", id="c", name="f")]
    events += [ir.ToolArgsDelta(0, p) for p in pieces]
    events += [ir.BlockStop(0), ir.MessageDelta("tool_use"), ir.MessageStop()]
    _, payloads = encode(events)
    assert payloads[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] == args


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "STOP"),
        ("stop_sequence", "STOP"),
        ("tool_use", "STOP"),
        ("max_tokens", "MAX_TOKENS"),
        ("refusal", "SAFETY"),
    ],
)
def test_encode_finish_reasons(stop: ir.StopReason, finish: str) -> None:
    _, payloads = encode([ir.MessageStart("r", "m"), ir.MessageDelta(stop), ir.MessageStop()])
    assert payloads[-1]["candidates"][0]["finishReason"] == finish


def test_encode_gemini_signatures_kept() -> None:
    events: list[ir.StreamEvent] = [
        ir.MessageStart("r", "m"),
        ir.BlockStart(0, "thinking", origin="gemini"),
        ir.ThinkingDelta(0, "plan"),
        ir.SignatureDelta(0, "U0lH"),
        ir.BlockStop(0),
        ir.BlockStart(1, "tool_call", id="c", name="f", origin="gemini"),
        ir.SignatureDelta(1, "RkM="),
        ir.ToolArgsDelta(1, "{}"),
        ir.BlockStop(1),
        ir.MessageDelta("tool_use"),
        ir.MessageStop(),
    ]
    _, payloads = encode(events)
    parts = [p["candidates"][0]["content"]["parts"][0] for p in payloads[:-1]]
    assert parts == [
        {"text": "plan", "thought": True},
        {"text": "", "thought": True, "thoughtSignature": "U0lH"},
        {"functionCall": {"name": "f", "args": {}, "id": "c"}, "thoughtSignature": "RkM="},
    ]


def test_encode_stream_error() -> None:
    err = ir.ErrorInfo(529, "overloaded_error", "Overloaded", retry_after=3)
    out, payloads = encode(
        [ir.MessageStart("r", "m"), ir.BlockStart(0, "text"), ir.TextDelta(0, "a"), ir.StreamError(err)]
    )
    assert payloads[-1] == {"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}
    assert out.endswith(b"\r\n\r\n")


def test_encode_finish_on_cut_stream_reports_error_once() -> None:
    enc = StreamEncoder(MODEL)
    enc.encode(ir.MessageStart("r", "m"))
    enc.encode(ir.BlockStart(0, "text"))
    enc.encode(ir.TextDelta(0, "a"))
    tail = enc.finish()
    assert json.loads(tail[6:])["error"]["code"] == 502
    assert enc.finish() == b""
    assert enc.encode(ir.TextDelta(0, "late")) == b""


def test_encode_after_complete_message_finish_is_empty() -> None:
    enc = StreamEncoder(MODEL)
    for e in [ir.MessageStart("r", "m"), ir.MessageDelta("end_turn"), ir.MessageStop()]:
        enc.encode(e)
    assert enc.finish() == b""


def test_encode_uses_upstream_model_when_none_given() -> None:
    _, payloads = encode([ir.MessageStart("r", "gemini-x"), ir.MessageDelta("end_turn"), ir.MessageStop()], model="")
    assert payloads[0]["modelVersion"] == "gemini-x"


# --- round trip ---------------------------------------------------------------------


def test_round_trip_own_format() -> None:
    raw = sse(
        chunk([{"text": "Let me think", "thought": True, "thoughtSignature": "U0lH"}], usage={"promptTokenCount": 10}),
        chunk([{"text": "Answer: "}, {"text": "42"}]),
        chunk(
            [
                {"functionCall": {"name": "calc", "args": {"x": [1, 2], "y": {"z": None}}}, "thoughtSignature": "RkM="},
                {"functionCall": {"name": "calc", "args": {}}},
            ],
            finish="STOP",
            usage=FINAL_USAGE,
        ),
    )
    first = decode(raw)
    enc = StreamEncoder(MODEL)
    again = b"".join(enc.encode(e) for e in first) + enc.finish()
    assert decode(again) == first
