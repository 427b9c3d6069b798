"""A fake OAuth 2.0 authorization server for Claude, Codex and Google logins.

It checks what the real ones check, so a login that passes here sends the
right things:

* `GET /authorize` (response_type=code): the client_id must be registered,
  `redirect_uri` must be `http://localhost:<port><the client's callback path>`,
  `state` present, `code_challenge` with method S256. It "approves" at once
  (unless `deny_next` is set) and answers 302 to the redirect URI with `code`
  and `state`, so a test plays the browser by following that redirect.
* `POST /token`: a form, or JSON for clients registered `json_token=True`
  (Anthropic's endpoint). `authorization_code`: the code must be fresh and
  unused, issued to this client for the same redirect_uri, and the
  `code_verifier` must hash (S256) to the challenge; a client with a secret
  must send it. `refresh_token`: issues a new access token and, with
  `rotate` (default), a new refresh token, revoking the old one; an unknown
  or revoked refresh token gets 400 `{"error": "invalid_grant"}`.
  `omit_refresh_token` makes refresh answers leave the refresh token out.
* Codex's device flow: `POST /deviceauth/usercode` JSON {client_id} ->
  {device_auth_id, user_code, interval}; `POST /deviceauth/token` answers 403
  until `approve(user_code)` (or after `device_auto_approve_after` polls),
  then {authorization_code, code_challenge, code_verifier} for `/token`.
* `GET /userinfo` (Google): the email of the bearer's account.

Issued access tokens are in `valid_access_tokens` (an API fake can check
against `access_check()`); `revoke_access(token)` and `revoke_refresh(token)`
kill tokens; counters `token_calls`, `refresh_calls`; `token_delay` slows
the token endpoint down.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.fakes.served import Served


@dataclass
class Client:
    client_id: str
    callback_path: str
    secret: str | None = None
    json_token: bool = False
    email: str = "user@example.com"
    # "claude" | "codex" | "google": shapes the token answer.
    dialect: str = "google"


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    used: bool = False
    issued: float = field(default_factory=time.time)


def _jwt(claims: dict[str, Any]) -> str:
    def b64(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.sig"


class FakeAuthServer(Served):
    def __init__(self, *clients: Client, expires_in: int = 3600):
        self.clients = {c.client_id: c for c in clients}
        self.expires_in = expires_in
        self.rotate = True
        self.omit_refresh_token = False
        self.deny_next = False
        # Seconds the token endpoint takes to answer (a refresh in flight, for kill tests).
        self.token_delay = 0.0
        self.device_auto_approve_after: int | None = None
        self.codex_account_id = "acct-fake-123"
        self.codex_plan = "plus"
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> client_id
        self._access: dict[str, str] = {}  # access token -> email
        self._devices: dict[str, dict[str, Any]] = {}
        self.token_calls = 0
        self.refresh_calls = 0
        self.errors: list[str] = []  # why requests were refused, for test messages

    # --- test controls --------------------------------------------------------
    @property
    def valid_access_tokens(self) -> set[str]:
        with self._lock:
            return set(self._access)

    def access_check(self):
        """A FakeUpstream `require_auth` accepting only live tokens issued here."""

        def check(req) -> bool:
            auth = req.headers.get("authorization", "")
            return auth[7:] in self.valid_access_tokens if auth.lower().startswith("bearer ") else False

        return check

    def revoke_access(self, token: str) -> None:
        with self._lock:
            self._access.pop(token, None)

    def revoke_refresh(self, token: str) -> None:
        with self._lock:
            self._refresh.pop(token, None)

    def issue(self, client_id: str) -> dict[str, Any]:
        """Tokens minted directly, as if from an earlier login."""
        with self._lock:
            return self._tokens(self.clients[client_id], with_refresh=True)

    def approve(self, user_code: str) -> None:
        with self._lock:
            for d in self._devices.values():
                if d["user_code"] == user_code:
                    d["approved"] = True

    # --- issuing ---------------------------------------------------------------
    def _tokens(self, client: Client, with_refresh: bool) -> dict[str, Any]:
        access = "at-" + secrets.token_hex(12)
        self._access[access] = client.email
        out: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in}
        if with_refresh:
            refresh = "rt-" + secrets.token_hex(12)
            self._refresh[refresh] = client.client_id
            out["refresh_token"] = refresh
        if client.dialect == "claude":
            out["account"] = {"uuid": "acc-uuid-1", "email_address": client.email}
            out["organization"] = {"uuid": "org-uuid-1", "name": "Fake Org"}
        elif client.dialect == "codex":
            out["id_token"] = _jwt(
                {
                    "email": client.email,
                    "https://api.openai.com/auth": {
                        "chatgpt_account_id": self.codex_account_id,
                        "chatgpt_plan_type": self.codex_plan,
                    },
                }
            )
        return out

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            return self._refuse(400, "unknown client_id")
        redirect = query.get("redirect_uri", "")
        parts = urlsplit(redirect)
        if parts.scheme != "http" or parts.hostname != "localhost" or parts.path != client.callback_path:
            return self._refuse(400, f"redirect_uri {redirect!r} is not registered")
        if query.get("response_type") != "code" or not query.get("state"):
            return self._refuse(400, "response_type=code and state are required")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return self._refuse(400, "PKCE S256 is required")
        state = query["state"]
        if self.deny_next:
            self.deny_next = False
            return 302, {"location": f"{redirect}?{urlencode({'error': 'access_denied', 'state': state})}"}, ""
        code = "code-" + secrets.token_hex(8)
        with self._lock:
            self._codes[code] = _Code(client.client_id, redirect, query["code_challenge"])
        return 302, {"location": f"{redirect}?{urlencode({'code': code, 'state': state})}"}, ""

    def _refuse(self, status: int, why: str):
        self.errors.append(why)
        return status, {"content-type": "application/json"}, json.dumps({"error": "invalid_request", "error_description": why})

    def token(self, form: dict[str, str], basic: tuple[str, str] | None, is_json: bool) -> tuple[int, dict[str, Any]]:
        client_id = form.get("client_id") or (basic[0] if basic else "")
        client = self.clients.get(client_id)
        if client is None:
            return 401, {"error": "invalid_client", "error_description": "unknown client"}
        if client.json_token != is_json:
            return 400, {"error": "invalid_request", "error_description": "wrong body encoding"}
        if client.secret is not None:
            secret = form.get("client_secret") or (basic[1] if basic else None)
            if secret != client.secret:
                return 401, {"error": "invalid_client", "error_description": "bad client secret"}
        grant = form.get("grant_type")
        with self._lock:
            self.token_calls += 1
            if grant == "authorization_code":
                code = self._codes.get(form.get("code", ""))
                if code is None or code.used or code.client_id != client_id:
                    return 400, {"error": "invalid_grant", "error_description": "unknown or used code"}
                code.used = True
                if form.get("redirect_uri") != code.redirect_uri:
                    return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
                if create_s256_code_challenge(form.get("code_verifier", "")) != code.challenge:
                    return 400, {"error": "invalid_grant", "error_description": "PKCE verifier mismatch"}
                return 200, self._tokens(client, with_refresh=True)
            if grant == "refresh_token":
                self.refresh_calls += 1
                rt = form.get("refresh_token", "")
                if self._refresh.get(rt) != client_id:
                    return 400, {"error": "invalid_grant", "error_description": "refresh token revoked"}
                if self.rotate:
                    del self._refresh[rt]
                out = self._tokens(client, with_refresh=self.rotate and not self.omit_refresh_token)
                if not self.rotate and not self.omit_refresh_token:
                    out["refresh_token"] = rt
                return 200, out
        return 400, {"error": "unsupported_grant_type"}

    def device_code(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("client_id") not in self.clients:
            return 400, {"error": "invalid_client"}
        verifier = secrets.token_urlsafe(48)
        dev_id = "dev-" + secrets.token_hex(6)
        user_code = secrets.token_hex(2).upper() + "-" + secrets.token_hex(2).upper()
        with self._lock:
            self._devices[dev_id] = {
                "user_code": user_code, "approved": False, "polls": 0,
                "client_id": body["client_id"], "verifier": verifier,
            }
        return 200, {"device_auth_id": dev_id, "user_code": user_code, "interval": "1"}

    def device_token(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            dev = self._devices.get(body.get("device_auth_id", ""))
            if dev is None or dev["user_code"] != body.get("user_code"):
                return 400, {"error": "invalid_request"}
            dev["polls"] += 1
            auto = self.device_auto_approve_after
            if not dev["approved"] and not (auto is not None and dev["polls"] > auto):
                return 403, {"error": {"message": "authorization pending"}}
            code = "code-" + secrets.token_hex(8)
            challenge = create_s256_code_challenge(dev["verifier"])
            self._codes[code] = _Code(dev["client_id"], "https://auth.openai.com/deviceauth/callback", challenge)
        return 200, {"authorization_code": code, "code_challenge": challenge, "code_verifier": dev["verifier"]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def server_fake(self) -> FakeAuthServer:
        return self.server.fake  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        headers = headers or {"content-type": "application/json"}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:  # noqa: N802
        fake = self.server_fake
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        if url.path == "/authorize":
            status, headers, body = fake.authorize(query)
            self._send(status, body, headers)
        elif url.path == "/userinfo":
            token = self.headers.get("authorization", "")[7:]
            email = fake._access.get(token)
            if email is None:
                self._send(401, {"error": {"code": 401, "message": "invalid token", "status": "UNAUTHENTICATED"}})
            else:
                self._send(200, {"id": "1", "email": email, "verified_email": True})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        fake = self.server_fake
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        ctype = self.headers.get("content-type", "")
        is_json = ctype.startswith("application/json")
        try:
            body = json.loads(raw) if is_json else dict(parse_qsl(raw.decode()))
        except ValueError:
            self._send(400, {"error": "invalid_request", "error_description": "unparsable body"})
            return
        path = urlsplit(self.path).path
        if path == "/token":
            time.sleep(fake.token_delay)
            basic = None
            auth = self.headers.get("authorization", "")
            if auth.lower().startswith("basic "):
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                basic = (user, pw)
            status, out = fake.token(body, basic, is_json)
        elif path == "/deviceauth/usercode":
            status, out = fake.device_code(body)
        elif path == "/deviceauth/token":
            status, out = fake.device_token(body)
        else:
            status, out = 404, {"error": "not found"}
        self._send(status, out)


CLAUDE_CLIENT = Client("9d1c250a-e61b-44d9-88ed-5944d1962f5e", "/callback", json_token=True,
                       email="claude-user@example.com", dialect="claude")
CODEX_CLIENT = Client("app_EMoamEEZ73f0CkXaXp7hrann", "/auth/callback", email="codex-user@example.com", dialect="codex")
GOOGLE_CLIENT = Client(
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com", "/oauth2callback",
    secret="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", email="gemini-user@example.com", dialect="google",
)


def upstream_overrides(auth: FakeAuthServer) -> dict[str, dict[str, str]]:
    """`upstreams:` entries pointing every login URL of Claude, Codex and Gemini here."""
    return {
        "claude": {"authorize-url": f"{auth.url}/authorize", "token-url": f"{auth.url}/token"},
        "codex": {
            "authorize-url": f"{auth.url}/authorize",
            "token-url": f"{auth.url}/token",
            "device-url": f"{auth.url}/deviceauth/usercode",
            "device-token-url": f"{auth.url}/deviceauth/token",
        },
        "gemini": {
            "authorize-url": f"{auth.url}/authorize",
            "token-url": f"{auth.url}/token",
            "userinfo-url": f"{auth.url}/userinfo",
        },
    }


FakeAuthServer.HANDLER = _Handler
