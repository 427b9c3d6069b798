import pytest

from quotio_core.formats.sse import SSEDecoder, ServerSentEvent, encode_event


def decode_chunks(chunks: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.flush()


def decode(stream: bytes) -> list[ServerSentEvent]:
    return decode_chunks([stream])


def ev(data: str, event: str | None = None, id: str | None = None, retry: int | None = None):
    return ServerSentEvent(event, data, id, retry)


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"data: hi\n\n", [ev("hi")]),
        (b"data: hi\r\n\r\n", [ev("hi")]),
        (b"data: hi\r\r", [ev("hi")]),
        (b"data: a\r\ndata: b\rdata: c\n\n", [ev("a\nb\nc")]),
        (b"event: ping\ndata: {}\n\n", [ev("{}", "ping")]),
        (b"data:no-space\n\n", [ev("no-space")]),
        (b"data:  two spaces\n\n", [ev(" two spaces")]),
        (b"data\n\n", [ev("")]),
        (b"data:\n\n", [ev("")]),
        (b"data\ndata\n\n", [ev("\n")]),
        (b": comment\ndata: x\n: another\n\n", [ev("x")]),
        (b":\n\n", []),
        (b"event: only-a-name\n\n", []),
        (b"\n\n\n", []),
        (b"event:\ndata: x\n\n", [ev("x")]),
        (b"unknown: field\ndata: x\n\n", [ev("x")]),
        (b"DATA: case matters\n\n", []),
        (b"data: first\n\ndata: second\n\n", [ev("first"), ev("second")]),
        (b"event: a\ndata: 1\n\ndata: 2\n\n", [ev("1", "a"), ev("2")]),
        (b"id: 7\ndata: a\n\ndata: b\n\n", [ev("a", id="7"), ev("b", id="7")]),
        (b"id: 7\ndata: a\n\nid\ndata: b\n\n", [ev("a", id="7"), ev("b", id="")]),
        (b"id: 1\ndata: a\n\nid: x\x00y\ndata: b\n\n", [ev("a", id="1"), ev("b", id="1")]),
        (b"retry: 1500\ndata: a\n\ndata: b\n\n", [ev("a", retry=1500), ev("b")]),
        (b"retry: 15s\ndata: a\n\n", [ev("a")]),
        (b"data: a:b: c\n\n", [ev("a:b: c")]),
        (b"\xef\xbb\xbfdata: bom\n\n", [ev("bom")]),
        (b"data: \xef\xbb\xbfkept\n\n", [ev("\ufeffkept")]),
        (b"data: caf\xc3\xa9 \xf0\x9f\x98\x80\n\n", [ev("café 😀")]),
        (b"data: bad \xff byte\n\n", [ev("bad \ufffd byte")]),
        (b"data: [DONE]\n\n", [ev("[DONE]")]),
    ],
)
def test_decode(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode(stream) == expected


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"data: no blank line\n", [ev("no blank line")]),
        (b"data: no line end", [ev("no line end")]),
        (b"data: a\r", [ev("a")]),
        (b"event: x\ndata: partial", [ev("partial", "x")]),
        (b"event: x\n", []),
        (b"", []),
    ],
)
def test_flush_dispatches_unterminated_event(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode(stream) == expected


def test_flush_resets_for_reuse() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: a\ndata: 1")
    assert decoder.flush() == [ev("1", "a")]
    assert decoder.flush() == []
    assert decoder.feed(b"data: 2\n\n") == [ev("2")]


def test_events_are_returned_by_the_chunk_that_completes_them() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b\n\nda") == [ev("a"), ev("b")]
    assert decoder.feed(b"ta: c\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r\n") == [ev("c")]


def test_cr_then_lf_across_chunks_is_one_line_end() -> None:
    # If the split CRLF counted twice, the LF would be a blank line dispatching "a" early.
    assert decode_chunks([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [ev("a\nb")]
    assert decode_chunks([b"data: a\r", b"", b"\ndata: b\n\n"]) == [ev("a\nb")]
    # ...but only the LF immediately after the CR belongs to it.
    assert decode_chunks([b"data: a\r", b"\n", b"\ndata: b\n\n"]) == [ev("a"), ev("b")]


def test_pending_holds_only_the_unfinished_line() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: " + b"x" * 10_000 + b"\n\ndata: tail")
    assert b"".join(decoder._pending) == b"data: tail"


def test_json_helper() -> None:
    assert ev('{"a": [1, 2]}').json() == {"a": [1, 2]}
    assert ev("[DONE]").json() is None
    assert ev("").json() is None


# A stream mixing every framing and encoding hazard the decoder must survive.
MIXED_STREAM = (
    b"\xef\xbb\xbf: keep-alive comment\r\n"
    b"event: message_start\r\n"
    b'data: {"type":"message_start","text":"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"}\r\n'
    b"\r\n"
    b"id: 42\n"
    b"data: line one\n"
    b"data:line two\r"
    b"data: \n"
    b"\r"
    b"event: ping\rdata: {}\r\r"
    b": comment between events\n"
    b"retry: 3000\r\n"
    b"data: \xe4\xb8\xad\xe6\x96\x87\r\n\r\n"
    b"data: [DONE]\n\n"
    b"data: unterminated"
)

# Gemini ends events with CRLF CRLF; realistic payloads with multi-byte text.
GEMINI_STREAM = b"".join(
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"'
    + text.encode()
    + b'"}]}}],"usageMetadata":{"promptTokenCount":9}}\r\n\r\n'
    for text in ("Hél", "lo wörld ", "→ ✓ 😀")
)


@pytest.mark.parametrize("stream", [MIXED_STREAM, GEMINI_STREAM], ids=["mixed", "gemini"])
def test_every_split_point_matches_single_chunk(stream: bytes) -> None:
    expected = decode(stream)
    assert len(expected) >= 3
    for i in range(len(stream) + 1):
        assert decode_chunks([stream[:i], stream[i:]]) == expected, f"split at {i}"


@pytest.mark.parametrize("stream", [MIXED_STREAM, GEMINI_STREAM], ids=["mixed", "gemini"])
def test_byte_by_byte_matches_single_chunk(stream: bytes) -> None:
    chunks = [stream[i : i + 1] for i in range(len(stream))]
    assert decode_chunks(chunks) == decode(stream)


def test_every_pair_of_split_points_on_a_short_stream() -> None:
    stream = b"data: \xc3\xa9\r\n\r\nevent: e\rdata: x\r\rdata: y\n\n"
    expected = decode(stream)
    assert expected == [ev("é"), ev("x", "e"), ev("y")]
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            assert decode_chunks([stream[:i], stream[i:j], stream[j:]]) == expected, (i, j)


def test_mixed_stream_contents() -> None:
    assert decode(MIXED_STREAM) == [
        ev('{"type":"message_start","text":"héllo € 😀"}', "message_start"),
        ev("line one\nline two\n", id="42"),
        ev("{}", "ping", id="42"),
        ev("中文", id="42", retry=3000),
        ev("[DONE]", id="42"),
        ev("unterminated", id="42"),
    ]


@pytest.mark.parametrize(
    ("data", "event", "wire"),
    [
        ("hi", None, b"data: hi\n\n"),
        ('{"a":1}', "message_start", b'event: message_start\ndata: {"a":1}\n\n'),
        ("a\nb", None, b"data: a\ndata: b\n\n"),
        ("a\r\nb\rc", None, b"data: a\ndata: b\ndata: c\n\n"),
        ("", None, b"data: \n\n"),
        (" lead", None, b"data:  lead\n\n"),
        ("é", None, "data: é\n\n".encode()),
    ],
)
def test_encode_event(data: str, event: str | None, wire: bytes) -> None:
    assert encode_event(data, event) == wire


@pytest.mark.parametrize("data", ["x", "", "a\nb", "\n", " spaced ", "trailing\n", '{"k":"v"}', "é 😀"])
@pytest.mark.parametrize("event", [None, "message_delta"])
def test_encode_decode_round_trip(data: str, event: str | None) -> None:
    assert decode(encode_event(data, event)) == [ev(data, event)]


def test_encode_rejects_multiline_event_name() -> None:
    with pytest.raises(ValueError):
        encode_event("x", "a\nb")
