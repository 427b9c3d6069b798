"""The translation pipeline pieces the addons use, on recorded-shape streams."""

from __future__ import annotations

import json

import pytest

from quotio_core.formats.sse import SSEDecoder
from quotio_core.formats.streamtap import StreamTap
from quotio_core.formats import StreamTranslator, aggregate, expand, ir
from quotio_core.formats.pipeline import Aggregator, count_from_body, estimate_tokens
from quotio_core.formats.usage import Usage

OPENAI_STREAM = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n'
    b"data: [DONE]\n\n"
)


def _events(raw: bytes) -> list:
    d = SSEDecoder()
    return d.feed(raw) + d.flush()


def test_translator_never_returns_empty_bytes_mid_stream():
    # b"" mid-stream would be sent as the empty chunk that ends a chunked body.
    t = StreamTranslator("openai", "anthropic", "alias")
    outs = [t(bytes([b])) for b in OPENAI_STREAM]
    assert all(o != b"" for o in outs)
    tail = t(b"")
    body = b"".join(b"".join(o) if isinstance(o, list) else o for o in outs) + b"".join(tail if isinstance(tail, list) else [tail])
    names = [e.event for e in _events(body)]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert t.tracker.usage == Usage(input_tokens=3, output_tokens=1)


def test_same_format_tap_never_returns_empty_bytes_mid_stream():
    tap = StreamTap("openai", "m", "alias")  # renaming re-encodes, so output lags by a line
    outs = [tap(OPENAI_STREAM[i : i + 7]) for i in range(0, len(OPENAI_STREAM), 7)]
    assert all(o != b"" for o in outs)
    text = b"".join(b"".join(o) if isinstance(o, list) else o for o in outs)
    models = {e.json()["model"] for e in _events(text) if e.json()}
    assert models == {"alias"}


def test_truncated_stream_ends_with_error_event_in_client_format():
    t = StreamTranslator("openai", "anthropic", "alias")
    cut = OPENAI_STREAM[: OPENAI_STREAM.index(b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},')]
    out = t(cut)
    tail = t(b"")
    body = b"".join(out) + (b"".join(tail) if isinstance(tail, list) else tail)
    events = _events(body)
    assert events[-1].event == "error"
    assert events[-1].json()["error"]["type"] == "api_error"


def test_aggregate_folds_a_stream_into_one_answer():
    result = aggregate("openai", "anthropic", "alias", OPENAI_STREAM)
    body = json.loads(json.dumps(result.body))
    assert body["content"] == [{"type": "text", "text": "Hi"}]
    assert body["model"] == "alias"
    assert result.status == 200 and result.usage.input_tokens == 3


def test_aggregate_of_a_cut_stream_is_an_error_status():
    cut = OPENAI_STREAM[: OPENAI_STREAM.index(b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},')]
    result = aggregate("openai", "anthropic", "alias", cut)
    assert result.status == 502 and result.error is not None
    assert result.body["type"] == "error"


def test_expand_then_aggregate_is_identity():
    resp = ir.Response(
        id="r1",
        model="m",
        parts=[ir.Thinking("hmm", "sig", "anthropic"), ir.Text("hello"), ir.ToolCall("t1", "f", {"a": 1})],
        stop_reason="tool_use",
        usage=Usage(5, 7),
    )
    agg = Aggregator()
    for e in expand(resp):
        agg.feed(e)
    assert agg.complete
    assert agg.response == resp


@pytest.mark.parametrize(
    ("fmt", "body", "n"),
    [("anthropic", {"input_tokens": 9}, 9), ("gemini", {"totalTokens": 4}, 4), ("gemini", {"response": {"totalTokens": 2}}, 2)],
)
def test_count_from_body(fmt, body, n):
    assert count_from_body(fmt, body) == n


def test_estimate_tokens_grows_with_text():
    small = ir.Request("m", [ir.Message("user", [ir.Text("hi")])])
    big = ir.Request("m", [ir.Message("user", [ir.Text("hi " * 400)])])
    assert 0 < estimate_tokens(small) < estimate_tokens(big)


def _run(tap, raw: bytes, step: int = 7) -> bytes:
    outs = [tap(raw[i : i + step]) for i in range(0, len(raw), step)] + [tap(b"")]
    return b"".join(b"".join(o) if isinstance(o, list) else o for o in outs)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 10_000])
def test_same_format_tap_passes_a_whole_stream_untouched(step):
    crlf = OPENAI_STREAM.replace(b"\n", b"\r\n")
    assert _run(StreamTap("openai", "m"), OPENAI_STREAM, step) == OPENAI_STREAM
    assert _run(StreamTap("openai", "m"), crlf, step) == crlf


def test_same_format_tap_ends_a_stream_cut_short_with_an_error_event():
    cut = OPENAI_STREAM[: OPENAI_STREAM.index(b'{"index":0,"delta":{},"finish_reason":"stop"') - 80]
    cut = cut[: cut.rindex(b"\n\n") + 2]
    tap = StreamTap("openai", "m")
    body = _run(tap, cut)
    assert body.startswith(cut)
    *_, error, done = _events(body)
    assert "ended before its last event" in error.json()["error"]["message"]
    assert done.data == "[DONE]"
    assert tap.tracker.error is not None and not tap.tracker.complete


@pytest.mark.parametrize("garbage", [b'data: {"choices": [ broken\n\n', b"data: <html>oops</html>\n\n"])
def test_same_format_tap_stops_at_a_malformed_event(garbage):
    first = OPENAI_STREAM.split(b"\n\n")[0] + b"\n\n"
    tap = StreamTap("openai", "m")
    body = _run(tap, first + garbage + OPENAI_STREAM[len(first):])
    events = _events(body)
    assert events[0].json()["id"] == "c1"
    assert "not valid JSON" in events[-2].json()["error"]["message"]
    assert b"oops" not in body and b"broken" not in body
    assert sum(1 for e in events if e.json() and "error" in e.json()) == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_streams_are_inflated_chunk_by_chunk(encoding):
    import gzip
    import zlib

    packed = gzip.compress(OPENAI_STREAM) if encoding == "gzip" else zlib.compress(OPENAI_STREAM)
    assert _run(StreamTap("openai", "m", encoding=encoding), packed, step=5) == OPENAI_STREAM
    t = StreamTranslator("openai", "anthropic", "alias", encoding=encoding)
    events = _events(_run(t, packed, step=5))
    assert events[-1].event == "message_stop"
    assert t.tracker.complete


def test_fail_ends_a_translated_stream_with_an_error_in_the_client_format():
    t = StreamTranslator("openai", "anthropic", "alias")
    head = OPENAI_STREAM.split(b"\n\n")[1] + b"\n\n"
    body = b"".join(t(head)) + t.fail("upstream reset")
    events = _events(body)
    assert events[-1].event == "error" and events[-1].json()["error"]["message"] == "upstream reset"
    assert t(b"more") == [] and t(b"") == []
