"""Inflates a compressed body chunk by chunk.

The gateway asks every upstream for `accept-encoding: identity`, so that a
stream can be read (and translated) event by event. An upstream that
compresses anyway still must not reach a translator as bytes it cannot read.
"""

from __future__ import annotations

import zlib

__all__ = ["Inflater", "SUPPORTED"]

SUPPORTED = frozenset({"gzip", "x-gzip", "deflate", "br"})


class Inflater:
    def __init__(self, encoding: str) -> None:
        encoding = encoding.strip().lower()
        if encoding not in SUPPORTED:
            raise ValueError(f"cannot inflate {encoding!r}")
        if encoding == "br":
            import brotli  # mitmproxy depends on it

            self._br = brotli.Decompressor()
            self._z = None
        else:
            # 32 + 15: the gzip or zlib header is detected (HTTP's deflate is zlib).
            self._z = zlib.decompressobj(32 + zlib.MAX_WBITS)
            self._br = None

    def feed(self, chunk: bytes) -> bytes:
        if self._br is not None:
            return self._br.process(chunk)
        return self._z.decompress(chunk)

    def flush(self) -> bytes:
        return self._z.flush() if self._z is not None else b""
