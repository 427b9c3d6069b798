"""JSON out, fast: orjson where it writes the same document, json where it cannot.

Every streamed event and every upstream body is serialised here, so this is
on the gateway's hottest path: orjson writes compact UTF-8 about ten times
faster than `json.dumps` (`make bench`'s translated row; a 60 KB agent body
takes 0.015 ms instead of 0.19 ms). It refuses what it cannot write exactly
(integers past 64 bits, lone surrogates such as an upstream's "\\udc80",
non-string keys, nesting past 254 levels); those documents go through
`json.dumps` instead, which keeps big integers exact and escapes surrogates.

Parsing stays with `json.loads`: orjson reads integers past 64 bits as floats,
which would change a value on its way through.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps"]


def dumps(obj: Any) -> bytes:
    """`obj` as compact JSON in UTF-8 (never a raw line break: SSE can frame it as is)."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError
        return _stdlib(obj)


def _stdlib(obj: Any) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:  # a lone surrogate is no UTF-8: send it escaped
        return json.dumps(obj, separators=(",", ":")).encode()
