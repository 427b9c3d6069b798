"""A fake of iFlow's phone login, its user-info (API key) lookup and the signed chat API.

Routes (wire-formats.md §8, cliproxyapi.md §4):

* GET /oauth?loginMethod=phone&type=phone&redirect=<cb>&state=…&client_id=10009311001
  plays the user logging in: 302 to `<cb>?code=…&state=…` (or
  `<cb>?error=access_denied&state=…` after `deny_next()`), so a test can be
  the browser by following it; 400 when a parameter is missing or wrong.
* POST /oauth/token   form; `Authorization: Basic base64(client_id:secret)` and
  the same client_id / client_secret in the form, else 401 invalid_client.
  - grant_type=authorization_code, code, redirect_uri: a code is good once,
    for `code_ttl` seconds, with the redirect it was issued for; else 400
    invalid_grant.
  - grant_type=refresh_token, refresh_token: rotates (see oauth_server.py);
    a dead one is 400 invalid_grant.
  Success: {"access_token", "refresh_token", "expires_in", "token_type", "scope"}.
* GET /api/oauth/getUserInfo?accessToken=…  {"success": true, "data": {"apiKey",
  "email", "phone"}}; an unknown token is 401 {"success": false, "message"}.
  Each account keeps one API key (`api_key(account)`), across refreshes.
* POST /v1/chat/completions  OpenAI Chat Completions (stream and not) for a
  known API key (401 otherwise, and once per `reject_once(key)`). Checked
  (400 naming the problem): `User-Agent` equals `user_agent`, `session-id`
  is `session-<uuid>`, `x-iflow-timestamp` is unix ms within `max_skew_ms`,
  and `x-iflow-signature` equals hex HMAC-SHA256(key, "<UA>:<session-id>:<timestamp>"),
  recomputed here.

`emails` / `phones` give an account's user info (email defaults to the
account name; an account mapped to "" has only a phone). `upstreams` gives the
`upstreams.iflow` overrides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from typing import ClassVar
from urllib.parse import urlencode

from tests.fakes.oauth_server import OAuthFake, Reply, bearer_of, form
from tests.fakes.upstreams import Captured, openai_error

CLIENT_ID = "10009311001"
CLIENT_SECRET = "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW"
SESSION_ID = re.compile(r"^session-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _oauth_error(status: int, code: str, description: str = "") -> Reply:
    return Reply(status, {"error": code, "error_description": description or code})


class FakeIFlow(OAuthFake):
    TOKEN_PREFIX = "iflow-"
    ROUTES: ClassVar = {
        ("GET", "/oauth"): "_authorize",
        ("POST", "/oauth/token"): "_token",
        ("GET", "/api/oauth/getUserInfo"): "_user_info",
        ("POST", "/v1/chat/completions"): "_chat",
    }

    def __init__(self, reply_text: str = "Hello from iFlow fake", *, account: str = "flow@example.com"):
        super().__init__(reply_text, account=account)
        self.access_ttl = 7 * 86400
        self.code_ttl = 300
        self.user_agent = "iFlow-Cli"
        self.max_skew_ms = 5 * 60 * 1000
        self.emails: dict[str, str] = {}
        self.phones: dict[str, str] = {}
        self._codes: dict[str, tuple[str, str, float]] = {}  # code -> (account, redirect, expiry)
        self._keys: dict[str, str] = {}  # account -> API key
        self._deny = threading.Event()

    @property
    def upstreams(self) -> dict[str, str]:
        return {
            "authorize-url": f"{self.url}/oauth",
            "token-url": f"{self.url}/oauth/token",
            "userinfo-url": f"{self.url}/api/oauth/getUserInfo",
            "base-url": f"{self.url}/v1",
        }

    def api_key(self, account: str | None = None) -> str:
        account = account or self.default_account
        with self._lock:
            return self._keys.setdefault(account, f"sk-iflow-{secrets.token_hex(12)}")

    def deny_next(self) -> None:
        self._deny.set()

    # --- login ------------------------------------------------------------------------
    def _authorize(self, req: Captured) -> Reply:
        q = req.query
        expected = {"loginMethod": "phone", "type": "phone", "client_id": CLIENT_ID}
        for name, value in expected.items():
            if q.get(name) != value:
                return _oauth_error(400, "invalid_request", f"{name} must be {value!r}")
        redirect, state = q.get("redirect", ""), q.get("state", "")
        if not redirect.startswith(("http://", "https://")) or not state:
            return _oauth_error(400, "invalid_request", "redirect and state are required")
        if self._deny.is_set():
            self._deny.clear()
            outcome = {"error": "access_denied", "state": state}
        else:
            code = secrets.token_urlsafe(16)
            with self._lock:
                self._codes[code] = (self.default_account, redirect, time.time() + self.code_ttl)
            outcome = {"code": code, "state": state}
        joiner = "&" if "?" in redirect else "?"
        return Reply(302, b"", headers={"location": f"{redirect}{joiner}{urlencode(outcome)}"})

    def _client_ok(self, req: Captured, fields: dict[str, str]) -> bool:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        return (
            req.headers.get("authorization") == expected
            and fields.get("client_id") == CLIENT_ID
            and fields.get("client_secret") == CLIENT_SECRET
        )

    def _token(self, req: Captured) -> Reply:
        fields = form(req)
        if not self._client_ok(req, fields):
            return _oauth_error(401, "invalid_client", "client authentication failed")
        grant = fields.get("grant_type")
        if grant == "authorization_code":
            with self._lock:
                found = self._codes.pop(fields.get("code", ""), None)
            if found is None or found[2] <= time.time():
                return _oauth_error(400, "invalid_grant", "authorization code is invalid or expired")
            account, redirect, _ = found
            if fields.get("redirect_uri") != redirect:
                return _oauth_error(400, "invalid_grant", "redirect_uri does not match")
            return Reply(200, self._answer(*self.tokens.issue(account, self.access_ttl)))
        if grant == "refresh_token":
            issued = self.tokens.use_refresh(fields.get("refresh_token", ""), self.access_ttl, self.rotate_refresh)
            if issued is None:
                return _oauth_error(400, "invalid_grant", "refresh token is invalid or expired")
            return Reply(200, self._answer(*issued))
        return _oauth_error(400, "unsupported_grant_type")

    def _answer(self, access: str, refresh: str) -> dict:
        answer = {"access_token": access, "expires_in": self.access_ttl, "token_type": "bearer", "scope": "read"}
        if refresh:
            answer["refresh_token"] = refresh
        return answer

    def _user_info(self, req: Captured) -> Reply:
        account = self.tokens.account_of(req.query.get("accessToken", ""))
        if account is None:
            return Reply(401, {"success": False, "code": "401", "message": "invalid access token", "data": None})
        data = {
            "apiKey": self.api_key(account),
            "email": self.emails.get(account, account),
            "phone": self.phones.get(account, "13800000000"),
        }
        return Reply(200, {"success": True, "code": "200", "message": "success", "data": data})

    # --- chat -------------------------------------------------------------------------
    def _chat(self, req: Captured) -> Reply:
        key = bearer_of(req)
        with self._lock:
            known = key in self._keys.values()
        if not known:
            return Reply(401, openai_error(401, "Invalid API key"))
        if (rejected := self.rejected(key)) is not None:
            return rejected
        if (problem := self._signature_problem(req, key)) is not None:
            return Reply(400, openai_error(400, problem))
        return self.chat_reply(req)

    def _signature_problem(self, req: Captured, key: str) -> str | None:
        ua = req.headers.get("user-agent", "")
        if ua != self.user_agent:
            return f"header user-agent: expected {self.user_agent!r}, got {ua!r}"
        if req.headers.get("content-type") != "application/json":
            return "header content-type: expected 'application/json'"
        session = req.headers.get("session-id", "")
        if not SESSION_ID.match(session):
            return f"header session-id: expected session-<uuid>, got {session!r}"
        stamp = req.headers.get("x-iflow-timestamp", "")
        if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > self.max_skew_ms:
            return f"header x-iflow-timestamp: expected unix ms near now, got {stamp!r}"
        wanted = hmac.new(key.encode(), f"{ua}:{session}:{stamp}".encode(), hashlib.sha256).hexdigest()
        if req.headers.get("x-iflow-signature") != wanted:
            return "header x-iflow-signature: signature mismatch"
        return None
