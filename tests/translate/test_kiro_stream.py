"""kiro_stream: Kiro's binary event stream -> IR stream events, and the pipeline around it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from quotio_core.formats import eventstream as es
from quotio_core.formats.sse import SSEDecoder
from quotio_core.formats import StreamTranslator, aggregate, ir, is_stream
from quotio_core.formats.kiro.stream import CONTEXT_WINDOW, StreamDecoder
from quotio_core.formats.usage import Usage


def ev(name: str, payload: Any) -> bytes:
    return es.event(name, json.dumps(payload).encode())


def text(*pieces: str) -> bytes:
    return b"".join(ev("assistantResponseEvent", {"content": p}) for p in pieces)


def tool(call_id: str, name: str, *pieces: Any, stop: bool = True) -> bytes:
    out = b"".join(ev("toolUseEvent", {"toolUseId": call_id, "name": name, "input": p}) for p in pieces)
    if stop:
        out += ev("toolUseEvent", {"toolUseId": call_id, "name": name, "stop": True})
    return out


def metrics(prompt: int, output: int, cached: int = 0) -> bytes:
    usage = {"uncachedInputTokens": prompt - cached, "cacheReadInputTokens": cached,
             "cacheWriteInputTokens": 0, "outputTokens": output}
    return ev("metricsEvent", {"tokenUsage": usage})


def _run(pieces: list[bytes]) -> list[ir.StreamEvent]:
    dec = StreamDecoder()
    out: list[ir.StreamEvent] = []
    for piece in pieces:
        out += dec.feed(piece)
    return out + dec.finish()


def _normal(events: list[ir.StreamEvent]) -> list[ir.StreamEvent]:
    """Events with adjacent deltas of one block merged and the random message id blanked."""
    out: list[ir.StreamEvent] = []
    for e in events:
        if isinstance(e, ir.MessageStart):
            e = ir.MessageStart("", e.model, e.usage)
        prev = out[-1] if out else None
        if isinstance(e, (ir.TextDelta, ir.ThinkingDelta, ir.ToolArgsDelta)) and type(prev) is type(e) and prev.index == e.index:
            attr = "partial_json" if isinstance(e, ir.ToolArgsDelta) else "text"
            out[-1] = type(e)(e.index, getattr(prev, attr) + getattr(e, attr))
            continue
        out.append(e)
    return out


def decode(raw: bytes) -> list[ir.StreamEvent]:
    """The IR events for `raw`, checked the same however the bytes are chunked."""
    whole = _normal(_run([raw]))
    for cut in range(1, len(raw)):
        assert _normal(_run([raw[:cut], raw[cut:]])) == whole, cut
    assert _normal(_run([raw[i : i + 1] for i in range(len(raw))])) == whole
    return whole


def test_text_answer():
    events = decode(text("Hello ", "from ", "Kiro") + metrics(12, 3))
    assert events == [
        ir.MessageStart("", ""),
        ir.BlockStart(0, "text"),
        ir.TextDelta(0, "Hello from Kiro"),
        ir.BlockStop(0),
        ir.MessageDelta("end_turn", None, Usage(12, 3, 0, 0)),
        ir.MessageStop(),
    ]


def test_thinking_tags_become_a_thinking_block_wherever_the_tags_are_cut():
    raw = text("  <thin", "king>Let me", " think</th", "inking>\n", "\nThe answer", " is 4")
    events = decode(raw + metrics(5, 9))
    assert events[1:7] == [
        ir.BlockStart(0, "thinking", origin="kiro"),
        ir.ThinkingDelta(0, "Let me think"),
        ir.BlockStop(0),
        ir.BlockStart(1, "text"),
        ir.TextDelta(1, "The answer is 4"),
        ir.BlockStop(1),
    ]


def test_thinking_tag_only_counts_at_the_start():
    events = decode(text("Use <thinking>", " tags</thinking> like this"))
    assert [e for e in events if isinstance(e, ir.TextDelta)] == [
        ir.TextDelta(0, "Use <thinking> tags</thinking> like this")
    ]
    # Text that merely looks like the start of the tag is released at the end.
    assert decode(text("<thi"))[2] == ir.TextDelta(0, "<thi")


def test_reasoning_events_with_signature():
    raw = ev("reasoningContentEvent", {"text": "hmm"}) + ev(
        "reasoningContentEvent", {"text": " ok", "signature": "sig-1"}
    ) + text("done")
    events = decode(raw)
    assert events[1:7] == [
        ir.BlockStart(0, "thinking", origin="kiro"),
        ir.ThinkingDelta(0, "hmm ok"),
        ir.SignatureDelta(0, "sig-1"),
        ir.BlockStop(0),
        ir.BlockStart(1, "text"),
        ir.TextDelta(1, "done"),
    ]


def test_tool_use_fragments_become_one_call_per_id():
    raw = (
        text("Checking.")
        + tool("tooluse_1", "get_weather", '{"ci', 'ty":"Oslo"}')
        + tool("tooluse_2", "get_time", {"tz": "UTC"})
        + tool("tooluse_1", "get_weather", '{"again":1}')  # a repeat of a closed call
        + metrics(20, 15)
    )
    events = decode(raw)
    assert events[4:12] == [
        ir.BlockStart(1, "tool_call", id="tooluse_1", name="get_weather", origin="kiro"),
        ir.ToolArgsDelta(1, '{"city":"Oslo"}'),
        ir.BlockStop(1),
        ir.BlockStart(2, "tool_call", id="tooluse_2", name="get_time", origin="kiro"),
        ir.ToolArgsDelta(2, '{"tz":"UTC"}'),
        ir.BlockStop(2),
        ir.MessageDelta("tool_use", None, Usage(20, 15, 0, 0)),
        ir.MessageStop(),
    ]


def test_call_without_stop_or_arguments_is_closed_with_an_empty_object():
    opened = ev("toolUseEvent", {"toolUseId": "tooluse_9", "name": "ping"})
    events = decode(opened + text("after"))
    assert events[1:4] == [
        ir.BlockStart(0, "tool_call", id="tooluse_9", name="ping", origin="kiro"),
        ir.ToolArgsDelta(0, "{}"),
        ir.BlockStop(0),
    ]
    assert events[-2].stop_reason == "tool_use"


def test_usage_falls_back_to_context_percentage_and_estimated_output():
    events = decode(ev("contextUsageEvent", {"contextUsagePercentage": 1.5}) + text("abcdefgh"))
    assert events[-2].usage == Usage(round(1.5 * CONTEXT_WINDOW / 100), 2, 0, 0)


def test_cached_tokens_from_metrics():
    events = decode(text("x") + metrics(100, 4, cached=60))
    assert events[-2].usage == Usage(100, 4, 60, 0)


def test_wrapped_payload_and_ignored_events():
    raw = (
        ev("assistantResponseEvent", {"assistantResponseEvent": {"content": "wrapped"}})
        + ev("followupPromptEvent", {"followupPrompt": {"content": "ignore me"}})
        + ev("meteringEvent", {"unit": "credit", "usage": 0.02})
        + ev("supplementaryWebLinksEvent", {"supplementaryWebLinks": []})
        + ev("messageStopEvent", {})
    )
    events = decode(raw)
    assert [e for e in events if isinstance(e, ir.TextDelta)] == [ir.TextDelta(0, "wrapped")]


@pytest.mark.parametrize(
    ("frame", "status", "kind", "words"),
    [
        (es.exception("ThrottlingException", b'{"message":"slow down"}'), 429, "rate_limit_error", "slow down"),
        (es.exception("ValidationException", b'{"message":"bad input"}'), 400, "invalid_request_error", "bad input"),
        (es.error("InternalServerException", "boom"), 500, "api_error", "boom"),
        (ev("assistantResponseEvent", {"_type": "com.amazon#ValidationException", "message": "Input is too long"}),
         400, "invalid_request_error", "Input is too long"),
    ],
)
def test_in_stream_errors(frame, status, kind, words):
    events = decode(text("partial ") + frame + text("never seen"))
    err = events[-1]
    assert isinstance(err, ir.StreamError)
    assert (err.error.status, err.error.kind) == (status, kind)
    assert words in err.error.message
    assert ir.TextDelta(0, "never seen") not in events


def test_corrupt_and_cut_streams_are_errors():
    good = text("Hi") + metrics(1, 1)
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    events = _run([bytes(bad)])
    assert isinstance(events[-1], ir.StreamError) and "CRC" in events[-1].error.message
    events = _run([good[:-5]])
    assert isinstance(events[-1], ir.StreamError) and "middle of a frame" in events[-1].error.message
    assert _run([b""]) == [ir.StreamError(ir.ErrorInfo(502, "api_error", "upstream stream ended before any event"))]


# --- the pipeline with a raw-bytes decoder ---------------------------------------------


STREAM = (
    text("Hello ", "there")
    + tool("tooluse_a", "get_weather", '{"city":', '"Oslo"}')
    + ev("contextUsageEvent", {"contextUsagePercentage": 0.01})
    + metrics(30, 7, cached=10)
)


def _chunks(t: StreamTranslator, raw: bytes, size: int) -> bytes:
    out = b""
    for i in range(0, len(raw), size):
        got = t(raw[i : i + size])
        assert got != b""
        out += b"".join(got) if isinstance(got, list) else got
    tail = t(b"")
    return out + (b"".join(tail) if isinstance(tail, list) else tail)


def test_stream_translator_feeds_bytes_chunk_by_chunk():
    outputs = set()
    for size in (1, 3, 17, len(STREAM)):
        t = StreamTranslator("kiro", "openai", "claude-sonnet-4-5", include_usage=True)
        body = _chunks(t, STREAM, size)
        assert t.tracker.usage == Usage(30, 7, 10, 0) and t.tracker.error is None
        d = SSEDecoder()
        chunks = [e.json() for e in d.feed(body) + d.flush() if e.data != "[DONE]"]
        content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        args = "".join(
            tc["function"].get("arguments") or ""
            for c in chunks if c["choices"]
            for tc in c["choices"][0]["delta"].get("tool_calls") or []
        )
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
        outputs.add((content, args, tuple(finish), chunks[-1]["usage"]["prompt_tokens"]))
    assert outputs == {("Hello there", '{"city":"Oslo"}', ("tool_calls",), 30)}


def test_stream_translator_records_an_in_stream_error():
    t = StreamTranslator("kiro", "anthropic", "m")
    body = _chunks(t, text("a") + es.exception("ThrottlingException", b'{"message":"later"}'), 5)
    assert b"event: error" in body
    assert t.tracker.error == "rate_limit_error: ThrottlingException: later"


def test_aggregate_folds_the_stream_or_returns_the_error():
    result = aggregate("kiro", "anthropic", "claude-sonnet-4-5", STREAM)
    assert result.status == 200 and result.error is None
    assert result.body["stop_reason"] == "tool_use"
    assert result.body["content"][0] == {"type": "text", "text": "Hello there"}
    assert result.body["content"][1]["input"] == {"city": "Oslo"}
    assert result.usage == Usage(30, 7, 10, 0)
    failed = aggregate("kiro", "openai", "m", text("x") + es.exception("ThrottlingException", b'{"message":"no"}'))
    assert failed.status == 429 and failed.body["error"]["message"].endswith("no")


def test_stream_content_types():
    assert is_stream("kiro", "application/vnd.amazon.eventstream")
    assert not is_stream("kiro", "text/event-stream")
    assert is_stream("anthropic", "text/event-stream; charset=utf-8")
    assert not is_stream("anthropic", "application/json")
