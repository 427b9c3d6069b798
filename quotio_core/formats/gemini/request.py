"""Gemini generateContent request bodies ↔ `ir.Request`.

Also the Code Assist wrapper Gemini CLI accounts use (wire-formats §5):
`wrap_code_assist` / `unwrap_code_assist`.

The model is part of the URL (`…/models/{model}:generateContent`), so
`decode_request` leaves `Request.model` empty for the gateway to fill, and
`encode_request` puts no model in the body.
"""

from __future__ import annotations

import copy
import hashlib
import json
import mimetypes
import re
from collections import deque
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from ..errors import INTEGER, NUMBER, OBJECT, STRING, check, objects
from .. import ir
from .schema import clean_schema, to_json_schema

__all__ = [
    "EFFORT_BUDGETS",
    "SKIP_SIGNATURE_SENTINEL",
    "decode_request",
    "encode_request",
    "field",
    "parse_args",
    "string_field",
    "synth_call_id",
    "unwrap_code_assist",
    "validate",
    "wrap_code_assist",
]

# Reasoning effort → thinkingBudget for models that take a budget (Gemini 2.x).
EFFORT_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}

# Gemini 3 is tuned for thinkingLevel and can't turn thinking off; efforts it
# has no level for go to the nearest one every Gemini 3 model accepts.
_GEMINI3_LEVELS = {"none": "low", "xhigh": "high"}

# Gemini 3 rejects history function calls without their thoughtSignature; calls
# made by another vendor have none. Some clients send this value to skip the
# check (unconfirmed: it rests on third-party clients, not Google's docs).
SKIP_SIGNATURE_SENTINEL = "skip_thought_signature_validator"

# Request keys that are decoded into neutral fields; the rest of the body is
# kept under extra["gemini"] so a Gemini → Gemini trip loses nothing.
_NEUTRAL_KEYS = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"})
_NEUTRAL_GENERATION_KEYS = frozenset(
    {"maxOutputTokens", "stopSequences", "temperature", "topP", "topK", "thinkingConfig"}
)

_DEFAULT_MIME = "image/png"
_DATA_URL = re.compile(r"^data:([^;,]*)(?:;[^,]*)?;base64,(.*)$", re.DOTALL)


# --- helpers shared with gemini_response / gemini_stream ------------------------


@cache
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a lowerCamel proto field, accepting its snake_case spelling too.

    Google's JSON parser takes both, and the REST docs' own curl examples use
    snake_case (`system_instruction`, `inline_data`), so clients send either.
    """
    if not isinstance(obj, Mapping):
        return default
    value = obj.get(name)
    if value is None:
        value = obj.get(_snake(name))
    return default if value is None else value


def string_field(obj: Any, name: str) -> str:
    """`field(obj, name)` when it is a string, else "": ids, signatures, data go on as text."""
    value = field(obj, name)
    return value if isinstance(value, str) else ""


def synth_call_id(scope: str, position: int, name: str) -> str:
    """A stable id for a function call Gemini sent without one."""
    # surrogatepass: an upstream's lone surrogate ("\udc80") in a name or response id still hashes.
    digest = hashlib.sha256(f"{scope}\0{position}\0{name}".encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"call_{digest}"


def parse_args(text: str) -> dict[str, Any]:
    """Tool arguments from JSON text; truncated JSON keeps its complete members; {} if nothing usable."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except RecursionError:  # nested thousands deep: nothing usable, and no repair will parse
        return {}
    except ValueError:
        value = _repair_json(text)
    return value if isinstance(value, dict) else {}


def _repair_json(text: str) -> Any:
    """Close a JSON text cut short, backing off to earlier member boundaries until it parses."""
    boundaries = [i for i in range(len(text) - 1, -1, -1) if text[i] in ",{["][:32]
    cuts = [len(text), *boundaries]
    for cut in cuts:
        head = text[:cut].rstrip().rstrip(",")
        closers = _closers(head)
        if closers is None:
            continue
        try:
            return json.loads(head + closers)
        except (ValueError, RecursionError):
            continue
    return None


def _closers(head: str) -> str | None:
    stack: list[str] = []
    in_string = escaped = False
    for ch in head:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
    if escaped:
        return None
    return ('"' if in_string else "") + "".join(reversed(stack))


# --- Code Assist wrapper ---------------------------------------------------------


def wrap_code_assist(body: dict[str, Any], model: str, project: str) -> dict[str, Any]:
    """The Code Assist `:generateContent` body around a plain Gemini request body."""
    return {"model": model, "project": project, "request": body}


def unwrap_code_assist(payload: Any) -> Any:
    """The plain Gemini response inside a Code Assist `{"response": …, "traceId": …}`."""
    if isinstance(payload, Mapping) and isinstance(payload.get("response"), Mapping):
        return payload["response"]
    return payload


# --- validate ----------------------------------------------------------------------

_GENERATION_FIELDS = {
    "maxOutputTokens": INTEGER,
    "temperature": NUMBER,
    "topP": NUMBER,
}


def validate(body: dict[str, Any]) -> None:
    """BadRequest naming the first field whose type is wrong; fields without a rule pass untouched.

    Fields are found as the decoder finds them: camelCase or snake_case, inside
    a countTokens `generateContentRequest` or a Code Assist `request`. The
    model is in the URL, and `contents` may be absent.
    """
    check(field(body, "generateContentRequest"), OBJECT, "generateContentRequest")
    inner = _unwrap_request(body)
    prefix = "" if inner is body else next(f"{k}." for k, v in body.items() if v is inner)
    check(field(inner, "model"), STRING, prefix + "model")
    for i, content in enumerate(objects(field(inner, "contents"), prefix + "contents")):
        objects(field(content, "parts"), f"{prefix}contents.{i}.parts")
    objects(field(inner, "tools"), prefix + "tools")
    config = field(inner, "generationConfig")
    check(config, OBJECT, prefix + "generationConfig")
    for key, rule in _GENERATION_FIELDS.items() if isinstance(config, dict) else ():
        check(field(config, key), rule, f"{prefix}generationConfig.{key}")


# --- decode ------------------------------------------------------------------------


def decode_request(body: Mapping[str, Any]) -> ir.Request:
    """An IR request from a generateContent (or countTokens / Code Assist) body."""
    body = _unwrap_request(body)
    req = ir.Request(model="")
    req.system = _decode_system(field(body, "systemInstruction"))
    req.messages = _Contents().decode(field(body, "contents", []))
    req.tools, other_tools = _decode_tools(field(body, "tools", []))
    req.tool_choice, allowed = _decode_tool_config(field(body, "toolConfig"))
    _decode_generation(field(body, "generationConfig", {}), req)
    extra = {k: copy.deepcopy(v) for k, v in body.items() if _camel_key(k) not in _NEUTRAL_KEYS}
    if other_tools:
        extra["tools"] = other_tools
    if allowed:
        extra["allowedFunctionNames"] = allowed
    if extra:
        req.extra.setdefault("gemini", {}).update(extra)
    return req


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _unwrap_request(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        return {}
    inner = field(body, "generateContentRequest")
    if isinstance(inner, Mapping):
        return inner
    # Code Assist wraps the Gemini body as {"model", "project", "request": {…}}.
    inner = body.get("request")
    if "contents" not in body and isinstance(inner, Mapping):
        return inner
    return body


def _decode_system(value: Any) -> list[ir.Text]:
    if isinstance(value, str):
        return [ir.Text(value)] if value else []
    texts = [field(p, "text") for p in field(value, "parts", [])]
    return [ir.Text(t) for t in texts if isinstance(t, str) and t]


class _Contents:
    """Decodes `contents`, pairing functionResponses with the calls they answer."""

    def __init__(self) -> None:
        # Calls not yet answered, per tool name, oldest first.
        self._pending: dict[str, deque[str]] = {}
        self._msg_index = 0
        self._part_index = 0

    def decode(self, contents: Any) -> list[ir.Message]:
        messages: list[ir.Message] = []
        for self._msg_index, content in enumerate(contents if isinstance(contents, list) else []):
            role = "assistant" if field(content, "role") == "model" else "user"
            parts: list[ir.Part] = []
            for self._part_index, part in enumerate(field(content, "parts", [])):
                if isinstance(part, Mapping):
                    parts += self._part(part)
            if parts:
                messages.append(ir.Message(role, parts))
        return messages

    def _part(self, part: Mapping[str, Any]) -> list[ir.Part]:
        for key, handler in _PART_DECODERS.items():
            value = field(part, key)
            if value is not None:
                return handler(self, value, part)
        return []  # executableCode, codeExecutionResult, videoMetadata …: no neutral meaning

    def _text(self, text: Any, part: Mapping[str, Any]) -> list[ir.Part]:
        if not isinstance(text, str):
            return []
        if field(part, "thought") is True:
            signature = field(part, "thoughtSignature", "")
            if not text and not signature:
                return []
            return [ir.Thinking(text=text, signature=signature, origin="gemini")]
        # A thoughtSignature on a plain text part has no IR home and is optional to echo.
        return [ir.Text(text)] if text else []

    def _inline(self, blob: Any, part: Mapping[str, Any]) -> list[ir.Part]:
        data = string_field(blob, "data")
        if not data:
            return []
        return [ir.Image(media_type=string_field(blob, "mimeType") or _DEFAULT_MIME, data=data)]

    def _file(self, ref: Any, part: Mapping[str, Any]) -> list[ir.Part]:
        uri = string_field(ref, "fileUri")
        return [ir.Image(media_type=string_field(ref, "mimeType"), url=uri)] if uri else []

    def _call(self, call: Any, part: Mapping[str, Any]) -> list[ir.Part]:
        name = str(field(call, "name", ""))
        call_id = string_field(call, "id") or synth_call_id(f"m{self._msg_index}", self._part_index, name)
        self._pending.setdefault(name, deque()).append(call_id)
        return [
            ir.ToolCall(
                id=call_id,
                name=name,
                arguments=_args_object(field(call, "args")),
                signature=field(part, "thoughtSignature", ""),
                origin="gemini",
            )
        ]

    def _response(self, resp: Any, part: Mapping[str, Any]) -> list[ir.Part]:
        name = str(field(resp, "name", ""))
        call_id = self._match_call(name, field(resp, "id"))
        payload = field(resp, "response", {})
        is_error = isinstance(payload, Mapping) and "error" in payload and len(payload) == 1
        content: list[ir.Text | ir.Image] = [ir.Text(_response_text(payload))]
        for sub in field(resp, "parts", []):
            content += [p for p in self._part(sub) if isinstance(p, ir.Image)] if isinstance(sub, Mapping) else []
        return [ir.ToolResult(call_id=call_id, content=content, is_error=is_error, name=name)]

    def _match_call(self, name: str, given_id: Any) -> str:
        pending = self._pending.get(name)
        if given_id:
            if pending and given_id in pending:
                pending.remove(given_id)
            return str(given_id)
        if pending:
            return pending.popleft()
        # An answer to a call we never saw: still give it a stable id.
        return synth_call_id(f"m{self._msg_index}", self._part_index, name)


_PART_DECODERS: dict[str, Callable[[_Contents, Any, Mapping[str, Any]], list[ir.Part]]] = {
    "text": _Contents._text,
    "functionCall": _Contents._call,
    "functionResponse": _Contents._response,
    "inlineData": _Contents._inline,
    "fileData": _Contents._file,
}


def _args_object(args: Any) -> dict[str, Any]:
    if isinstance(args, Mapping):
        return copy.deepcopy(dict(args))
    if isinstance(args, str):
        return parse_args(args)
    return {}


def _response_text(payload: Any) -> str:
    """The text a tool returned: a lone string under a conventional key, else the JSON."""
    if isinstance(payload, Mapping):
        for key in ("result", "output", "content", "error"):
            value = payload.get(key)
            if isinstance(value, str) and (key != "error" or len(payload) == 1):
                return value
    if isinstance(payload, str):
        return payload
    return json.dumps(payload, ensure_ascii=False)


def _decode_tools(tools: Any) -> tuple[list[ir.Tool], list[Any]]:
    """(function tools, the other tool entries such as googleSearch, kept verbatim)."""
    out: list[ir.Tool] = []
    others: list[Any] = []
    for entry in tools if isinstance(tools, list) else []:
        decls = field(entry, "functionDeclarations")
        if isinstance(entry, Mapping):
            rest = {k: v for k, v in entry.items() if _camel_key(k) != "functionDeclarations"}
            if rest:
                others.append(copy.deepcopy(rest))
        for decl in decls if isinstance(decls, list) else []:
            if isinstance(decl, Mapping) and field(decl, "name"):
                out.append(_decode_tool(decl))
    return out, others


def _decode_tool(decl: Mapping[str, Any]) -> ir.Tool:
    tool = ir.Tool(name=str(field(decl, "name")), description=str(field(decl, "description", "")))
    json_schema = field(decl, "parametersJsonSchema")
    if isinstance(json_schema, Mapping):
        tool.parameters = copy.deepcopy(dict(json_schema))
    elif isinstance(field(decl, "parameters"), Mapping):
        tool.parameters = to_json_schema(field(decl, "parameters"))
    return tool


def _decode_tool_config(config: Any) -> tuple[ir.ToolChoice | None, list[str]]:
    """(tool choice, allowedFunctionNames the IR can't express: ANY with several names)."""
    fcc = field(config, "functionCallingConfig")
    mode = str(field(fcc, "mode", "")).upper()
    if not mode:
        return None, []
    allowed = [n for n in field(fcc, "allowedFunctionNames", []) if isinstance(n, str)]
    if mode == "ANY":
        if len(allowed) == 1:
            return ir.ToolChoice("tool", allowed[0]), []
        return ir.ToolChoice("required"), allowed
    if mode == "NONE":
        return ir.ToolChoice("none"), []
    return ir.ToolChoice("auto"), []  # AUTO, VALIDATED and unknown modes


def _decode_generation(config: Any, req: ir.Request) -> None:
    if not isinstance(config, Mapping):
        return
    req.max_tokens = _int_or_none(field(config, "maxOutputTokens"))
    req.temperature = _float_or_none(field(config, "temperature"))
    req.top_p = _float_or_none(field(config, "topP"))
    req.top_k = _int_or_none(field(config, "topK"))
    stops = field(config, "stopSequences", [])
    req.stop = [s for s in stops if isinstance(s, str)] if isinstance(stops, list) else []
    req.reasoning = _decode_thinking(field(config, "thinkingConfig"))
    rest = {k: copy.deepcopy(v) for k, v in config.items() if _camel_key(k) not in _NEUTRAL_GENERATION_KEYS}
    if rest:
        req.extra.setdefault("gemini", {})["generationConfig"] = rest


def _decode_thinking(config: Any) -> ir.Reasoning | None:
    if not isinstance(config, Mapping):
        return None
    budget = _int_or_none(field(config, "thinkingBudget"))
    level = field(config, "thinkingLevel")
    return ir.Reasoning(
        # -1 asks for a dynamic budget: the IR's "no explicit budget".
        budget_tokens=budget if budget is not None and budget >= 0 else None,
        effort=str(level).lower() if isinstance(level, str) and level else None,
        include_thoughts=field(config, "includeThoughts") is True,
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# --- encode ------------------------------------------------------------------------


def encode_request(req: ir.Request, model: str) -> dict[str, Any]:
    """A generateContent body (no model key: it goes in the URL) for ``model``."""
    extra = req.extra.get("gemini", {})
    body: dict[str, Any] = {
        k: copy.deepcopy(v) for k, v in extra.items() if k not in ("tools", "allowedFunctionNames", "generationConfig")
    }
    body["contents"] = _Encoder(req, model).contents()
    if req.system:
        body["systemInstruction"] = {"parts": [{"text": t.text} for t in req.system if t.text]}
    tools = _encode_tools(req.tools, extra.get("tools", []))
    if tools:
        body["tools"] = tools
    tool_config = _encode_tool_choice(req.tool_choice, extra.get("allowedFunctionNames", []))
    if tool_config:
        body["toolConfig"] = tool_config
    generation = _encode_generation(req, model, extra.get("generationConfig", {}))
    if generation:
        body["generationConfig"] = generation
    return body


def _bare_model(model: str) -> str:
    return model.rsplit("/", 1)[-1].lower()


class _Encoder:
    """Builds `contents`, tracking what tool results need from the calls before them."""

    def __init__(self, req: ir.Request, model: str) -> None:
        self._req = req
        self._wants_sentinel = _bare_model(model).startswith("gemini-3")
        self._names = {p.id: p.name for m in req.messages for p in m.parts if isinstance(p, ir.ToolCall)}
        # Calls whose id we sent; their functionResponse carries the id back.
        self._sent_ids: set[str] = set()
        self._pending_signature = ""

    def contents(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for msg in self._req.messages:
            role = "model" if msg.role == "assistant" else "user"
            parts = [p for part in msg.parts for p in self._part(part)]
            if not parts:
                continue
            if out and out[-1]["role"] == role:
                out[-1]["parts"] += parts  # Gemini wants turns to alternate
            else:
                out.append({"role": role, "parts": parts})
        return out

    def _part(self, part: ir.Part) -> list[dict[str, Any]]:
        return _PART_ENCODERS[type(part)](self, part)

    def _text(self, part: ir.Text) -> list[dict[str, Any]]:
        return [{"text": part.text}] if part.text else []

    def _image(self, part: ir.Image) -> list[dict[str, Any]]:
        return [_image_part(part)] if part.data or part.url else []

    def _thinking(self, part: ir.Thinking) -> list[dict[str, Any]]:
        # Another vendor's thinking can't be replayed: its signature means nothing here.
        if part.origin != "gemini" or (not part.text and not part.signature):
            return []
        out: dict[str, Any] = {"text": part.text, "thought": True}
        if part.signature:
            out["thoughtSignature"] = part.signature
        return [out]

    def _call(self, part: ir.ToolCall) -> list[dict[str, Any]]:
        call: dict[str, Any] = {"name": part.name, "args": part.arguments}
        out: dict[str, Any] = {"functionCall": call}
        if part.origin == "gemini":
            if part.id:
                call["id"] = part.id
                self._sent_ids.add(part.id)
            if part.signature:
                out["thoughtSignature"] = part.signature
        elif self._wants_sentinel:
            out["thoughtSignature"] = SKIP_SIGNATURE_SENTINEL
        return [out]

    def _result(self, part: ir.ToolResult) -> list[dict[str, Any]]:
        text = "".join(c.text for c in part.content if isinstance(c, ir.Text))
        resp: dict[str, Any] = {
            "name": part.name or self._names.get(part.call_id) or "unknown_tool",
            "response": {"error" if part.is_error else "content": text},
        }
        if part.call_id in self._sent_ids:
            resp["id"] = part.call_id
        # Images go beside the functionResponse: only newest models take them inside it.
        images = [_image_part(c) for c in part.content if isinstance(c, ir.Image) and (c.data or c.url)]
        return [{"functionResponse": resp}, *images]


_PART_ENCODERS: dict[type, Callable[[_Encoder, Any], list[dict[str, Any]]]] = {
    ir.Text: _Encoder._text,
    ir.Image: _Encoder._image,
    ir.Thinking: _Encoder._thinking,
    ir.ToolCall: _Encoder._call,
    ir.ToolResult: _Encoder._result,
}


def _image_part(image: ir.Image) -> dict[str, Any]:
    if image.data:
        return {"inlineData": {"mimeType": image.media_type or _DEFAULT_MIME, "data": image.data}}
    inline = _from_data_url(image.url)
    if inline is not None:
        return {"inlineData": inline}
    mime = image.media_type or mimetypes.guess_type(image.url.split("?", 1)[0])[0] or _DEFAULT_MIME
    return {"fileData": {"mimeType": mime, "fileUri": image.url}}


def _from_data_url(url: str) -> dict[str, str] | None:
    """A `data:` URL (OpenAI clients send images so) as inlineData, when it is base64."""
    match = _DATA_URL.match(url)
    if match is None:
        return None
    return {"mimeType": match.group(1) or _DEFAULT_MIME, "data": match.group(2)}


def _encode_tools(tools: list[ir.Tool], others: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if tools:
        out.append({"functionDeclarations": [_encode_tool(t) for t in tools]})
    out += [copy.deepcopy(o) for o in others]
    return out


def _encode_tool(tool: ir.Tool) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": tool.name}
    if tool.description:
        decl["description"] = tool.description
    params = clean_schema(tool.parameters)
    # A parameterless function is declared without `parameters`: Gemini rejects
    # an OBJECT schema with empty properties.
    if params.get("properties"):
        decl["parameters"] = params
    return decl


def _encode_tool_choice(choice: ir.ToolChoice | None, allowed: list[str]) -> dict[str, Any] | None:
    if choice is None:
        return None
    config: dict[str, Any] = {"mode": _CHOICE_MODES.get(choice.mode, "AUTO")}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    elif choice.mode == "required" and allowed:
        config["allowedFunctionNames"] = list(allowed)
    return {"functionCallingConfig": config}


_CHOICE_MODES = {"auto": "AUTO", "required": "ANY", "tool": "ANY", "none": "NONE"}


def _encode_generation(req: ir.Request, model: str, rest: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = copy.deepcopy(dict(rest))
    neutral = {
        "maxOutputTokens": req.max_tokens,
        "stopSequences": list(req.stop) or None,
        "temperature": req.temperature,
        "topP": req.top_p,
        "topK": req.top_k,
        "thinkingConfig": _encode_thinking(req.reasoning, model),
    }
    config.update((k, v) for k, v in neutral.items() if v is not None)
    return config


def _encode_thinking(reasoning: ir.Reasoning | None, model: str) -> dict[str, Any] | None:
    if reasoning is None:
        return None
    config: dict[str, Any] = {}
    if reasoning.budget_tokens is not None:
        config["thinkingBudget"] = reasoning.budget_tokens
    elif reasoning.effort is not None:
        effort = reasoning.effort.lower()
        if _bare_model(model).startswith("gemini-3"):
            config["thinkingLevel"] = _GEMINI3_LEVELS.get(effort, effort)
        else:
            config["thinkingBudget"] = EFFORT_BUDGETS.get(effort, EFFORT_BUDGETS["medium"])
    thinking_on = config.get("thinkingBudget") != 0
    config["includeThoughts"] = thinking_on and reasoning.include_thoughts
    return config
