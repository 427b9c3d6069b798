"""AWS event-stream framing: encoder, incremental decoder, corrupt frames."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime

import pytest

from quotio_core.formats import eventstream as es

# Known frames: the empty message and one string header with a JSON payload,
# as published with AWS's event-stream implementations.
EMPTY = bytes.fromhex("000000100000000005c248eb7d98c8ff")
ONE_HEADER = bytes.fromhex(
    "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e"
    "7b27666f6f273a27626172277d8d9c08b1"
)


def test_known_frames():
    assert es.encode_message({}, b"") == EMPTY
    assert es.encode_message({"content-type": "application/json"}, b"{'foo':'bar'}") == ONE_HEADER
    [empty, one] = es.Decoder().feed(EMPTY + ONE_HEADER)
    assert (empty.headers, empty.payload) == ({}, b"")
    assert one.headers == {"content-type": "application/json"}
    assert one.payload == b"{'foo':'bar'}"


def test_every_header_type_round_trips():
    when = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = {
        "t": True,
        "f": False,
        "byte": es.Typed(es.BYTE, -7),
        "short": es.Typed(es.INT16, -30000),
        "int": 2_000_000_000,
        "long": 2**40,
        "raw": b"\x00\xffbytes",
        "s": "héllo",
        "ts": when,
        "id": ident,
    }
    [msg] = es.Decoder().feed(es.encode_message(headers, b"payload"))
    assert msg.headers == {**headers, "byte": -7, "short": -30000}
    assert msg.payload == b"payload"


def _stream() -> tuple[bytes, list[tuple[dict, bytes]]]:
    items = [
        ({":message-type": "event", ":event-type": "assistantResponseEvent"}, b'{"content":"Hel"}'),
        ({":message-type": "event", ":event-type": "assistantResponseEvent"}, b'{"content":"lo \xc3\xa9"}'),
        ({":message-type": "event", ":event-type": "metricsEvent"}, b""),
    ]
    return b"".join(es.encode_message(h, p) for h, p in items), items


def test_split_at_every_byte_boundary():
    raw, items = _stream()
    for cut in range(len(raw) + 1):
        dec = es.Decoder()
        got = dec.feed(raw[:cut]) + dec.feed(raw[cut:])
        assert [(m.headers, m.payload) for m in got] == items, cut
        assert dec.pending == 0


def test_byte_by_byte_and_pending():
    raw, items = _stream()
    dec = es.Decoder()
    got = []
    for i in range(len(raw)):
        got += dec.feed(raw[i : i + 1])
        if i < 11:
            assert got == [] and dec.pending == i + 1
    assert [(m.headers, m.payload) for m in got] == items
    assert dec.pending == 0
    dec.feed(raw[:20])
    assert dec.pending == 20  # a cut stream leaves its unfinished frame


def test_event_helpers_name_their_types():
    [ev, exc, err] = es.Decoder().feed(
        es.event("toolUseEvent", b"{}") + es.exception("ValidationException", b'{"message":"no"}')
        + es.error("InternalFailure", "boom")
    )
    assert (ev.message_type, ev.event_type) == ("event", "toolUseEvent")
    assert exc.headers[":exception-type"] == "ValidationException"
    assert err.headers == {":error-code": "InternalFailure", ":error-message": "boom", ":message-type": "error"}


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda b: b[:8] + bytes([b[8] ^ 1]) + b[9:], "prelude CRC"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "message CRC"),
        (lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:], "message CRC"),
    ],
)
def test_corrupt_frames_are_refused(mutate, why):
    raw, _ = _stream()
    dec = es.Decoder()
    with pytest.raises(es.FrameError, match=why):
        dec.feed(mutate(raw))
    # Nothing after a corrupt frame can be trusted to be aligned.
    with pytest.raises(es.FrameError):
        dec.feed(es.encode_message({}, b""))


def _framed(total: int, headers_len: int, rest: bytes) -> bytes:
    head = struct.pack(">II", total, headers_len)
    prelude = head + struct.pack(">I", es._crc(head))
    body = prelude + rest
    return body + struct.pack(">I", es._crc(body))


def test_impossible_lengths_and_header_types():
    with pytest.raises(es.FrameError, match="impossible frame length"):
        es.Decoder().feed(_framed(8, 0, b""))
    with pytest.raises(es.FrameError, match="impossible headers length"):
        es.Decoder().feed(_framed(20, 10, b"abcd"))
    # A prelude claiming more than AWS's 16 MiB limit fails before anything is buffered.
    with pytest.raises(es.FrameError, match="impossible frame length"):
        es.Decoder().feed(_framed(es.MAX_MESSAGE + 1, 0, b""))
    with pytest.raises(es.FrameError, match="unknown header value type 12"):
        es.Decoder().feed(_framed(16 + 3, 3, b"\x01a\x0c"))
    with pytest.raises(es.FrameError, match="runs past"):
        es.Decoder().feed(_framed(16 + 5, 5, b"\x01a\x07\x00\x09"))


def test_encoder_refuses_what_it_cannot_frame():
    with pytest.raises(TypeError):
        es.encode_message({"x": 1.5}, b"")
    with pytest.raises(ValueError, match="1-255 bytes"):
        es.encode_message({"": "v"}, b"")
