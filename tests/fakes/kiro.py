"""A fake Kiro: AWS SSO-OIDC, Kiro's social refresh and CodeWhisperer's chat API.

`FakeKiro` is a real HTTP/1.1 server on 127.0.0.1 (ephemeral port). Its
`upstreams` property is the `upstreams.kiro` config pointing every Kiro URL
at it. Routes:

* `POST /client/register` (SSO-OIDC RegisterClient): JSON `{clientName,
  clientType: "public", scopes: ["codewhisperer:…", …]}` -> `{clientId,
  clientSecret, clientIdIssuedAt, clientSecretExpiresAt}`.
* `POST /device_authorization` (StartDeviceAuthorization): `{clientId,
  clientSecret, startUrl}` (startUrl must be `start_url`, Builder ID's by
  default) -> `{deviceCode, userCode, verificationUri,
  verificationUriComplete, expiresIn, interval}`.
* `POST /token` (CreateToken), JSON camelCase:
  - `grantType: urn:ietf:params:oauth:grant-type:device_code` with
    `deviceCode`: HTTP 400 `{"error": "authorization_pending"}` for the first
    `pending_polls` polls, then `slow_down` once (if `slow_down`), then the
    tokens when approved (`auto_approve`, or `approve(user_code)`), else
    pending again. `deny(user_code)` -> `access_denied`; `expire(user_code)`
    or `device_expires_in` elapsed -> `expired_token`. A granted code is
    spent (`invalid_grant` after).
  - `grantType: refresh_token`: new access token, and a new refresh token
    when `rotate_refresh` (the old one then answers `invalid_grant`), none
    in the answer otherwise. `revoke(refresh_token)` kills one.
  Every answer carries `{accessToken, refreshToken?, expiresIn, tokenType}`;
  errors are HTTP 400 `{"error", "error_description"}` like AWS's.
* `POST /refreshToken` (Kiro social refresh): `{"refreshToken"}` of a token
  from `add_social_refresh_token` -> `{accessToken, refreshToken (rotated),
  profileArn, expiresIn}`; unknown -> 401 `{"message": …}`.
* `POST /generateAssistantResponse`: checks what Kiro's IDE sends:
  `authorization: Bearer <token>` for a token issued above or added with
  `add_token` (else 403 "The bearer token included in the request is
  invalid."), `x-amz-target: AmazonCodeWhispererStreamingService.
  GenerateAssistantResponse` (else 403), `content-type:
  application/x-amz-json-1.0`, `amz-sdk-invocation-id` (a UUID),
  `amz-sdk-request`, `x-amz-user-agent: aws-sdk-js/<v> KiroIDE-<v>-<64 hex>`
  and a `user-agent` naming the same KiroIDE version and machine id (else
  400). The body must be a `conversationState` with a `currentMessage`
  user message whose `content` is not blank and whose `modelId` is in
  `models` and `origin` is `AI_EDITOR`; `history` alternating user /
  assistant from the user; no toolUseId twice; every toolResult answering
  an earlier toolUse once; every tool called in the history defined in the
  current message's tools; descriptions within 10240 characters; images
  png/jpeg/gif/webp in base64. A social token also needs `profileArn` ==
  `profile_arn` (403 otherwise). Violations: 400 `{"message", "reason"}`.

  The answer is `application/vnd.amazon.eventstream`, one frame per HTTP
  chunk, each with correct CRCs: the thinking (`thinking`) as
  `<thinking>…</thinking>` text cut mid-tag (`thinking_style="tags"`) or as
  `reasoningContentEvent`s (`"events"`, the last one signed), then
  `reply_text` one `assistantResponseEvent` per word, then each of
  `tool_calls` ({"name", "arguments", "id"?}) as `toolUseEvent`s carrying
  the arguments JSON cut at its thirds and a final `stop: true`, then a
  `meteringEvent`, and the usage events named in `usage_events`:
  `contextUsageEvent` (prompt tokens as a percentage of 200k) and
  `metricsEvent` `{"tokenUsage": {uncachedInputTokens, cacheReadInputTokens,
  cacheWriteInputTokens, outputTokens}}`.

Token counts follow tests/fakes/upstreams.py: prompt = words in every
`content` and tool result text of the conversation (the `<thinking_mode>`
request prefix not counted), cached = min(`cached_tokens`, prompt), output
= words of `reply_text` and `thinking` + 5 per tool call.

`seed_account()` returns the fields of a logged-in Builder ID account
(tokens issued by this fake, so refresh works) for seeding auth files.
`slow_down=False` spares end-to-end logins the 5 s the client adds after it.

On demand: `reject_once(token, status=401)` (the next call with that token
fails once; 403 is how Kiro really refuses an expired token), `fail_next(status, body=None, times=1)` (a JSON error; default
body `{"message", "reason": null}`), `quota_next(status=402)` (reason
`MONTHLY_REQUEST_COUNT`), `stream_error_next(kind)` with kind `"exception"`
(a `ThrottlingException` frame after the first text event), `"corrupt"` (a
frame with a bad CRC) or `"truncate"` (half a frame, then the body ends).
Requests are captured (`requests`, `last`, `clear()`), with lower-cased
header names.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from quotio_core.formats import eventstream
from tests.fakes.served import Served
from tests.fakes.upstreams import TOOL_CALL_TOKENS, Captured, ToolCall, split_json, split_reply

DEFAULT_REPLY = "Hello from Kiro fake"
DEFAULT_TOKEN = "kiro-access-token-0001"
PROFILE_ARN = "arn:aws:codewhisperer:us-east-1:111122223333:profile/FAKEPROFILE"
BUILDER_ID_START_URL = "https://view.awsapps.com/start"
TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CONTEXT_WINDOW = 200_000
MAX_DESCRIPTION = 10_240
MODELS = (
    "auto",
    "claude-sonnet-4.5",
    "claude-sonnet-4",
    "claude-haiku-4.5",
    "claude-opus-4.5",
    "CLAUDE_3_7_SONNET_20250219_V1_0",
)
_BAD_TOKEN = "The bearer token included in the request is invalid."
_THINKING_MODE = re.compile(r"<thinking_mode>\w+</thinking_mode><max_thinking_length>\d+</max_thinking_length>")
_X_AMZ_UA = re.compile(r"^aws-sdk-js/\S+ KiroIDE-(?P<version>[^-\s]+)-(?P<machine>[0-9a-f]{64})$")


class _Reject(Exception):
    """A request the fake refuses: status and Kiro-style JSON body."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(body.get("message") or body.get("error"))
        self.status = status
        self.body = body


def _kiro_error(status: int, message: str, reason: str | None = None) -> _Reject:
    return _Reject(status, {"message": message, "reason": reason})


def _oidc_error(code: str, description: str, status: int = 400) -> _Reject:
    return _Reject(status, {"error": code, "error_description": description})


@dataclass
class _Device:
    client_id: str
    device_code: str
    user_code: str
    expires_at: float
    pending: int
    slow_down: bool
    approved: bool = False
    denied: bool = False
    spent: bool = False


@dataclass
class _Refresh:
    client_id: str  # "" for social tokens
    social: bool


@dataclass
class _Programmed:
    status: int
    body: dict[str, Any] | None
    remaining: int


@dataclass
class _State:
    clients: dict[str, str] = field(default_factory=dict)  # clientId -> clientSecret
    devices: dict[str, _Device] = field(default_factory=dict)  # deviceCode -> device
    refresh: dict[str, _Refresh] = field(default_factory=dict)  # live refresh tokens
    tokens: dict[str, bool] = field(default_factory=dict)  # access token -> social?
    reject: dict[str, int] = field(default_factory=dict)  # token -> status, once
    failures: list[_Programmed] = field(default_factory=list)
    stream_errors: list[str] = field(default_factory=list)
    requests: list[Captured] = field(default_factory=list)


class FakeKiro(Served):
    """See the module docstring; attributes may be changed while it runs."""

    def __init__(self, reply_text: str = DEFAULT_REPLY, *, token: str = DEFAULT_TOKEN) -> None:
        self.reply_text = reply_text
        self.thinking = ""
        self.thinking_style = "tags"
        self.tool_calls: list[dict] = []
        self.usage_events: tuple[str, ...] = ("context", "metrics")
        self.cached_tokens = 0
        self.stream_delay = 0.0
        self.models = set(MODELS)
        self.profile_arn = PROFILE_ARN
        self.start_url = BUILDER_ID_START_URL
        # Device flow behaviour for codes issued from now on.
        self.pending_polls = 2
        self.slow_down = True
        self.auto_approve = True
        self.device_expires_in = 600
        self.token_expires_in = 3600
        self.rotate_refresh = True
        self._lock = threading.Lock()
        self._state = _State()
        self._state.tokens[token] = False


    @property
    def upstreams(self) -> dict[str, str]:
        return {
            "base-url": self.url,
            "oidc-url": self.url,
            "social-refresh-url": self.url + "/refreshToken",
        }

    # -- capture ----------------------------------------------------------------

    @property
    def requests(self) -> list[Captured]:
        with self._lock:
            return list(self._state.requests)

    @property
    def last(self) -> Captured | None:
        with self._lock:
            return self._state.requests[-1] if self._state.requests else None

    def api_requests(self) -> list[Captured]:
        return [r for r in self.requests if r.path == "/generateAssistantResponse"]

    def clear(self) -> None:
        """Forget captured requests and pending failures (accounts and tokens stay)."""
        with self._lock:
            self._state.requests.clear()
            self._state.failures.clear()
            self._state.stream_errors.clear()
            self._state.reject.clear()

    # -- accounts ---------------------------------------------------------------

    def add_token(self, token: str, social: bool = False) -> None:
        with self._lock:
            self._state.tokens[token] = social

    def seed_account(self) -> dict[str, Any]:
        """A Builder ID account as a finished login leaves it: an auth file's fields."""
        reg = self.register({"clientName": "seed", "clientType": "public", "scopes": ["codewhisperer:completions"]})
        with self._lock:
            access, refresh = self._issue(reg["clientId"], social=False)
        return {
            "type": "kiro",
            "accessToken": access,
            "refreshToken": refresh,
            "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.token_expires_in)),
            "authMethod": "builder-id",
            "clientId": reg["clientId"],
            "clientSecret": reg["clientSecret"],
            "region": "us-east-1",
        }

    def add_social_refresh_token(self, refresh_token: str) -> None:
        with self._lock:
            self._state.refresh[refresh_token] = _Refresh("", True)

    def token_valid(self, token: str) -> bool:
        with self._lock:
            return token in self._state.tokens

    def refresh_valid(self, refresh_token: str) -> bool:
        with self._lock:
            return refresh_token in self._state.refresh

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._state.refresh.pop(refresh_token, None)

    def _device_by_user_code(self, user_code: str) -> _Device:
        for dev in self._state.devices.values():
            if dev.user_code == user_code:
                return dev
        raise KeyError(user_code)

    def approve(self, user_code: str) -> None:
        with self._lock:
            self._device_by_user_code(user_code).approved = True

    def deny(self, user_code: str) -> None:
        with self._lock:
            self._device_by_user_code(user_code).denied = True

    def expire(self, user_code: str) -> None:
        with self._lock:
            self._device_by_user_code(user_code).expires_at = 0

    # -- failures ---------------------------------------------------------------

    def reject_once(self, token: str, status: int = 401) -> None:
        with self._lock:
            self._state.reject[token] = status

    def fail_next(self, status: int, body: dict[str, Any] | None = None, times: int = 1) -> None:
        with self._lock:
            self._state.failures.append(_Programmed(status, body, times))

    def quota_next(self, status: int = 402, times: int = 1) -> None:
        body = {"message": "You have reached the limit for this month.", "reason": "MONTHLY_REQUEST_COUNT"}
        self.fail_next(status, body, times)

    def stream_error_next(self, kind: str) -> None:
        if kind not in ("exception", "corrupt", "truncate"):
            raise ValueError(f"unknown stream error {kind!r}")
        with self._lock:
            self._state.stream_errors.append(kind)

    # -- used by the handler ----------------------------------------------------

    def _record(self, req: Captured) -> None:
        with self._lock:
            self._state.requests.append(req)

    def _take_failure(self) -> _Programmed | None:
        with self._lock:
            if not self._state.failures:
                return None
            failure = self._state.failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._state.failures.pop(0)
            return failure

    def _take_stream_error(self) -> str | None:
        with self._lock:
            return self._state.stream_errors.pop(0) if self._state.stream_errors else None

    def _issue(self, client_id: str, social: bool) -> tuple[str, str]:
        access = "kiro-at-" + uuid.uuid4().hex
        refresh = "kiro-rt-" + uuid.uuid4().hex
        self._state.tokens[access] = social
        self._state.refresh[refresh] = _Refresh(client_id, social)
        return access, refresh

    # -- SSO-OIDC ---------------------------------------------------------------

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("clientType") != "public" or not str(body.get("clientName") or "").strip():
            raise _oidc_error("invalid_request", "clientName and clientType public are required")
        scopes = body.get("scopes")
        if not isinstance(scopes, list) or not any(str(s).startswith("codewhisperer:") for s in scopes):
            raise _oidc_error("invalid_scope", "codewhisperer scopes are required")
        client_id, secret = "kiro-client-" + uuid.uuid4().hex[:12], "kiro-secret-" + uuid.uuid4().hex
        now = int(time.time())
        with self._lock:
            self._state.clients[client_id] = secret
        return {
            "clientId": client_id,
            "clientSecret": secret,
            "clientIdIssuedAt": now,
            "clientSecretExpiresAt": now + 90 * 86400,
        }

    def _check_client(self, body: dict[str, Any]) -> str:
        client_id = str(body.get("clientId") or "")
        if not client_id or self._state.clients.get(client_id) != body.get("clientSecret"):
            raise _oidc_error("invalid_client", "unknown client or wrong secret", 401)
        return client_id

    def device_authorization(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            client_id = self._check_client(body)
            if body.get("startUrl") != self.start_url:
                raise _oidc_error("invalid_request", f"unknown startUrl {body.get('startUrl')!r}")
            code = "kiro-dc-" + uuid.uuid4().hex
            user_code = f"{uuid.uuid4().hex[:4]}-{uuid.uuid4().hex[:4]}".upper()
            self._state.devices[code] = _Device(
                client_id, code, user_code, time.time() + self.device_expires_in,
                self.pending_polls, self.slow_down, approved=self.auto_approve,
            )
        return {
            "deviceCode": code,
            "userCode": user_code,
            "verificationUri": f"{self.url}/device",
            "verificationUriComplete": f"{self.url}/device?user_code={user_code}",
            "expiresIn": self.device_expires_in,
            "interval": 1,
        }

    def create_token(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            client_id = self._check_client(body)
            grant = body.get("grantType")
            if grant == DEVICE_GRANT:
                return self._device_token(client_id, str(body.get("deviceCode") or ""))
            if grant == "refresh_token":
                return self._refresh_token(client_id, str(body.get("refreshToken") or ""))
            raise _oidc_error("unsupported_grant_type", f"grantType {grant!r} is not supported")

    def _device_token(self, client_id: str, device_code: str) -> dict[str, Any]:
        dev = self._state.devices.get(device_code)
        if dev is None or dev.client_id != client_id or dev.spent:
            raise _oidc_error("invalid_grant", "unknown or used device code")
        if time.time() >= dev.expires_at:
            raise _oidc_error("expired_token", "the device code has expired")
        if dev.denied:
            raise _oidc_error("access_denied", "the user denied the request")
        if dev.pending > 0:
            dev.pending -= 1
            raise _oidc_error("authorization_pending", "the user has not approved yet")
        if dev.slow_down:
            dev.slow_down = False
            raise _oidc_error("slow_down", "polling too fast")
        if not dev.approved:
            raise _oidc_error("authorization_pending", "the user has not approved yet")
        dev.spent = True
        access, refresh = self._issue(client_id, social=False)
        return {"accessToken": access, "refreshToken": refresh, "expiresIn": self.token_expires_in, "tokenType": "Bearer"}

    def _refresh_token(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        rt = self._state.refresh.get(refresh_token)
        if rt is None or rt.social or rt.client_id != client_id:
            raise _oidc_error("invalid_grant", "the refresh token is invalid, expired or revoked")
        access, new_refresh = self._issue(client_id, social=False)
        out: dict[str, Any] = {"accessToken": access, "expiresIn": self.token_expires_in, "tokenType": "Bearer"}
        if self.rotate_refresh:
            del self._state.refresh[refresh_token]
            out["refreshToken"] = new_refresh
        else:
            del self._state.refresh[new_refresh]
        return out

    def social_refresh(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            old = str(body.get("refreshToken") or "")
            rt = self._state.refresh.get(old)
            if rt is None or not rt.social:
                raise _kiro_error(401, "Invalid refresh token provided.")
            access, new_refresh = self._issue("", social=True)
            del self._state.refresh[old]
        return {
            "accessToken": access,
            "refreshToken": new_refresh,
            "profileArn": self.profile_arn,
            "expiresIn": self.token_expires_in,
        }

    # -- generateAssistantResponse ------------------------------------------------

    def check_api(self, req: Captured) -> bool:
        """Validate one chat request; raises _Reject. Returns whether the token is social."""
        h = req.headers
        auth = h.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            social = self._state.tokens.get(token)
            once = self._state.reject.pop(token, None) if token else None
        if social is None:
            raise _kiro_error(403, _BAD_TOKEN)
        if once is not None:
            raise _kiro_error(once, _BAD_TOKEN)
        if h.get("x-amz-target") != TARGET:
            raise _kiro_error(403, f"x-amz-target must be {TARGET}")
        if h.get("content-type") != "application/x-amz-json-1.0":
            raise _kiro_error(400, "content-type must be application/x-amz-json-1.0")
        try:
            uuid.UUID(h.get("amz-sdk-invocation-id", ""))
        except ValueError:
            raise _kiro_error(400, "amz-sdk-invocation-id must be a UUID") from None
        if not re.fullmatch(r"attempt=\d+; max=\d+", h.get("amz-sdk-request", "")):
            raise _kiro_error(400, "amz-sdk-request must be 'attempt=N; max=M'")
        ua = _X_AMZ_UA.match(h.get("x-amz-user-agent", ""))
        if ua is None:
            raise _kiro_error(400, "x-amz-user-agent must be 'aws-sdk-js/<v> KiroIDE-<v>-<machine id>'")
        if f"KiroIDE-{ua['version']}-{ua['machine']}" not in h.get("user-agent", ""):
            raise _kiro_error(400, "user-agent must name the same KiroIDE version and machine id")
        body = req.json
        if not isinstance(body, dict):
            raise _kiro_error(400, "Improperly formed request.")
        _check_conversation(body, self.models)
        if social and body.get("profileArn") != self.profile_arn:
            raise _kiro_error(403, "profileArn is required for this token and must be the account's")
        return social

    def frames(self, body: dict[str, Any], error: str | None) -> Iterator[bytes]:
        state = body["conversationState"]
        text, thinking = self.reply_text, self.thinking
        calls = [_tool(spec) for spec in list(self.tool_calls)]
        prompt = _prompt_words(state)
        cached = min(self.cached_tokens, prompt)
        output = len(text.split()) + len(thinking.split()) + TOOL_CALL_TOKENS * len(calls)
        events: list[bytes] = []
        if thinking and self.thinking_style == "events":
            pieces = split_reply(thinking)
            for i, piece in enumerate(pieces):
                payload: dict[str, Any] = {"text": piece}
                if i == len(pieces) - 1:
                    payload["signature"] = "kiro-sig-" + uuid.uuid4().hex[:12]
                events.append(_event("reasoningContentEvent", payload))
        elif thinking:
            tagged = f"<thinking>{thinking}</thinking>\n\n"
            # Five-character pieces cut the tags themselves apart.
            for i in range(0, len(tagged), 5):
                events.append(_event("assistantResponseEvent", {"content": tagged[i : i + 5]}))
        for piece in split_reply(text):
            events.append(_event("assistantResponseEvent", {"content": piece}))
            if error == "exception":
                events.append(
                    eventstream.exception("ThrottlingException", _json({"message": "Too many requests, slow down."}))
                )
                yield from events
                return
        for call in calls:
            call_id = call.id or "tooluse_" + uuid.uuid4().hex[:22]
            for piece in split_json(call.arguments_json):
                events.append(_event("toolUseEvent", {"toolUseId": call_id, "name": call.name, "input": piece}))
            events.append(_event("toolUseEvent", {"toolUseId": call_id, "name": call.name, "stop": True}))
        events.append(_event("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.01}))
        if "context" in self.usage_events:
            events.append(_event("contextUsageEvent", {"contextUsagePercentage": prompt * 100 / CONTEXT_WINDOW}))
        if "metrics" in self.usage_events:
            usage = {
                "uncachedInputTokens": prompt - cached,
                "cacheReadInputTokens": cached,
                "cacheWriteInputTokens": 0,
                "outputTokens": output,
            }
            events.append(_event("metricsEvent", {"tokenUsage": usage}))
        if error == "corrupt" and events:
            bad = bytearray(events[0])
            bad[-1] ^= 0xFF
            events[0] = bytes(bad)
        if error == "truncate" and events:
            events[-1] = events[-1][: len(events[-1]) // 2]
        yield from events


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return eventstream.event(name, _json(payload))


def _tool(spec: dict | ToolCall) -> ToolCall:
    if isinstance(spec, ToolCall):
        return spec
    return ToolCall(spec["name"], dict(spec.get("arguments") or {}), spec.get("id"))


def _prompt_words(node: Any) -> int:
    if isinstance(node, str):
        return len(_THINKING_MODE.sub(" ", node).split())
    if isinstance(node, list):
        return sum(_prompt_words(v) for v in node)
    if isinstance(node, dict):
        # Only text counts: roles, ids, model ids, schemas and image bytes do not.
        return sum(
            _prompt_words(v)
            for k, v in node.items()
            if k in ("content", "text") or (isinstance(v, (dict, list)) and k not in ("tools", "images", "input"))
        )
    return 0


def _check_user(msg: Any, where: str, models: set[str], current: bool) -> None:
    if not isinstance(msg, dict):
        raise _kiro_error(400, f"{where}: userInputMessage must be an object")
    content = msg.get("content")
    if not isinstance(content, str) or not content.strip():
        raise _kiro_error(400, f"{where}: content must not be empty")
    if msg.get("modelId") not in models:
        raise _kiro_error(400, "Invalid model. Please select a different model to continue.", "INVALID_MODEL_ID")
    if msg.get("origin") != "AI_EDITOR":
        raise _kiro_error(400, f"{where}: origin must be AI_EDITOR")
    for img in msg.get("images") or []:
        if img.get("format") not in ("png", "jpeg", "gif", "webp"):
            raise _kiro_error(400, f"{where}: unsupported image format {img.get('format')!r}")
        try:
            base64.b64decode((img.get("source") or {}).get("bytes") or "", validate=True)
        except (binascii.Error, ValueError):
            raise _kiro_error(400, f"{where}: image bytes must be base64") from None
    ctx = msg.get("userInputMessageContext") or {}
    if not current and "tools" in ctx:
        raise _kiro_error(400, f"{where}: tools belong in the current message only")


def _check_conversation(body: dict[str, Any], models: set[str]) -> None:
    state = body.get("conversationState")
    if not isinstance(state, dict):
        raise _kiro_error(400, "Improperly formed request.")
    if state.get("chatTriggerType") not in ("MANUAL", "AUTO") or not state.get("conversationId"):
        raise _kiro_error(400, "chatTriggerType and conversationId are required")
    current = (state.get("currentMessage") or {}).get("userInputMessage")
    calls: set[str] = set()
    answered: set[str] = set()
    used_tools: set[str] = set()

    def results(msg: dict[str, Any], where: str) -> None:
        for res in (msg.get("userInputMessageContext") or {}).get("toolResults") or []:
            call_id = res.get("toolUseId")
            if call_id not in calls or call_id in answered:
                raise _kiro_error(400, f"{where}: toolResult {call_id!r} answers no earlier toolUse")
            if res.get("status") not in ("success", "error") or not isinstance(res.get("content"), list):
                raise _kiro_error(400, f"{where}: toolResult needs status and content")
            answered.add(call_id)

    history = state.get("history") or []
    if not isinstance(history, list) or len(history) % 2:
        raise _kiro_error(400, "history must alternate user and assistant, starting with the user")
    for i, entry in enumerate(history):
        where = f"history[{i}]"
        want = "userInputMessage" if i % 2 == 0 else "assistantResponseMessage"
        if not isinstance(entry, dict) or list(entry) != [want]:
            raise _kiro_error(400, f"{where}: expected a {want} (history must alternate, starting with the user)")
        msg = entry[want]
        if want == "userInputMessage":
            _check_user(msg, where, models, current=False)
            results(msg, where)
            continue
        if not isinstance(msg.get("content"), str) or not msg["content"]:
            raise _kiro_error(400, f"{where}: assistant content must not be empty")
        for use in msg.get("toolUses") or []:
            call_id = use.get("toolUseId")
            if not call_id or call_id in calls:
                raise _kiro_error(400, f"{where}: duplicate or missing toolUseId {call_id!r}")
            if not isinstance(use.get("input"), dict):
                raise _kiro_error(400, f"{where}: toolUse input must be an object")
            calls.add(call_id)
            used_tools.add(str(use.get("name")))
    _check_user(current, "currentMessage", models, current=True)
    results(current, "currentMessage")
    defined = set()
    for spec in (current.get("userInputMessageContext") or {}).get("tools") or []:
        ts = spec.get("toolSpecification") or {}
        if not ts.get("name") or not isinstance((ts.get("inputSchema") or {}).get("json"), dict):
            raise _kiro_error(400, "toolSpecification needs a name and inputSchema.json")
        if len(str(ts.get("description") or "")) > MAX_DESCRIPTION:
            raise _kiro_error(400, f"tool {ts['name']!r}: description is too long")
        defined.add(ts["name"])
    if used_tools - defined:
        raise _kiro_error(400, f"tools used in the history are not defined: {sorted(used_tools - defined)}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fake: FakeKiro = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        req = Captured.parse("POST", self.path, self.headers.items(), raw)
        fake._record(req)
        try:
            self._route(fake, req)
        except _Reject as e:
            self._send_json(e.status, e.body)

    def _route(self, fake: FakeKiro, req: Captured) -> None:
        body = req.json if isinstance(req.json, dict) else None
        if req.path == "/generateAssistantResponse":
            self._chat(fake, req)
            return
        if body is None or not req.headers.get("content-type", "").startswith("application/json"):
            raise _oidc_error("invalid_request", "a JSON body is required")
        handlers = {
            "/client/register": fake.register,
            "/device_authorization": fake.device_authorization,
            "/token": fake.create_token,
            "/refreshToken": fake.social_refresh,
        }
        if req.path not in handlers:
            raise _kiro_error(404, f"no route {req.path}")
        self._send_json(200, handlers[req.path](body))

    def _chat(self, fake: FakeKiro, req: Captured) -> None:
        failure = fake._take_failure()
        if failure is not None:
            raise _Reject(failure.status, failure.body or {"message": f"fake Kiro: injected {failure.status}", "reason": None})
        fake.check_api(req)
        frames = fake.frames(req.json, fake._take_stream_error())
        self._send_stream(frames, fake.stream_delay)

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = _json(body)
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-amzn-requestid", str(uuid.uuid4()))
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, frames: Iterable[bytes], delay: float) -> None:
        self.send_response(200)
        self.send_header("content-type", eventstream.CONTENT_TYPE)
        self.send_header("x-amzn-requestid", str(uuid.uuid4()))
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for i, frame in enumerate(frames):
                if i and delay:
                    time.sleep(delay)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


FakeKiro.HANDLER = _Handler
