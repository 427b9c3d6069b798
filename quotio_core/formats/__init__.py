"""API formats: what each one's requests, answers, streams, errors and usage look like.

The room's rule: nothing here imports anything else from quotio_core. It
knows bodies, events and bytes, not credentials, providers or flows.

One package per format, its parts named for what they translate
(`<format>/request.py`, `response.py`, `stream.py`, and for the formats
clients speak `errors.py` and `usage.py`); `registry.py` holds the one
table of formats every other list derives from. Translation goes through the
neutral shapes in `ir.py`, so N formats need N decoders and N encoders, not
N×N translators:

- request.py:  decode_request(body) -> ir.Request, encode_request(req, model) -> dict, validate(body)
- response.py: decode_response(body) -> ir.Response, encode_response(resp) -> dict,
               decode_error(status, raw) -> ir.ErrorInfo, encode_error(err) -> (status, dict)
- stream.py:   StreamDecoder().feed(sse_event | bytes) / finish() -> [ir stream events],
               StreamEncoder(model, include_usage).encode(ir_event) / finish() -> bytes
- errors.py:   render(status, code, message) -> the gateway's own error in this shape
- usage.py:    from_body(body), ends(event), observe(tracker, event, payload)

So "how Anthropic SSE becomes OpenAI chunks" is anthropic/stream.py's
StreamDecoder feeding openai/stream.py's StreamEncoder, wired by
`pipeline.StreamTranslator`. Also here: `sse.py` (incremental SSE decoding),
`eventstream.py` (AWS event-stream frames, Kiro), `inflate.py`,
`streamtap.py` (watching a same-format stream), `models.py` (model listings
in each client's shape).
"""

from .pipeline import (
    Aggregator,
    EventUsageTracker,
    StreamTranslator,
    aggregate,
    count_from_body,
    count_reply,
    estimate_tokens,
    expand,
    is_stream,
    raw_bytes,
    translate_error,
    translate_request,
    translate_response,
)

from .registry import (
    CLIENT_FORMATS,
    COUNT_ENDPOINTS,
    FORMATS,
    INLINE_IMAGES,
    ROUTE_PATTERNS,
    ROUTES,
    STREAM_ENDPOINTS,
    module,
    render_error,
    stream_usage,
    upstream_endpoint,
    usage_from_body,
)

__all__ = [
    "CLIENT_FORMATS",
    "FORMATS",
    "Aggregator",
    "EventUsageTracker",
    "StreamTranslator",
    "aggregate",
    "count_from_body",
    "count_reply",
    "estimate_tokens",
    "expand",
    "is_stream",
    "module",
    "raw_bytes",
    "render_error",
    "stream_usage",
    "upstream_endpoint",
    "COUNT_ENDPOINTS",
    "ROUTES",
    "ROUTE_PATTERNS",
    "INLINE_IMAGES",
    "STREAM_ENDPOINTS",
    "translate_error",
    "translate_request",
    "translate_response",
    "usage_from_body",
]
