"""OpenAI Responses SSE (Codex CLI, the Codex backend) <-> IR stream events.

Responses streams are item-based: each output item (message, function_call,
reasoning) is announced by `output_item.added`, filled by deltas and closed
by `output_item.done`. One item maps to one IR block, so both directions are
one-to-one and need no buffering beyond the finished items that the final
`response.completed` event must repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import jsonio
from ..sse import ServerSentEvent, encode_json_event
from ..usage import Usage
from .usage import from_body as usage_from_body
from .. import ir
from .request import FORMAT, SEPARATOR, summary_text
from .response import (
    base_id,
    error_info,
    failed_error,
    function_call_item,
    message_item,
    reasoning_output_item,
    response_object,
    status_for,
    stop_from_incomplete,
)

__all__ = ["StreamDecoder", "StreamEncoder"]

_EARLY_END = "upstream stream ended early, before response.completed"

# Output item type -> the IR block it becomes.
_BLOCK_KINDS: dict[str, Any] = {"message": "text", "function_call": "tool_call", "reasoning": "thinking"}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- decode ----------------------------------------------------------------------


@dataclass
class _Item:
    """One upstream output item and the IR block it opened, if any."""

    kind: str
    call_id: str = ""
    name: str = ""
    index: int | None = None
    # Whether any content arrived as deltas; if not, the `.done` events carry it.
    streamed: bool = False
    summary_index: int = -1


class StreamDecoder:
    """Responses SSE events -> IR stream events, one event at a time."""

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._id = ""
        self._model = ""
        self._next_index = 0
        self._open: _Item | None = None
        self._by_id: dict[str, _Item] = {}
        self._by_output_index: dict[int, _Item] = {}
        self._saw_tool_call = False

    def feed(self, event: ServerSentEvent) -> list[ir.StreamEvent]:
        if self._done:
            return []
        payload = event.json()
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or event.event or ""
        handler = _DECODERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return []
        out: list[ir.StreamEvent] = []
        handler(self, payload, out)
        return out

    def finish(self) -> list[ir.StreamEvent]:
        if self._done:
            return []
        out: list[ir.StreamEvent] = []
        self._fail(ir.ErrorInfo(502, "api_error", _EARLY_END), out)
        return out

    # -- state helpers

    def _start(self, out: list[ir.StreamEvent], response: dict[str, Any] | None = None) -> None:
        if response:
            self._id = self._id or _str(response.get("id"))
            self._model = self._model or _str(response.get("model"))
        if not self._started:
            self._started = True
            out.append(ir.MessageStart(id=self._id, model=self._model))

    def _item(self, payload: dict[str, Any], kind: str) -> _Item:
        """The item an event refers to, by item_id or output_index; made up if never announced."""
        item_id = _str(payload.get("item_id")) or _str(_dict(payload.get("item")).get("id"))
        output_index = payload.get("output_index")
        item = self._by_id.get(item_id) if item_id else None
        if item is None and isinstance(output_index, int):
            item = self._by_output_index.get(output_index)
        if item is None:
            item = self._register(item_id, output_index, _Item(kind))
        return item

    def _register(self, item_id: str, output_index: Any, item: _Item) -> _Item:
        if item_id:
            self._by_id[item_id] = item
        if isinstance(output_index, int):
            self._by_output_index[output_index] = item
        return item

    def _block(self, item: _Item, out: list[ir.StreamEvent]) -> int | None:
        """The IR index of the item's block, opening it now if needed; None once it closed."""
        if item.index is not None:
            return item.index if item is self._open else None
        self._start(out)
        if self._open is not None:
            self._close(self._open, out)
        item.index = self._next_index
        self._next_index += 1
        self._open = item
        kind = _BLOCK_KINDS[item.kind]
        origin = FORMAT if kind == "thinking" else ""
        out.append(ir.BlockStart(item.index, kind, id=item.call_id, name=item.name, origin=origin))
        return item.index

    def _close(self, item: _Item, out: list[ir.StreamEvent]) -> None:
        if item is self._open and item.index is not None:
            out.append(ir.BlockStop(item.index))
            self._open = None

    def _text(self, item: _Item, text: str, out: list[ir.StreamEvent]) -> None:
        # No block for empty text: empty leading text blocks confuse clients.
        if not text:
            return
        index = self._block(item, out)
        if index is not None:
            out.append(ir.TextDelta(index, text))
            item.streamed = True

    def _thinking(self, item: _Item, text: str, summary_index: int, out: list[ir.StreamEvent]) -> None:
        if not text:
            return
        index = self._block(item, out)
        if index is None:
            return
        if item.summary_index >= 0 and summary_index != item.summary_index:
            out.append(ir.ThinkingDelta(index, SEPARATOR))  # same joiner as non-stream decoding
        item.summary_index = summary_index
        out.append(ir.ThinkingDelta(index, text))
        item.streamed = True

    def _args(self, item: _Item, piece: str, out: list[ir.StreamEvent]) -> None:
        if not piece:
            return
        index = self._block(item, out)
        if index is not None:
            out.append(ir.ToolArgsDelta(index, piece))
            item.streamed = True

    def _end(self, stop: ir.StopReason, response: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        self._start(out, response)
        if self._open is not None:
            self._close(self._open, out)
        out.append(ir.MessageDelta(stop_reason=stop, usage=usage_from_body(response)))
        out.append(ir.MessageStop())
        self._done = True

    def _fail(self, err: ir.ErrorInfo, out: list[ir.StreamEvent]) -> None:
        self._start(out)
        out.append(ir.StreamError(err))
        self._done = True

    # -- event handlers

    def _on_created(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        self._start(out, _dict(p.get("response")))

    def _on_item_added(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        data = _dict(p.get("item"))
        kind = _str(data.get("type"))
        if kind not in ("message", "function_call", "reasoning"):
            return
        item = self._register(_str(data.get("id")), p.get("output_index"), _Item(kind))
        if kind == "function_call":
            self._saw_tool_call = True
            item.call_id = _str(data.get("call_id"))
            item.name = _str(data.get("name"))
            # A tool block opens at once: its id and name are known now.
            self._block(item, out)
            self._args(item, _str(data.get("arguments")), out)

    def _on_part_added(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        self._text(self._item(p, "message"), _str(_dict(p.get("part")).get("text")), out)

    def _on_text_delta(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        self._text(self._item(p, "message"), _str(p.get("delta")), out)

    def _on_text_done(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        item = self._item(p, "message")
        if not item.streamed:
            self._text(item, _str(p.get("text")) or _str(p.get("refusal")), out)

    def _on_summary_delta(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        index = p.get("summary_index")
        self._thinking(
            self._item(p, "reasoning"), _str(p.get("delta")), index if isinstance(index, int) else 0, out
        )

    def _on_summary_done(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        item = self._item(p, "reasoning")
        index = p.get("summary_index")
        index = index if isinstance(index, int) else 0
        if index > item.summary_index:  # this part sent no deltas
            self._thinking(item, _str(p.get("text")), index, out)

    def _on_args_delta(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        self._args(self._item(p, "function_call"), _str(p.get("delta")), out)

    def _on_args_done(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        item = self._item(p, "function_call")
        if not item.streamed:
            self._args(item, _str(p.get("arguments")), out)

    def _on_item_done(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        data = _dict(p.get("item"))
        finish = _ITEM_FINISHERS.get(_str(data.get("type")))
        if finish is not None:
            item = self._item(p, _str(data.get("type")))
            finish(self, item, data, out)
            self._close(item, out)

    def _finish_message(self, item: _Item, data: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        if not item.streamed:
            parts = [_dict(c) for c in data.get("content") or []]
            self._text(item, "".join(_str(c.get("text")) or _str(c.get("refusal")) for c in parts), out)

    def _finish_function_call(self, item: _Item, data: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        self._saw_tool_call = True
        item.call_id = item.call_id or _str(data.get("call_id"))
        item.name = item.name or _str(data.get("name"))
        self._block(item, out)
        if not item.streamed:
            self._args(item, _str(data.get("arguments")), out)

    def _finish_reasoning(self, item: _Item, data: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        if not item.streamed:
            self._thinking(item, summary_text(data.get("summary")), 0, out)
        encrypted = _str(data.get("encrypted_content"))
        if encrypted:
            # The opaque payload comes last, so it travels as the block's signature.
            index = self._block(item, out)
            if index is not None:
                out.append(ir.SignatureDelta(index, encrypted))

    def _on_completed(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        response = _dict(p.get("response"))
        output = response.get("output") or []
        has_call = self._saw_tool_call or any(_dict(i).get("type") == "function_call" for i in output)
        self._end("tool_use" if has_call else "end_turn", response, out)

    def _on_incomplete(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        response = _dict(p.get("response"))
        reason = _dict(response.get("incomplete_details")).get("reason")
        self._end(stop_from_incomplete(reason), response, out)

    def _on_failed(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        err = _dict(_dict(p.get("response")).get("error")) or {"message": "upstream response failed"}
        self._fail(error_info(err), out)

    def _on_error(self, p: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        # The Codex backend nests the error object; the public API puts it at the top level.
        self._fail(error_info(_dict(p.get("error")) or p), out)


_ITEM_FINISHERS: dict[str, Callable[[StreamDecoder, _Item, dict[str, Any], list[ir.StreamEvent]], None]] = {
    "message": StreamDecoder._finish_message,
    "function_call": StreamDecoder._finish_function_call,
    "reasoning": StreamDecoder._finish_reasoning,
}

_DECODERS: dict[str, Callable[[StreamDecoder, dict[str, Any], list[ir.StreamEvent]], None]] = {
    "response.created": StreamDecoder._on_created,
    "response.in_progress": StreamDecoder._on_created,
    "response.output_item.added": StreamDecoder._on_item_added,
    "response.content_part.added": StreamDecoder._on_part_added,
    "response.output_text.delta": StreamDecoder._on_text_delta,
    "response.refusal.delta": StreamDecoder._on_text_delta,
    "response.output_text.done": StreamDecoder._on_text_done,
    "response.refusal.done": StreamDecoder._on_text_done,
    "response.reasoning_summary_text.delta": StreamDecoder._on_summary_delta,
    "response.reasoning_summary_text.done": StreamDecoder._on_summary_done,
    "response.function_call_arguments.delta": StreamDecoder._on_args_delta,
    "response.function_call_arguments.done": StreamDecoder._on_args_done,
    "response.output_item.done": StreamDecoder._on_item_done,
    "response.completed": StreamDecoder._on_completed,
    "response.incomplete": StreamDecoder._on_incomplete,
    "response.failed": StreamDecoder._on_failed,
    "error": StreamDecoder._on_error,
}


# --- encode ----------------------------------------------------------------------


@dataclass
class _Block:
    """The open IR block, as the output item being streamed."""

    kind: str
    item_id: str = ""
    output_index: int = 0
    pieces: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    origin: str = ""
    signature: list[str] = field(default_factory=list)
    summary_open: bool = False


class StreamEncoder:
    """IR stream events -> Responses SSE bytes, one event at a time.

    `include_usage` exists for interface parity: Responses always reports usage
    in its terminal event.
    """

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self._model = model
        self._seq = 0
        self._started = False
        self._finished = False
        self._resp_id = ""
        self._base = ""
        self._output: list[dict[str, Any]] = []
        self._block: _Block | None = None
        self._stop: ir.StopReason = "end_turn"
        self._usage: Usage | None = None

    def encode(self, event: ir.StreamEvent) -> bytes:
        handler = _ENCODERS.get(type(event))
        if handler is None or self._finished:
            return b""
        chunks: list[bytes] = []
        if not self._started and not isinstance(event, ir.MessageStart | ir.Ping):
            chunks.extend(self._on_start(ir.MessageStart(id="", model="")))
        chunks.extend(handler(self, event))
        return b"".join(chunks)

    def finish(self) -> bytes:
        if self._finished:
            return b""
        # The stream was cut without a terminal event: tell the client it failed.
        return self.encode(ir.StreamError(ir.ErrorInfo(502, "api_error", _EARLY_END)))

    # -- framing

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return encode_json_event(jsonio.dumps(data), kind)

    def _response(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        usage = (self._usage or Usage()) if status != "in_progress" else None
        return response_object(
            self._resp_id, self._model, status, list(self._output), usage, self._stop, error
        )

    def _item_fields(self, block: _Block) -> dict[str, Any]:
        return {"item_id": block.item_id, "output_index": block.output_index}

    # -- message

    def _on_start(self, ev: ir.MessageStart) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        self._base = base_id(ev.id)
        self._resp_id = f"resp_{self._base}"
        self._model = self._model or ev.model
        if ev.usage is not None:
            self._usage = ev.usage
        response = self._response("in_progress")
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def _on_delta(self, ev: ir.MessageDelta) -> list[bytes]:
        if ev.stop_reason is not None:
            self._stop = ev.stop_reason
        if ev.usage is not None:
            self._usage = ev.usage
        return []

    def _on_stop(self, ev: ir.MessageStop) -> list[bytes]:
        chunks = self._close_block()
        status = status_for(self._stop)
        chunks.append(self._event(f"response.{status}", response=self._response(status)))
        self._finished = True
        return chunks

    def _on_error(self, ev: ir.StreamError) -> list[bytes]:
        err = failed_error(ev.error)
        self._finished = True
        return [
            self._event("error", code=err["code"], message=ev.error.message, param=None),
            self._event("response.failed", response=self._response("failed", err)),
        ]

    def _on_ping(self, ev: ir.Ping) -> list[bytes]:
        # An SSE comment keeps idle proxies from cutting a slow stream; clients ignore it.
        return [b": ping\n\n"]

    # -- blocks

    def _on_block_start(self, ev: ir.BlockStart) -> list[bytes]:
        chunks = self._close_block()
        opener = _BLOCK_OPENERS.get(ev.kind)
        if opener is None:
            # Anthropic redacted_thinking has nothing a Responses client can show or replay.
            self._block = _Block(kind="skip")
            return chunks
        block = _Block(kind=ev.kind, output_index=len(self._output), origin=ev.origin)
        self._block = block
        chunks.extend(opener(self, block, ev))
        return chunks

    def _open_text(self, block: _Block, ev: ir.BlockStart) -> list[bytes]:
        block.item_id = f"msg_{self._base}_{block.output_index}"
        return [
            self._event(
                "response.output_item.added",
                output_index=block.output_index,
                item=message_item(block.item_id, "", status="in_progress"),
            ),
            self._event(
                "response.content_part.added",
                **self._item_fields(block),
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            ),
        ]

    def _open_thinking(self, block: _Block, ev: ir.BlockStart) -> list[bytes]:
        block.item_id = f"rs_{self._base}_{block.output_index}"
        return [
            self._event(
                "response.output_item.added",
                output_index=block.output_index,
                item=reasoning_output_item(block.item_id, ""),
            )
        ]

    def _open_tool(self, block: _Block, ev: ir.BlockStart) -> list[bytes]:
        block.item_id = f"fc_{self._base}_{block.output_index}"
        block.call_id = ev.id or f"call_{self._base}_{block.output_index}"
        block.name = ev.name
        item = function_call_item(block.item_id, block.call_id, block.name, "", status="in_progress")
        return [self._event("response.output_item.added", output_index=block.output_index, item=item)]

    def _on_text(self, ev: ir.TextDelta) -> list[bytes]:
        block = self._block
        if block is None or block.kind != "text" or not ev.text:
            return []
        block.pieces.append(ev.text)
        return [
            self._event(
                "response.output_text.delta",
                **self._item_fields(block),
                content_index=0,
                delta=ev.text,
                logprobs=[],
            )
        ]

    def _on_thinking(self, ev: ir.ThinkingDelta) -> list[bytes]:
        block = self._block
        if block is None or block.kind != "thinking" or not ev.text:
            return []
        chunks: list[bytes] = []
        if not block.summary_open:
            # Opened lazily: a signature-only block gets no empty summary part.
            block.summary_open = True
            chunks.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    **self._item_fields(block),
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
        block.pieces.append(ev.text)
        chunks.append(
            self._event(
                "response.reasoning_summary_text.delta",
                **self._item_fields(block),
                summary_index=0,
                delta=ev.text,
            )
        )
        return chunks

    def _on_signature(self, ev: ir.SignatureDelta) -> list[bytes]:
        if self._block is not None and self._block.kind == "thinking":
            self._block.signature.append(ev.signature)
        return []

    def _on_args(self, ev: ir.ToolArgsDelta) -> list[bytes]:
        block = self._block
        if block is None or block.kind != "tool_call" or not ev.partial_json:
            return []
        block.pieces.append(ev.partial_json)
        return [
            self._event(
                "response.function_call_arguments.delta", **self._item_fields(block), delta=ev.partial_json
            )
        ]

    def _on_block_stop(self, ev: ir.BlockStop) -> list[bytes]:
        return self._close_block()

    def _close_block(self) -> list[bytes]:
        block, self._block = self._block, None
        closer = _BLOCK_CLOSERS.get(block.kind) if block is not None else None
        if block is None or closer is None:
            return []
        chunks, item = closer(self, block)
        self._output.append(item)
        chunks.append(self._event("response.output_item.done", output_index=block.output_index, item=item))
        return chunks

    def _close_text(self, block: _Block) -> tuple[list[bytes], dict[str, Any]]:
        text = "".join(block.pieces)
        part = {"type": "output_text", "text": text, "annotations": []}
        fields = {**self._item_fields(block), "content_index": 0}
        chunks = [
            self._event("response.output_text.done", **fields, text=text, logprobs=[]),
            self._event("response.content_part.done", **fields, part=part),
        ]
        return chunks, message_item(block.item_id, text)

    def _close_thinking(self, block: _Block) -> tuple[list[bytes], dict[str, Any]]:
        text = "".join(block.pieces)
        chunks: list[bytes] = []
        if block.summary_open:
            fields = {**self._item_fields(block), "summary_index": 0}
            chunks.append(self._event("response.reasoning_summary_text.done", **fields, text=text))
            chunks.append(
                self._event(
                    "response.reasoning_summary_part.done",
                    **fields,
                    part={"type": "summary_text", "text": text},
                )
            )
        # A foreign signature would be rejected by a Responses upstream, so only ours is echoed.
        encrypted = "".join(block.signature) if block.origin == FORMAT else ""
        return chunks, reasoning_output_item(block.item_id, text, encrypted)

    def _close_tool(self, block: _Block) -> tuple[list[bytes], dict[str, Any]]:
        # Clients parse the arguments as JSON, so "no arguments" must be "{}", not "".
        arguments = "".join(block.pieces) or "{}"
        chunks = [
            self._event(
                "response.function_call_arguments.done", **self._item_fields(block), arguments=arguments
            )
        ]
        return chunks, function_call_item(block.item_id, block.call_id, block.name, arguments)


_BLOCK_OPENERS: dict[str, Callable[[StreamEncoder, _Block, ir.BlockStart], list[bytes]]] = {
    "text": StreamEncoder._open_text,
    "thinking": StreamEncoder._open_thinking,
    "tool_call": StreamEncoder._open_tool,
}

_BLOCK_CLOSERS: dict[str, Callable[[StreamEncoder, _Block], tuple[list[bytes], dict[str, Any]]]] = {
    "text": StreamEncoder._close_text,
    "thinking": StreamEncoder._close_thinking,
    "tool_call": StreamEncoder._close_tool,
}

_ENCODERS: dict[type, Callable[[StreamEncoder, Any], list[bytes]]] = {
    ir.MessageStart: StreamEncoder._on_start,
    ir.BlockStart: StreamEncoder._on_block_start,
    ir.TextDelta: StreamEncoder._on_text,
    ir.ThinkingDelta: StreamEncoder._on_thinking,
    ir.SignatureDelta: StreamEncoder._on_signature,
    ir.ToolArgsDelta: StreamEncoder._on_args,
    ir.BlockStop: StreamEncoder._on_block_stop,
    ir.MessageDelta: StreamEncoder._on_delta,
    ir.MessageStop: StreamEncoder._on_stop,
    ir.Ping: StreamEncoder._on_ping,
    ir.StreamError: StreamEncoder._on_error,
}
