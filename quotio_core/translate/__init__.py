"""Translation between API formats, through the neutral shapes in `ir`.

Format ids: "anthropic" (Messages), "openai" (Chat Completions), "gemini"
(generateContent; Code Assist's wrapper too), "responses" (OpenAI Responses,
the Codex backend), and "kiro" (CodeWhisperer's conversationState and binary
event stream; an upstream format only, so it has decoders and a request
encoder but no client-side encoders).

Each format has three modules, named for what they translate:

- `<fmt>_request.py`:  decode_request(body) -> ir.Request
                       encode_request(req: ir.Request, model: str) -> dict
- `<fmt>_response.py`: decode_response(body) -> ir.Response
                       encode_response(resp: ir.Response) -> dict
                       decode_error(status, raw: bytes) -> ir.ErrorInfo
                       encode_error(err: ir.ErrorInfo) -> tuple[int, dict]
- `<fmt>_stream.py`:   StreamDecoder().feed(sse_event) -> list[ir.StreamEvent]
                       StreamDecoder().finish() -> list[ir.StreamEvent]
                       (feed(body_chunk: bytes) when the module sets RAW_BYTES)
                       StreamEncoder(model, include_usage=False).encode(ir_event) -> bytes
                       StreamEncoder(...).finish() -> bytes

So "how Anthropic SSE becomes OpenAI chunks" is anthropic_stream.StreamDecoder
feeding openai_stream.StreamEncoder; `pipeline` wires the pairs together.
"""

from .pipeline import (  # noqa: E402
    FORMATS,
    Aggregator,
    EventUsageTracker,
    StreamTranslator,
    aggregate,
    count_from_body,
    count_reply,
    estimate_tokens,
    expand,
    is_stream,
    module,
    raw_bytes,
    translate_error,
    translate_request,
    translate_response,
)

__all__ = [
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
    "translate_error",
    "translate_request",
    "translate_response",
]
