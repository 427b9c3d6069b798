import json

import pytest

from quotio_core.formats.sse import SSEDecoder, ServerSentEvent
from quotio_core.formats import stream_usage, usage_from_body
from quotio_core.formats.usage import StreamUsageTracker, Usage


def sse(data: object, event: str | None = None) -> ServerSentEvent:
    return ServerSentEvent(event, data if isinstance(data, str) else json.dumps(data))


def track(fmt: str, events: list[ServerSentEvent]) -> StreamUsageTracker:
    tracker = stream_usage(fmt)
    for event in events:
        tracker.observe(event)
    return tracker


# -- Usage ---------------------------------------------------------------------


def test_merge_adds_and_update_overwrites() -> None:
    a, b = Usage(10, 5, 2, 1), Usage(1, 2, 3, 4)
    assert a.merge(b) == Usage(11, 7, 5, 5)
    assert a == Usage(10, 5, 2, 1)  # merge returns a new object
    a.update(b)
    assert a == b
    assert Usage(3, 4).total_tokens == 7


# -- non-stream bodies ---------------------------------------------------------

ANTHROPIC_BODY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 25,
        "output_tokens": 87,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "service_tier": "standard",
    },
}

OPENAI_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1710000000,
    "model": "gpt-5",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 80,
        "total_tokens": 200,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 50},
    },
}

GEMINI_USAGE = {
    "promptTokenCount": 300,
    "cachedContentTokenCount": 200,
    "candidatesTokenCount": 40,
    "thoughtsTokenCount": 60,
    "totalTokenCount": 400,
}

GEMINI_BODY = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP", "index": 0}
    ],
    "usageMetadata": GEMINI_USAGE,
    "modelVersion": "gemini-2.5-pro",
    "responseId": "r1",
}

RESPONSES_BODY = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "error": None,
    "output": [],
    "usage": {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 64},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 32},
        "total_tokens": 150,
    },
}


@pytest.mark.parametrize(
    ("fmt", "body", "expected"),
    [
        ("anthropic", ANTHROPIC_BODY, Usage(2125, 87, 2000, 0)),
        ("openai", OPENAI_BODY, Usage(120, 80, 64, 50)),
        ("gemini", GEMINI_BODY, Usage(300, 100, 200, 60)),
        ("gemini", {"response": GEMINI_BODY, "traceId": "t"}, Usage(300, 100, 200, 60)),
        ("gemini", [{"candidates": []}, GEMINI_BODY, {"candidates": []}], Usage(300, 100, 200, 60)),
        ("responses", RESPONSES_BODY, Usage(100, 50, 64, 32)),
        # Optional detail objects are often null or absent.
        (
            "openai",
            {"usage": {"prompt_tokens": 5, "completion_tokens": 7, "prompt_tokens_details": None}},
            Usage(5, 7, 0, 0),
        ),
        ("gemini", {"usageMetadata": {"promptTokenCount": 8}}, Usage(8, 0, 0, 0)),
        ("anthropic", {"usage": {"input_tokens": 3, "output_tokens": "junk"}}, Usage(3, 0, 0, 0)),
    ],
)
def test_usage_from_body(fmt: str, body: dict, expected: Usage) -> None:
    assert usage_from_body(fmt, body) == expected


@pytest.mark.parametrize("fmt", ["anthropic", "openai", "gemini", "responses"])
@pytest.mark.parametrize("body", [{}, {"usage": None, "usageMetadata": None}, [], "text", None])
def test_usage_from_body_without_usage(fmt: str, body: object) -> None:
    assert usage_from_body(fmt, body) is None


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="has no usage"):
        usage_from_body("kiro", {})
    with pytest.raises(ValueError, match="has no usage"):
        stream_usage("kiro")


# -- streams -------------------------------------------------------------------

ANTHROPIC_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1,"cache_creation_input_tokens":10,"cache_read_input_tokens":500}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":87}}

event: message_stop
data: {"type":"message_stop"}

"""


def decode_all(stream: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(stream) + decoder.flush()


def test_anthropic_stream() -> None:
    tracker = track("anthropic", decode_all(ANTHROPIC_STREAM))
    assert tracker.has_usage
    assert tracker.usage == Usage(input_tokens=535, output_tokens=87, cached_tokens=500)
    assert tracker.error is None


def test_anthropic_message_delta_may_carry_input_fields() -> None:
    tracker = track(
        "anthropic",
        [
            sse({"type": "message_start", "message": {"usage": {"input_tokens": 25, "output_tokens": 1,
                                                                 "cache_read_input_tokens": 100}}}),
            # Cumulative: the new input count replaces the old one, null fields keep theirs.
            sse({"type": "message_delta", "usage": {"output_tokens": 40, "input_tokens": 30,
                                                     "cache_read_input_tokens": None}}),
            sse({"type": "message_delta", "usage": {"output_tokens": 90}}),
        ],
    )
    assert tracker.usage == Usage(130, 90, 100, 0)


def test_anthropic_stream_error() -> None:
    tracker = track(
        "anthropic",
        decode_all(ANTHROPIC_STREAM.split(b"event: content_block_delta")[0])
        + [
            sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"),
            sse({"type": "error", "error": {"type": "api_error", "message": "second"}}, "error"),
        ],
    )
    assert tracker.error == "overloaded_error: Overloaded"
    assert tracker.usage.input_tokens == 535


def openai_chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> ServerSentEvent:
    return sse(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1710000000,
            "model": "gpt-5",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": usage,
        }
    )


OPENAI_STREAM = [
    openai_chunk({"role": "assistant", "content": ""}),
    openai_chunk({"content": "Hel"}),
    openai_chunk({"content": "lo"}),
    openai_chunk({}, "stop"),
    sse(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {
                "prompt_tokens": 120,
                "completion_tokens": 80,
                "total_tokens": 200,
                "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 50},
            },
        }
    ),
    sse("[DONE]"),
]


def test_openai_stream() -> None:
    tracker = track("openai", OPENAI_STREAM)
    assert tracker.usage == Usage(120, 80, 64, 50)
    assert tracker.error is None


def test_openai_stream_without_include_usage() -> None:
    tracker = track("openai", OPENAI_STREAM[:4] + OPENAI_STREAM[-1:])
    assert not tracker.has_usage
    assert tracker.usage == Usage()


def test_openai_stream_error() -> None:
    tracker = track(
        "openai",
        OPENAI_STREAM[:2]
        + [sse({"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded", "code": None}})],
    )
    assert tracker.error == "rate_limit_exceeded: Rate limit reached"


def gemini_chunk(text: str, usage: dict, finish: str | None = None) -> dict:
    candidate: dict = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-pro", "responseId": "r"}


GEMINI_STREAM = [
    gemini_chunk("Hel", {"promptTokenCount": 300, "totalTokenCount": 300}),
    gemini_chunk("lo", {"promptTokenCount": 300, "candidatesTokenCount": 2, "totalTokenCount": 302}),
    gemini_chunk("!", GEMINI_USAGE, "STOP"),
]


def test_gemini_stream_last_usage_wins() -> None:
    wire = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in GEMINI_STREAM)
    tracker = track("gemini", decode_all(wire))
    assert tracker.usage == Usage(300, 100, 200, 60)


def test_code_assist_stream_is_unwrapped() -> None:
    tracker = track("gemini", [sse({"response": chunk, "traceId": "t"}) for chunk in GEMINI_STREAM])
    assert tracker.usage == Usage(300, 100, 200, 60)


def test_gemini_stream_bare_error() -> None:
    error = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
    tracker = track("gemini", [sse(GEMINI_STREAM[0]), sse(error)])
    assert tracker.error == "RESOURCE_EXHAUSTED: Quota exceeded"
    assert tracker.usage == Usage(300, 0, 0, 0)


RESPONSE_OBJECT = {"id": "resp_1", "object": "response", "status": "in_progress", "output": [], "usage": None}


def responses_event(kind: str, seq: int, **fields: object) -> ServerSentEvent:
    return sse({"type": kind, "sequence_number": seq, **fields}, kind)


RESPONSES_STREAM = [
    responses_event("response.created", 0, response=RESPONSE_OBJECT),
    responses_event("response.in_progress", 1, response=RESPONSE_OBJECT),
    responses_event("response.output_text.delta", 2, item_id="msg_1", output_index=0, content_index=0, delta="Hi"),
    responses_event("response.completed", 3, response=RESPONSES_BODY),
]


def test_responses_stream() -> None:
    tracker = track("responses", RESPONSES_STREAM)
    assert tracker.usage == Usage(100, 50, 64, 32)
    assert tracker.error is None


def test_responses_stream_ignores_usage_before_completion() -> None:
    early = {**RESPONSE_OBJECT, "usage": RESPONSES_BODY["usage"]}
    tracker = track("responses", [responses_event("response.in_progress", 1, response=early)])
    assert not tracker.has_usage


def test_responses_failed() -> None:
    failed = {**RESPONSES_BODY, "status": "failed", "error": {"code": "server_error", "message": "boom"}}
    tracker = track("responses", RESPONSES_STREAM[:3] + [responses_event("response.failed", 3, response=failed)])
    assert tracker.error == "server_error: boom"
    assert tracker.usage == Usage(100, 50, 64, 32)


def test_responses_bare_error_event() -> None:
    tracker = track(
        "responses",
        [responses_event("error", 1, code="rate_limit_exceeded", message="slow down", param=None)],
    )
    assert tracker.error == "rate_limit_exceeded: slow down"


@pytest.mark.parametrize("fmt", ["anthropic", "openai", "gemini", "responses"])
@pytest.mark.parametrize("data", ["[DONE]", "", "not json", "42", "[1, 2]", "null", '{"usage": 5}'])
def test_odd_payloads_are_ignored(fmt: str, data: str) -> None:
    tracker = track(fmt, [sse(data)])
    assert tracker.usage == Usage()
    assert tracker.error is None


def test_usage_property_returns_a_copy() -> None:
    tracker = track("openai", OPENAI_STREAM)
    tracker.usage.input_tokens = 0
    assert tracker.usage.input_tokens == 120


# -- completion: a client leaving after the last event had its whole answer ---------


@pytest.mark.parametrize(
    ("fmt", "events"),
    [
        ("anthropic", decode_all(ANTHROPIC_STREAM)),
        ("openai", OPENAI_STREAM),
        ("gemini", [sse(c) for c in GEMINI_STREAM]),
        ("responses", RESPONSES_STREAM),
    ],
)
def test_a_stream_is_complete_only_after_its_last_event(fmt, events) -> None:
    # OpenAI's answer is whole at the chunk with a finish_reason: usage and [DONE] may follow.
    last = -3 if fmt == "openai" else -1
    assert not track(fmt, events[:last]).complete
    assert track(fmt, events).complete


def test_openai_stream_is_complete_at_its_finish_reason_or_done() -> None:
    assert not track("openai", OPENAI_STREAM[:3]).complete
    assert track("openai", OPENAI_STREAM[:4]).complete
    assert track("openai", [sse("[DONE]")]).complete
