"""The neutral shape every API format is translated through.

Each client format is decoded into these types and each provider format is
encoded from them (and the reverse for answers), so N formats need 2N
translators, not N². The shape follows Anthropic Messages, the richest of
the four: typed content blocks, tool calls with ids, thinking with
signatures, explicit block start/delta/stop in streams.

Conventions every translator keeps:
- `Message.role` is "user" or "assistant"; system text lives in
  `Request.system`. Tool results are parts of a user message.
- Tool call arguments are a parsed JSON object (`ToolCall.arguments`); in a
  stream they arrive as `ToolArgsDelta.partial_json` pieces that concatenate
  to the JSON text. An empty object `{}` only when the model sent none.
- A thinking block's signature is only meaningful to the format that made
  it (`Thinking.origin`); encoders drop signed thinking from other origins,
  since replaying a foreign signature is a 400 upstream.
- Usage follows quotio_core.usage.Usage: input includes cached tokens,
  output includes reasoning tokens.
- Streams are sequences of `StreamEvent`s in this grammar:
      MessageStart (BlockStart delta* BlockStop)* MessageDelta MessageStop
  with at most one block open at a time and block indexes 0, 1, 2, … in
  order. `StreamError` may replace anything after MessageStart, and ends the
  stream. `Ping` may appear anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .usage import Usage

__all__ = [
    "BlockStart",
    "BlockStop",
    "ErrorInfo",
    "KIND_BY_STATUS",
    "Image",
    "Message",
    "MessageDelta",
    "MessageStart",
    "MessageStop",
    "Part",
    "Ping",
    "Reasoning",
    "Request",
    "Response",
    "SignatureDelta",
    "StopReason",
    "StreamError",
    "StreamEvent",
    "Text",
    "TextDelta",
    "Thinking",
    "ThinkingDelta",
    "Tool",
    "ToolArgsDelta",
    "ToolCall",
    "ToolChoice",
    "ToolResult",
    "Usage",
    "kind_for_status",
]

# --- content -------------------------------------------------------------------


@dataclass
class Text:
    text: str
    # Anthropic prompt-caching marker, kept only when the target is Anthropic.
    cache_control: dict[str, Any] | None = None


@dataclass
class Image:
    """Base64 bytes (`data` + `media_type`) or a remote `url`; at least one is set."""

    media_type: str = ""
    data: str = ""
    url: str = ""


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    # Provider-specific opaque value that must be echoed back with the call
    # (Gemini 3 `thoughtSignature` on functionCall parts), with its origin.
    signature: str = ""
    origin: str = ""


@dataclass
class ToolResult:
    call_id: str
    content: list[Text | Image] = field(default_factory=list)
    is_error: bool = False
    # The called tool's name: Gemini's functionResponse needs it; decoders of
    # formats without it fill it from the matching ToolCall in the history.
    name: str = ""


@dataclass
class Thinking:
    text: str = ""
    signature: str = ""
    # The format whose upstream produced the signature: "anthropic", "gemini", "responses".
    origin: str = ""
    # Anthropic redacted_thinking (data) / Responses encrypted_content: opaque, same-origin only.
    redacted: str = ""


Part = Text | Image | ToolCall | ToolResult | Thinking


@dataclass
class Message:
    role: Literal["user", "assistant"]
    parts: list[Part] = field(default_factory=list)


# --- request -------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str = ""  # for mode "tool"


@dataclass
class Reasoning:
    """What the client asked of the model's thinking; each field optional.

    effort: "none" | "minimal" | "low" | "medium" | "high" (OpenAI, Responses)
    budget_tokens: explicit thinking budget (Anthropic, Gemini); 0 turns thinking off
    include_thoughts: whether thought text/summary should come back
    summary: Responses `reasoning.summary` ("auto", "concise", "detailed")
    """

    effort: str | None = None
    budget_tokens: int | None = None
    include_thoughts: bool = True
    summary: str | None = None


@dataclass
class Request:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[Text] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    # OpenAI `stream_options.include_usage`: the client wants a usage chunk.
    include_usage: bool = False
    reasoning: Reasoning | None = None
    user: str = ""  # end-user id (OpenAI `user`, Anthropic `metadata.user_id`)
    # Same-format fields with no neutral meaning (e.g. OpenAI response_format),
    # under the source format's name, for encoders of that format to restore.
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)


# --- answers -------------------------------------------------------------------

StopReason = Literal["end_turn", "max_tokens", "tool_use", "stop_sequence", "refusal", "pause_turn"]


@dataclass
class Response:
    id: str
    model: str
    parts: list[Text | Thinking | ToolCall] = field(default_factory=list)
    stop_reason: StopReason = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)


# What an HTTP status means, in ErrorInfo.kind's terms, when nothing more telling is known.
KIND_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def kind_for_status(status: int) -> str:
    if status in KIND_BY_STATUS:
        return KIND_BY_STATUS[status]
    return "api_error" if status >= 500 or status < 400 else "invalid_request_error"


@dataclass
class ErrorInfo:
    """An upstream error with its meaning kept.

    kind uses Anthropic's error type names: invalid_request_error,
    authentication_error, permission_error, not_found_error,
    request_too_large, rate_limit_error, api_error, overloaded_error.
    """

    status: int
    kind: str
    message: str
    retry_after: float | None = None


# --- stream events -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage | None = None  # input tokens, when known this early


@dataclass(frozen=True, slots=True)
class BlockStart:
    index: int
    kind: Literal["text", "thinking", "redacted_thinking", "tool_call"]
    id: str = ""  # tool call id
    name: str = ""  # tool name
    data: str = ""  # redacted_thinking payload
    origin: str = ""  # thinking/signature origin format


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class SignatureDelta:
    index: int
    signature: str


@dataclass(frozen=True, slots=True)
class ToolArgsDelta:
    index: int
    partial_json: str


@dataclass(frozen=True, slots=True)
class BlockStop:
    index: int


@dataclass(frozen=True, slots=True)
class MessageDelta:
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None  # cumulative


@dataclass(frozen=True, slots=True)
class MessageStop:
    pass


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class StreamError:
    error: ErrorInfo


StreamEvent = (
    MessageStart
    | BlockStart
    | TextDelta
    | ThinkingDelta
    | SignatureDelta
    | ToolArgsDelta
    | BlockStop
    | MessageDelta
    | MessageStop
    | Ping
    | StreamError
)
