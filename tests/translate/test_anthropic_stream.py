import json

import anthropic
import pydantic
import pytest

try:  # newer anthropic SDKs run on the httpx2 fork and refuse httpx objects
    import httpx2 as sdk_httpx
except ImportError:  # pragma: no cover
    import httpx as sdk_httpx

from quotio_core.formats.sse import ServerSentEvent, SSEDecoder
from quotio_core.formats.anthropic.stream import StreamDecoder, StreamEncoder
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
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)

EVENT_ADAPTER = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)


def sse(payload: dict, event: str | None = None) -> bytes:
    name = event or payload["type"]
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


def message_start(usage: dict | None = None, msg_id: str = "msg_1", model: str = "m") -> bytes:
    usage = usage or {
        "input_tokens": 25,
        "output_tokens": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    message = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return sse({"type": "message_start", "message": message})


def block_start(index: int, block: dict) -> bytes:
    return sse({"type": "content_block_start", "index": index, "content_block": block})


def delta(index: int, d: dict) -> bytes:
    return sse({"type": "content_block_delta", "index": index, "delta": d})


def block_stop(index: int) -> bytes:
    return sse({"type": "content_block_stop", "index": index})


def message_delta(stop_reason: str | None, usage: dict, stop_sequence: str | None = None) -> bytes:
    return sse(
        {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence}, "usage": usage}
    )


MESSAGE_STOP = sse({"type": "message_stop"})
PING = sse({"type": "ping"})

# The documented stream from wire-formats.md §1, tool input completed.
GOLDEN = b"".join(
    [
        message_start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        delta(0, {"type": "thinking_delta", "thinking": "Let me"}),
        delta(0, {"type": "signature_delta", "signature": "EqQB"}),
        block_stop(0),
        block_start(1, {"type": "text", "text": ""}),
        delta(1, {"type": "text_delta", "text": "Hi"}),
        block_stop(1),
        block_start(2, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}),
        delta(2, {"type": "input_json_delta", "partial_json": ""}),
        delta(2, {"type": "input_json_delta", "partial_json": '{"city":'}),
        delta(2, {"type": "input_json_delta", "partial_json": ' "Oslo"}'}),
        block_stop(2),
        message_delta("tool_use", {"output_tokens": 87}),
        MESSAGE_STOP,
    ]
)

GOLDEN_IR = [
    MessageStart("msg_1", "m", Usage(25, 1, 0, 0)),
    BlockStart(0, "thinking", origin="anthropic"),
    ThinkingDelta(0, "Let me"),
    SignatureDelta(0, "EqQB"),
    BlockStop(0),
    BlockStart(1, "text"),
    TextDelta(1, "Hi"),
    BlockStop(1),
    BlockStart(2, "tool_call", id="toolu_1", name="get_weather"),
    ToolArgsDelta(2, '{"city":'),
    ToolArgsDelta(2, ' "Oslo"}'),
    BlockStop(2),
    MessageDelta("tool_use", None, Usage(25, 87, 0, 0)),
    MessageStop(),
]


def decode_chunks(chunks: list[bytes], finish: bool = True) -> list:
    sse_decoder = SSEDecoder()
    decoder = StreamDecoder()
    out: list = []
    for chunk in chunks:
        for event in sse_decoder.feed(chunk):
            out.extend(decoder.feed(event))
    for event in sse_decoder.flush():
        out.extend(decoder.feed(event))
    if finish:
        out.extend(decoder.finish())
    return out


def decode_all_splits(stream: bytes, finish: bool = True) -> list:
    """The IR of `stream`, asserting that no chunking of it changes the result."""
    whole = decode_chunks([stream], finish)
    for cut in range(1, len(stream)):
        assert decode_chunks([stream[:cut], stream[cut:]], finish) == whole, f"split at byte {cut}"
    assert decode_chunks([stream[i : i + 1] for i in range(len(stream))], finish) == whole
    return whole


# --- decoder -------------------------------------------------------------------


def test_decode_documented_stream():
    assert decode_all_splits(GOLDEN) == GOLDEN_IR


def test_decode_usage_includes_cache_and_merges_with_message_start():
    stream = b"".join(
        [
            message_start(
                {
                    "input_tokens": 10,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 5,
                    "cache_read_input_tokens": 100,
                }
            ),
            block_start(0, {"type": "text", "text": ""}),
            delta(0, {"type": "text_delta", "text": "ok"}),
            block_stop(0),
            # message_delta may null the input counts: message_start's stay.
            message_delta("end_turn", {"output_tokens": 12, "input_tokens": None, "cache_read_input_tokens": None}),
            MESSAGE_STOP,
        ]
    )
    events = decode_all_splits(stream)
    assert events[0] == MessageStart("msg_1", "m", Usage(115, 1, 100, 0))
    assert events[-2] == MessageDelta("end_turn", None, Usage(115, 12, 100, 0))


def test_decode_message_delta_with_late_input_counts():
    stream = b"".join(
        [
            message_start({"input_tokens": 0, "output_tokens": 0}),
            message_delta("max_tokens", {"output_tokens": 4, "input_tokens": 30, "cache_read_input_tokens": 20}),
            MESSAGE_STOP,
        ]
    )
    events = decode_all_splits(stream)
    assert events == [
        MessageStart("msg_1", "m", Usage(0, 0, 0, 0)),
        MessageDelta("max_tokens", None, Usage(50, 4, 20, 0)),
        MessageStop(),
    ]


def test_decode_stop_sequence():
    stream = message_start() + message_delta("stop_sequence", {"output_tokens": 3}, "END") + MESSAGE_STOP
    events = decode_all_splits(stream)
    assert events[1] == MessageDelta("stop_sequence", "END", Usage(25, 3, 0, 0))


def test_decode_reindexes_and_skips_server_tool_blocks():
    stream = b"".join(
        [
            message_start(),
            block_start(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
            delta(0, {"type": "input_json_delta", "partial_json": '{"query":"x"}'}),
            block_stop(0),
            block_start(1, {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
            block_stop(1),
            block_start(2, {"type": "text", "text": ""}),
            delta(2, {"type": "text_delta", "text": "Found"}),
            delta(2, {"type": "citations_delta", "citation": {"type": "web_search_result_location"}}),
            block_stop(2),
            block_start(5, {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {}}),
            block_stop(5),
            message_delta("tool_use", {"output_tokens": 9}),
            MESSAGE_STOP,
        ]
    )
    events = decode_all_splits(stream)
    assert events[1:-2] == [
        BlockStart(0, "text"),
        TextDelta(0, "Found"),
        BlockStop(0),
        BlockStart(1, "tool_call", id="toolu_9", name="f"),
        BlockStop(1),
    ]


def test_decode_redacted_thinking_and_ping():
    stream = b"".join(
        [
            PING,
            message_start(),
            block_start(0, {"type": "redacted_thinking", "data": "EmwKAhgB"}),
            PING,
            block_stop(0),
            message_delta("end_turn", {"output_tokens": 2}),
            MESSAGE_STOP,
        ]
    )
    events = decode_all_splits(stream)
    assert events == [
        Ping(),
        MessageStart("msg_1", "m", Usage(25, 1, 0, 0)),
        BlockStart(0, "redacted_thinking", data="EmwKAhgB", origin="anthropic"),
        Ping(),
        BlockStop(0),
        MessageDelta("end_turn", None, Usage(25, 2, 0, 0)),
        MessageStop(),
    ]


def test_decode_tool_input_sent_whole_in_block_start():
    # Some Anthropic-compatible upstreams put the whole input in content_block_start;
    # dropping it is the "tool_use.input arrives as {}" bug.
    stream = b"".join(
        [
            message_start(),
            block_start(0, {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {"a": 1}}),
            block_stop(0),
            message_delta("tool_use", {"output_tokens": 5}),
            MESSAGE_STOP,
        ]
    )
    events = decode_all_splits(stream)
    assert events[1:4] == [
        BlockStart(0, "tool_call", id="toolu_2", name="f"),
        ToolArgsDelta(0, '{"a": 1}'),
        BlockStop(0),
    ]


def test_decode_mid_stream_error_ends_stream():
    stream = b"".join(
        [
            message_start(),
            block_start(0, {"type": "text", "text": ""}),
            delta(0, {"type": "text_delta", "text": "par"}),
            sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            delta(0, {"type": "text_delta", "text": "ignored"}),
        ]
    )
    events = decode_all_splits(stream)
    assert events[-1] == StreamError(ErrorInfo(529, "overloaded_error", "Overloaded"))
    assert sum(isinstance(e, StreamError) for e in events) == 1
    assert TextDelta(0, "ignored") not in events


def test_decode_truncated_stream_finishes_with_502():
    stream = (
        message_start() + block_start(0, {"type": "text", "text": ""}) + delta(0, {"type": "text_delta", "text": "x"})
    )
    events = decode_all_splits(stream)
    assert events[-1] == StreamError(ErrorInfo(502, "api_error", "upstream stream ended early"))


def test_decode_finish_after_complete_stream_adds_nothing():
    # Anything after message_stop (here a ping and a stray delta) is ignored too.
    stream = GOLDEN + PING + delta(1, {"type": "text_delta", "text": "late"})
    assert decode_all_splits(stream) == GOLDEN_IR


def test_decode_empty_stream_is_an_error():
    assert decode_all_splits(b"") == [StreamError(ErrorInfo(502, "api_error", "upstream stream ended early"))]


def test_decode_ignores_unknown_and_malformed_events():
    noise = b"".join(
        [
            sse({"type": "mystery"}),
            b"event: content_block_delta\ndata: not json\n\n",
            b"data: [DONE]\n\n",
            b": keep-alive comment\n\n",
            sse({"type": "content_block_delta", "index": 7, "delta": {"type": "text_delta", "text": "orphan"}}),
            sse({"type": "content_block_start", "index": "x", "content_block": {"type": "text", "text": ""}}),
            sse({"type": "content_block_start", "index": 0, "content_block": "not a block"}),
            sse({"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "x": 1}}),
        ]
    )
    # Noise is spliced in after message_start and after the first block opens.
    first = message_start()
    opened = block_start(0, {"type": "thinking", "thinking": "", "signature": ""})
    rest = GOLDEN[len(first) + len(opened) :]
    assert GOLDEN.startswith(first + opened)
    assert decode_all_splits(first + noise + opened + noise + rest) == GOLDEN_IR


def test_decode_fills_missing_message_delta_and_block_stop():
    stream = b"".join(
        [
            message_start(),
            block_start(0, {"type": "text", "text": ""}),
            delta(0, {"type": "text_delta", "text": "a"}),
            MESSAGE_STOP,
        ]
    )
    events = decode_all_splits(stream)
    assert events[2:] == [TextDelta(0, "a"), BlockStop(0), MessageDelta("end_turn"), MessageStop()]


# --- encoder -------------------------------------------------------------------


def parse_stream(data: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return decoder.feed(data) + decoder.flush()


def validated(data: bytes) -> list[dict]:
    """Every event of `data` as a dict, each checked against the SDK's stream event types."""
    payloads = []
    for event in parse_stream(data):
        payload = json.loads(event.data)
        assert event.event == payload["type"]
        if payload["type"] == "error":
            anthropic.types.ErrorResponse.model_validate(payload)
        else:
            EVENT_ADAPTER.validate_python(payload)
        payloads.append(payload)
    return payloads


def encode_all(events: list, model: str = "claude-x") -> bytes:
    encoder = StreamEncoder(model)
    return b"".join(encoder.encode(e) for e in events) + encoder.finish()


def sdk_final_message(data: bytes) -> anthropic.types.Message:
    """Runs `data` through the real SDK stream accumulator, as a client would see it."""

    def handler(request: sdk_httpx.Request) -> sdk_httpx.Response:
        return sdk_httpx.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    client = anthropic.Anthropic(
        api_key="test", http_client=sdk_httpx.Client(transport=sdk_httpx.MockTransport(handler)), max_retries=0
    )
    with client.messages.stream(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s:
        return s.get_final_message()


def test_encode_golden_ir_is_valid_for_the_sdk():
    data = encode_all(GOLDEN_IR)
    payloads = validated(data)
    assert [p["type"] for p in payloads] == [
        "message_start",
        *["content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"],
        *["content_block_start", "content_block_delta", "content_block_stop"],
        *["content_block_start", "content_block_delta", "content_block_delta", "content_block_stop"],
        "message_delta",
        "message_stop",
    ]
    message = sdk_final_message(data)
    assert message.id == "msg_1"
    assert message.model == "claude-x"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.content[0].thinking == "Let me" and message.content[0].signature == "EqQB"
    assert message.content[2].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 25 and message.usage.output_tokens == 87


def test_encode_exact_bytes_for_simple_text():
    events = [
        MessageStart("msg_abc", "upstream-model", Usage(10, 0, 0, 0)),
        BlockStart(0, "text"),
        TextDelta(0, "Hi"),
        BlockStop(0),
        MessageDelta("end_turn", None, Usage(10, 2, 0, 0)),
        MessageStop(),
    ]
    usage0 = '{"input_tokens":10,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}'
    usage1 = '{"input_tokens":10,"output_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}'
    expected = (
        "event: message_start\n"
        'data: {"type":"message_start","message":{"id":"msg_abc","type":"message","role":"assistant",'
        '"model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":' + usage0 + "}}\n\n"
        "event: content_block_start\n"
        'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
        "event: content_block_delta\n"
        'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        "event: content_block_stop\n"
        'data: {"type":"content_block_stop","index":0}\n\n'
        "event: message_delta\n"
        'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":'
        + usage1
        + "}\n\n"
        "event: message_stop\n"
        'data: {"type":"message_stop"}\n\n'
    ).encode()
    assert encode_all(events) == expected


def test_encode_skips_empty_text_blocks_and_keeps_indexes_contiguous():
    events = [
        MessageStart("chatcmpl-1", "gpt", None),
        BlockStart(0, "text"),
        TextDelta(0, ""),
        BlockStop(0),
        BlockStart(1, "tool_call", id="call_1", name="f"),
        ToolArgsDelta(1, '{"x":'),
        ToolArgsDelta(1, "1}"),
        BlockStop(1),
        BlockStart(2, "text"),
        TextDelta(2, "after"),
        BlockStop(2),
        MessageDelta("end_turn", None, Usage(3, 4, 0, 0)),
        MessageStop(),
    ]
    data = encode_all(events)
    payloads = validated(data)
    starts = [p for p in payloads if p["type"] == "content_block_start"]
    assert [(p["index"], p["content_block"]["type"]) for p in starts] == [(0, "tool_use"), (1, "text")]
    assert starts[0]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}
    message = sdk_final_message(data)
    assert message.id.startswith("msg_")
    assert message.content[0].input == {"x": 1}
    # The IR said end_turn, but the client must see tool_use to run the tool.
    assert message.stop_reason == "tool_use"


def test_encode_drops_foreign_signature_but_keeps_thinking_text():
    events = [
        MessageStart("x", "gemini", None),
        BlockStart(0, "thinking", origin="gemini"),
        ThinkingDelta(0, "pondering"),
        SignatureDelta(0, "gemini-sig"),
        BlockStop(0),
        BlockStart(1, "redacted_thinking", data="ENCRYPTED_BLOB", origin="responses"),
        BlockStop(1),
        BlockStart(2, "thinking", origin="anthropic"),
        ThinkingDelta(2, "mine"),
        SignatureDelta(2, "sig"),
        BlockStop(2),
        MessageDelta("end_turn", None, Usage(1, 2, 0, 0)),
        MessageStop(),
    ]
    data = encode_all(events)
    validated(data)
    assert b"gemini-sig" not in data and b"ENCRYPTED_BLOB" not in data
    message = sdk_final_message(data)
    assert [(b.type, b.thinking, b.signature) for b in message.content] == [
        ("thinking", "pondering", ""),
        ("thinking", "mine", "sig"),
    ]


def test_encode_empty_thinking_block_is_skipped():
    events = [MessageStart("msg_1", "m"), BlockStart(0, "thinking", origin="gemini"), BlockStop(0)]
    events += [BlockStart(1, "text"), TextDelta(1, "t"), BlockStop(1), MessageDelta("end_turn"), MessageStop()]
    payloads = validated(encode_all(events))
    starts = [p for p in payloads if p["type"] == "content_block_start"]
    assert [(p["index"], p["content_block"]["type"]) for p in starts] == [(0, "text")]


def test_encode_anthropic_redacted_thinking():
    events = [
        MessageStart("msg_1", "m"),
        BlockStart(0, "redacted_thinking", data="EmwK", origin="anthropic"),
        BlockStop(0),
        MessageDelta("end_turn", None, Usage(1, 1)),
        MessageStop(),
    ]
    message = sdk_final_message(encode_all(events))
    assert message.content[0].type == "redacted_thinking" and message.content[0].data == "EmwK"


def test_encode_usage_with_cache_and_late_input():
    events = [
        MessageStart("msg_1", "m", Usage(120, 0, 100, 0)),
        MessageDelta("max_tokens", None, Usage(0, 7, 0, 0)),
        MessageStop(),
    ]
    payloads = validated(encode_all(events))
    assert payloads[0]["message"]["usage"]["input_tokens"] == 20
    assert payloads[0]["message"]["usage"]["cache_read_input_tokens"] == 100
    assert payloads[1]["usage"] == {
        "input_tokens": 20,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 100,
    }
    assert payloads[1]["delta"]["stop_reason"] == "max_tokens"


def test_encode_stream_error_then_finish_adds_nothing():
    encoder = StreamEncoder("m")
    out = encoder.encode(MessageStart("msg_1", "m"))
    out += encoder.encode(StreamError(ErrorInfo(429, "rate_limit_error", "slow down")))
    out += encoder.encode(TextDelta(0, "late"))
    out += encoder.finish()
    assert encoder.finish() == b""
    payloads = validated(out)
    assert [p["type"] for p in payloads] == ["message_start", "error"]
    assert payloads[1] == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    with pytest.raises(anthropic.APIStatusError) as raised:
        sdk_final_message(out)
    assert raised.value.body["error"]["type"] == "rate_limit_error"


def test_encode_finish_of_unfinished_stream_emits_one_error():
    encoder = StreamEncoder("m")
    out = encoder.encode(MessageStart("msg_1", "m")) + encoder.encode(BlockStart(0, "text"))
    out += encoder.encode(TextDelta(0, "cut"))
    out += encoder.finish() + encoder.finish()
    payloads = validated(out)
    assert payloads[-1] == {"type": "error", "error": {"type": "api_error", "message": "upstream stream ended early"}}
    assert sum(p["type"] == "error" for p in payloads) == 1


def test_encode_finish_after_complete_message_adds_nothing():
    encoder = StreamEncoder("m")
    for event in GOLDEN_IR:
        encoder.encode(event)
    assert encoder.finish() == b""


def test_encode_fills_missing_message_start_and_delta():
    events = [BlockStart(0, "text"), TextDelta(0, "hi"), MessageStop()]
    data = encode_all(events)
    payloads = validated(data)
    assert [p["type"] for p in payloads] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert sdk_final_message(data).content[0].text == "hi"


def test_encode_ping():
    encoder = StreamEncoder("m")
    assert encoder.encode(Ping()) == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_stream_round_trip():
    data = encode_all(GOLDEN_IR, model="m")
    assert decode_all_splits(data) == GOLDEN_IR
