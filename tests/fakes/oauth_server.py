"""What the fakes of OAuth-logged-in OpenAI-Chat providers share (Copilot, Qwen, iFlow).

`OAuthFake` is a real HTTP/1.1 server on 127.0.0.1 (ephemeral port, a
ThreadingHTTPServer in a daemon thread). A subclass lists its routes in
`ROUTES` ((method, path) -> method name); each route method takes the
`Captured` request and returns a `Reply`. Everything a test may program or
inspect lives on the fake:

* `requests` / `last` / `clear()`: every request as received (`Captured`
  from tests/fakes/upstreams.py), `form` parses a form body.
* `devices`: device codes (`DeviceCode`). A new code is pending for
  `pending_polls` polls, then answers `slow_down` once (if `slow_down`), then
  is granted when approved. With `auto_approve` (default) codes are approved
  at creation; otherwise `approve(user_code)` / `deny(user_code)`.
  `expire(user_code)` (or `device_expires_in = 0`) makes a code expired.
* `tokens`: access and refresh tokens (`TokenBook`). Refresh rotates (the old
  refresh token is then refused with invalid_grant) unless `rotate_refresh`
  is False, in which case the answer carries no refresh token and the old one
  stays valid. `revoke(refresh_token)` kills one; `expire_access(token)`
  makes an access token expired.
* `reject_once(token)`: the chat API answers 401 once for that token.
* `model`: an unstarted `FakeUpstream` whose `reply_text`, `thinking` and
  `tool_calls` program the chat answers, built by the OpenAI Chat builders of
  tests/fakes/upstreams.py (same token counting).
"""

from __future__ import annotations

import json
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qs

from tests.fakes.served import Served
from tests.fakes.upstreams import Captured, FakeUpstream, _sse, openai_chunks, openai_completion, openai_error

__all__ = ["DeviceCode", "OAuthFake", "Reply", "TokenBook", "form"]


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON, str/bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    frames: list[bytes] | None = None  # an SSE answer, one HTTP chunk per frame


def form(req: Captured) -> dict[str, str]:
    """A form body's fields (last value of each), or {} when it is not a form."""
    if "application/x-www-form-urlencoded" not in req.headers.get("content-type", ""):
        return {}
    text = req.body.decode(errors="replace")
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def bearer_of(req: Captured) -> str:
    auth = req.headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else ""


def _user_code() -> str:
    letters = "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


@dataclass
class DeviceCode:
    device_code: str
    user_code: str
    account: str
    pending: int  # polls answered "pending" before anything else
    slow_down: bool  # answer slow_down once after the pending polls
    expires_at: float
    challenge: str = ""  # PKCE S256 challenge, for providers that use it
    status: str = "pending"  # pending | approved | denied | used
    polls: int = 0
    slowed: bool = False

    def poll(self) -> str:
        """pending | slow_down | expired | denied | granted (then the code is used up)."""
        if time.time() >= self.expires_at or self.status == "used":
            return "expired"
        if self.status == "denied":
            return "denied"
        self.polls += 1
        if self.polls <= self.pending:
            return "pending"
        if self.slow_down and not self.slowed:
            self.slowed = True
            return "slow_down"
        if self.status == "approved":
            self.status = "used"
            return "granted"
        return "pending"


@dataclass
class _Access:
    account: str
    expires_at: float


class TokenBook:
    """Issued tokens; thread-safe (handlers run in threads)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self._lock = threading.Lock()
        self.access: dict[str, _Access] = {}
        self.refresh: dict[str, str] = {}  # live refresh token -> account
        self.refreshed = 0

    def new(self, kind: str) -> str:
        return f"{self.prefix}{kind}-{secrets.token_hex(8)}"

    def issue(self, account: str, ttl: float, refresh: bool = True) -> tuple[str, str]:
        access = self.new("at")
        rt = self.new("rt") if refresh else ""
        with self._lock:
            self.access[access] = _Access(account, time.time() + ttl)
            if rt:
                self.refresh[rt] = account
        return access, rt

    def use_refresh(self, rt: str, ttl: float, rotate: bool) -> tuple[str, str] | None:
        """(new access, new refresh or "") for a live refresh token, else None."""
        with self._lock:
            account = self.refresh.get(rt)
            if account is None:
                return None
            if rotate:
                del self.refresh[rt]
            self.refreshed += 1
        access, new_rt = self.issue(account, ttl, refresh=rotate)
        return access, new_rt

    def account_of(self, access: str) -> str | None:
        with self._lock:
            grant = self.access.get(access)
        return grant.account if grant and grant.expires_at > time.time() else None

    def revoke(self, rt: str) -> None:
        with self._lock:
            self.refresh.pop(rt, None)

    def expire_access(self, access: str) -> None:
        with self._lock:
            if access in self.access:
                self.access[access].expires_at = 0.0


class OAuthFake(Served):
    ROUTES: ClassVar[dict[tuple[str, str], str]] = {}
    TOKEN_PREFIX: ClassVar[str] = "fake-"

    def __init__(self, reply_text: str = "Hello from fake", *, account: str = "user@example.com"):
        self.model = FakeUpstream(reply_text)
        self.default_account = account
        self.pending_polls = 1
        self.slow_down = True
        self.auto_approve = True
        self.device_expires_in = 900
        self.access_ttl = 3600
        self.rotate_refresh = True
        self.tokens = TokenBook(self.TOKEN_PREFIX)
        self.devices: dict[str, DeviceCode] = {}  # device_code -> code
        self._lock = threading.Lock()
        self._requests: list[Captured] = []
        self._rejects: dict[str, int] = {}

    # --- captured traffic -------------------------------------------------------
    @property
    def requests(self) -> list[Captured]:
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> Captured | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._rejects.clear()

    def on(self, path: str, method: str | None = None) -> list[Captured]:
        """The captured requests to one path (and method)."""
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    # --- device codes -------------------------------------------------------------
    def new_device(self, challenge: str = "") -> DeviceCode:
        code = DeviceCode(
            device_code=secrets.token_urlsafe(24),
            user_code=_user_code(),
            account=self.default_account,
            pending=self.pending_polls,
            slow_down=self.slow_down,
            expires_at=time.time() + self.device_expires_in,
            challenge=challenge,
            status="approved" if self.auto_approve else "pending",
        )
        with self._lock:
            self.devices[code.device_code] = code
        return code

    def _by_user_code(self, user_code: str) -> DeviceCode:
        with self._lock:
            for code in self.devices.values():
                if code.user_code == user_code:
                    return code
        raise KeyError(user_code)

    def approve(self, user_code: str, account: str | None = None) -> None:
        code = self._by_user_code(user_code)
        code.status = "approved"
        if account:
            code.account = account

    def deny(self, user_code: str) -> None:
        self._by_user_code(user_code).status = "denied"

    def expire(self, user_code: str) -> None:
        self._by_user_code(user_code).expires_at = 0.0

    # --- tokens ---------------------------------------------------------------------
    def revoke(self, refresh_token: str) -> None:
        self.tokens.revoke(refresh_token)

    def expire_access(self, token: str) -> None:
        self.tokens.expire_access(token)

    def reject_once(self, token: str, times: int = 1) -> None:
        """The chat API answers 401 to the next `times` requests carrying `token`."""
        with self._lock:
            self._rejects[token] = self._rejects.get(token, 0) + times

    def _take_reject(self, token: str) -> bool:
        with self._lock:
            left = self._rejects.get(token, 0)
            if left <= 0:
                return False
            self._rejects[token] = left - 1
            return True

    # --- chat -------------------------------------------------------------------------
    def chat_reply(self, req: Captured) -> Reply:
        """An OpenAI Chat Completions answer to `req` (already authorised)."""
        body = req.json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return Reply(400, openai_error(400, "fake: body must be a JSON object with messages"))
        answer = self.model._answer(body.get("messages"))
        args = (f"chatcmpl-{secrets.token_hex(6)}", int(time.time()), str(body.get("model", "")), answer)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            frames = [_sse(chunk) for chunk in openai_chunks(*args, include_usage)]
            return Reply(frames=[*frames, b"data: [DONE]\n\n"], content_type="text/event-stream")
        return Reply(200, openai_completion(*args))

    def rejected(self, token: str) -> Reply | None:
        """The programmed 401 when `token` is queued by `reject_once`, else None."""
        if self._take_reject(token):
            return Reply(401, openai_error(401, "fake: token rejected (programmed)"))
        return None

    # --- dispatch ---------------------------------------------------------------------
    def _record(self, req: Captured) -> None:
        with self._lock:
            self._requests.append(req)

    def handle(self, req: Captured) -> Reply:
        name = self.ROUTES.get((req.method, req.path))
        if name is None:
            return Reply(404, openai_error(404, f"fake: no route {req.method} {req.path}"))
        return getattr(self, name)(req)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fake: OAuthFake = self.server.fake  # type: ignore[attr-defined]
        req = self._capture()
        fake._record(req)
        try:
            reply = fake.handle(req)
        except Exception as e:  # noqa: BLE001 (a fake bug must show up in the test, not hang it)
            reply = Reply(500, openai_error(500, f"fake crashed: {type(e).__name__}: {e}"))
        self._send(reply)

    do_POST = do_GET

    def _capture(self) -> Captured:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        return Captured.parse(self.command, self.path, self.headers.items(), body)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        if reply.frames is not None:
            self.send_header("cache-control", "no-cache")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for frame in reply.frames:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            return
        body = reply.body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body or b""
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


OAuthFake.HANDLER = _Handler
