"""AWS event-stream framing (`application/vnd.amazon.eventstream`).

Kiro (CodeWhisperer) streams its answers as binary frames rather than SSE.
Each frame, all integers big-endian:

    total_length u32 | headers_length u32 | prelude_crc u32
    headers (headers_length bytes) | payload | message_crc u32

`prelude_crc` is the CRC-32 (IEEE, zlib's) of the first 8 bytes and
`message_crc` the CRC-32 of everything before it. A header is
``name_len u8, name, type u8, value``; the value's encoding depends on its
type (see `HEADER_TYPES`).

`Decoder.feed` takes the bytes as they arrive, in chunks cut anywhere, and
returns the messages they complete; it only keeps the unfinished frame. A
frame that cannot be right (bad CRC, impossible lengths, unknown header
type) raises `FrameError`, and the decoder refuses further input: after a
corrupt frame nothing downstream can be trusted to be aligned.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

__all__ = [
    "CONTENT_TYPE",
    "HEADER_TYPES",
    "Decoder",
    "FrameError",
    "Message",
    "Typed",
    "encode_message",
]

CONTENT_TYPE = "application/vnd.amazon.eventstream"

_PRELUDE = struct.Struct(">III")
_PRELUDE_LEN = 12
_CRC_LEN = 4
_OVERHEAD = _PRELUDE_LEN + _CRC_LEN
# AWS's own limits: 16 MiB per message, 128 KiB of headers. Anything larger
# is a desynchronised stream, not a real frame, and must not make us buffer.
MAX_MESSAGE = 16 * 1024 * 1024
MAX_HEADERS = 128 * 1024

# Header value type ids.
TRUE, FALSE, BYTE, INT16, INT32, INT64, BYTES, STRING, TIMESTAMP, UUID = range(10)
HEADER_TYPES = {
    TRUE: "true",
    FALSE: "false",
    BYTE: "byte",
    INT16: "int16",
    INT32: "int32",
    INT64: "int64",
    BYTES: "bytes",
    STRING: "string",
    TIMESTAMP: "timestamp",
    UUID: "uuid",
}
_FIXED = {BYTE: struct.Struct(">b"), INT16: struct.Struct(">h"), INT32: struct.Struct(">i"), INT64: struct.Struct(">q")}
_U16 = struct.Struct(">H")
_I64 = struct.Struct(">q")


class FrameError(ValueError):
    """The bytes are not a valid event-stream frame."""


class Typed(NamedTuple):
    """A header value with an explicit type id, for types a Python value cannot name (byte, int16…)."""

    type: int
    value: Any


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded frame: its headers (typed Python values) and raw payload."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", ""))

    @property
    def event_type(self) -> str:
        return str(self.headers.get(":event-type", ""))


def _crc(data: bytes | bytearray) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


# --- decode ------------------------------------------------------------------------


def _read_value(kind: int, buf: bytes, pos: int) -> tuple[Any, int]:
    if kind == TRUE:
        return True, pos
    if kind == FALSE:
        return False, pos
    if kind in _FIXED:
        fmt = _FIXED[kind]
        end = pos + fmt.size
        if end > len(buf):
            raise FrameError(f"header value of type {HEADER_TYPES[kind]} runs past the headers")
        return fmt.unpack_from(buf, pos)[0], end
    if kind in (BYTES, STRING):
        if pos + 2 > len(buf):
            raise FrameError("header value length runs past the headers")
        (length,) = _U16.unpack_from(buf, pos)
        start, end = pos + 2, pos + 2 + length
        if end > len(buf):
            raise FrameError("header value runs past the headers")
        raw = buf[start:end]
        if kind == BYTES:
            return raw, end
        try:
            return raw.decode("utf-8"), end
        except UnicodeDecodeError as e:
            raise FrameError(f"string header value is not UTF-8: {e}") from e
    if kind == TIMESTAMP:
        if pos + 8 > len(buf):
            raise FrameError("timestamp header value runs past the headers")
        (millis,) = _I64.unpack_from(buf, pos)
        return datetime.fromtimestamp(millis / 1000, UTC), pos + 8
    if kind == UUID:
        if pos + 16 > len(buf):
            raise FrameError("uuid header value runs past the headers")
        return uuid.UUID(bytes=buf[pos : pos + 16]), pos + 16
    raise FrameError(f"unknown header value type {kind}")


def decode_headers(buf: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    pos = 0
    while pos < len(buf):
        name_len = buf[pos]
        pos += 1
        if name_len == 0 or pos + name_len + 1 > len(buf):
            raise FrameError("header name runs past the headers")
        try:
            name = buf[pos : pos + name_len].decode("utf-8")
        except UnicodeDecodeError as e:
            raise FrameError(f"header name is not UTF-8: {e}") from e
        pos += name_len
        kind = buf[pos]
        value, pos = _read_value(kind, buf, pos + 1)
        headers[name] = value
    return headers


class Decoder:
    """Event-stream bytes in, whole `Message`s out, one chunk at a time."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._broken: str | None = None

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held back (non-zero at the end means a cut stream)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Message]:
        """Consume `chunk`; return the messages it completes. Raises FrameError."""
        if self._broken is not None:
            raise FrameError(self._broken)
        self._buf += chunk
        out: list[Message] = []
        offset = 0
        try:
            while len(self._buf) - offset >= _PRELUDE_LEN:
                total = self._check_prelude(offset)
                if len(self._buf) - offset < total:
                    break
                out.append(self._message(offset, total))
                offset += total
        except FrameError as e:
            self._broken = f"event stream is corrupt: {e}"
            self._buf.clear()
            raise FrameError(self._broken) from None
        # Compacting once per chunk, not per frame, keeps many small frames linear.
        del self._buf[:offset]
        return out

    def _check_prelude(self, offset: int) -> int:
        total, headers_len, prelude_crc = _PRELUDE.unpack_from(self._buf, offset)
        if _crc(self._buf[offset : offset + 8]) != prelude_crc:
            raise FrameError("prelude CRC mismatch")
        if total < _OVERHEAD or total > MAX_MESSAGE:
            raise FrameError(f"impossible frame length {total}")
        if headers_len > MAX_HEADERS or headers_len > total - _OVERHEAD:
            raise FrameError(f"impossible headers length {headers_len} in a frame of {total}")
        return total

    def _message(self, offset: int, total: int) -> Message:
        # A copy, not a memoryview: an export would pin the buffer against resizing.
        frame = bytes(self._buf[offset : offset + total])
        (message_crc,) = struct.unpack_from(">I", frame, total - _CRC_LEN)
        if _crc(frame[: total - _CRC_LEN]) != message_crc:
            raise FrameError("message CRC mismatch")
        (headers_len,) = struct.unpack_from(">I", frame, 4)
        headers = decode_headers(frame[_PRELUDE_LEN : _PRELUDE_LEN + headers_len])
        return Message(headers, frame[_PRELUDE_LEN + headers_len : total - _CRC_LEN])


# --- encode ------------------------------------------------------------------------


def _typed(value: Any) -> Typed:
    if isinstance(value, Typed):
        return value
    if isinstance(value, bool):
        return Typed(TRUE if value else FALSE, value)
    if isinstance(value, int):
        return Typed(INT32 if -(2**31) <= value < 2**31 else INT64, value)
    if isinstance(value, str):
        return Typed(STRING, value)
    if isinstance(value, (bytes, bytearray)):
        return Typed(BYTES, bytes(value))
    if isinstance(value, datetime):
        return Typed(TIMESTAMP, value)
    if isinstance(value, uuid.UUID):
        return Typed(UUID, value)
    raise TypeError(f"no event-stream header type for {type(value).__name__}")


def _encode_value(typed: Typed) -> bytes:
    kind, value = typed
    if kind in (TRUE, FALSE):
        return b""
    if kind in _FIXED:
        return _FIXED[kind].pack(value)
    if kind in (BYTES, STRING):
        raw = value.encode("utf-8") if kind == STRING else bytes(value)
        if len(raw) > 0xFFFF:
            raise ValueError("header value longer than 65535 bytes")
        return _U16.pack(len(raw)) + raw
    if kind == TIMESTAMP:
        millis = value if isinstance(value, int) else round(value.timestamp() * 1000)
        return _I64.pack(millis)
    if kind == UUID:
        return value.bytes if isinstance(value, uuid.UUID) else bytes(value)
    raise ValueError(f"unknown header value type {kind}")


def encode_headers(headers: Mapping[str, Any]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        if not 0 < len(raw_name) < 256:
            raise ValueError(f"header name must be 1-255 bytes: {name!r}")
        typed = _typed(value)
        out += bytes([len(raw_name)]) + raw_name + bytes([typed.type]) + _encode_value(typed)
    return bytes(out)


def encode_message(headers: Mapping[str, Any], payload: bytes) -> bytes:
    """One frame with correct lengths and CRCs."""
    raw_headers = encode_headers(headers)
    total = _OVERHEAD + len(raw_headers) + len(payload)
    head = struct.pack(">II", total, len(raw_headers))
    prelude = head + struct.pack(">I", _crc(head))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", _crc(body))


def event(event_type: str, payload: bytes) -> bytes:
    """An `event` frame as AWS streaming services send them."""
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, payload)


def exception(exception_type: str, payload: bytes) -> bytes:
    """An `exception` frame (a modelled error, payload `{"message": …}`)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, payload)


def error(code: str, message: str) -> bytes:
    """An `error` frame (an unmodelled error, carried in headers only)."""
    return encode_message({":error-code": code, ":error-message": message, ":message-type": "error"}, b"")
