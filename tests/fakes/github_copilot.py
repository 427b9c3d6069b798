"""A fake of GitHub's device login, the Copilot token exchange and the Copilot chat API.

Routes (wire-formats.md §7):

* POST /login/device/code           form client_id (Iv1.b507a08c87ecfe98), scope;
  answers JSON only when asked with `Accept: application/json` (GitHub's
  default is a form-encoded body).
* POST /login/oauth/access_token    form client_id, device_code, grant_type
  (device_code grant). Every outcome is HTTP 200: {"error":
  "authorization_pending"|"slow_down" (with the new `interval` unless
  `slow_down_interval` is False)|"expired_token"|"access_denied"|
  "incorrect_device_code"|…} or {"access_token": "ghu_…", "token_type",
  "scope"}.
* GET /user                         `Authorization: token ghu_…` -> {"login",
  "id", "email"} (email from `emails`, None when unset); 401 {"message":
  "Bad credentials"}.
* GET /copilot_internal/v2/token    `Authorization: token ghu_…` plus the
  editor headers -> {"token", "expires_at", "refresh_in", "endpoints": {"api":
  <this fake> + `api_path`, …}}; 401 for an unknown GitHub token, 403 with
  `error_details.message` for an account in `unsubscribed`. `exchanges`
  counts the successful ones.
* POST /chat/completions, POST {api_path}/chat/completions
  OpenAI Chat Completions (stream and not) for a live Copilot token (401
  otherwise, and once per `reject_once(token)`). Every header in
  `chat_headers` must have exactly that value, `X-Request-Id` must be a
  UUID, `X-Initiator` must say "user" when the last message is the user's and
  "agent" otherwise, and `Copilot-Vision-Request: true` must be present
  exactly when a message holds an `image_url` part; else 400 in OpenAI's
  error shape naming the header.

Device codes, tokens and the chat answer are programmed as described in
tests/fakes/oauth_server.py. `upstreams` gives the `upstreams.github-copilot`
overrides pointing here.
"""

from __future__ import annotations

import secrets
import time
import uuid
import zlib
from typing import ClassVar
from urllib.parse import urlencode

from tests.fakes.oauth_server import OAuthFake, Reply, bearer_of, form
from tests.fakes.upstreams import Captured, openai_error

CLIENT_ID = "Iv1.b507a08c87ecfe98"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# What VS Code Copilot Chat sends; the executor's defaults must match.
CHAT_HEADERS = {
    "editor-version": "vscode/1.100.0",
    "editor-plugin-version": "copilot-chat/0.26.7",
    "user-agent": "GitHubCopilotChat/0.26.7",
    "copilot-integration-id": "vscode-chat",
    "openai-intent": "conversation-panel",
    "x-github-api-version": "2025-04-01",
    "content-type": "application/json",
}
EXCHANGE_HEADERS = ("editor-version", "editor-plugin-version")


def _github_error(code: str, description: str, **extra: object) -> Reply:
    # GitHub's device endpoints report errors with HTTP 200.
    return Reply(200, {"error": code, "error_description": description, **extra})


class FakeCopilot(OAuthFake):
    TOKEN_PREFIX = "ghu_"
    ROUTES: ClassVar = {
        ("POST", "/login/device/code"): "_device_code",
        ("POST", "/login/oauth/access_token"): "_device_token",
        ("GET", "/user"): "_user",
        ("GET", "/copilot_internal/v2/token"): "_exchange",
        ("POST", "/chat/completions"): "_chat",
        ("POST", "/api/chat/completions"): "_chat",
    }

    def __init__(self, reply_text: str = "Hello from Copilot fake", *, account: str = "octocat"):
        super().__init__(reply_text, account=account)
        self.access_ttl = 10 * 365 * 86400  # GitHub tokens do not expire
        self.interval = 5
        self.slow_down_interval = True
        self.api_path = "/api"
        self.token_ttl = 1800
        self.refresh_in = 1500
        self.emails: dict[str, str] = {}
        self.unsubscribed: set[str] = set()
        self.chat_headers = dict(CHAT_HEADERS)
        self.scopes: list[str] = []
        self.exchanges = 0
        self._copilot: dict[str, tuple[str, float]] = {}  # copilot token -> (account, expiry)

    @property
    def upstreams(self) -> dict[str, str]:
        return {
            "device-url": f"{self.url}/login/device/code",
            "token-url": f"{self.url}/login/oauth/access_token",
            "user-url": f"{self.url}/user",
            "exchange-url": f"{self.url}/copilot_internal/v2/token",
            "base-url": self.url,
        }

    @property
    def api_base(self) -> str:
        return self.url + self.api_path

    def github_token(self, account: str | None = None) -> str:
        """A live GitHub token for `account`, as a finished login would hold."""
        token, _ = self.tokens.issue(account or self.default_account, self.access_ttl, refresh=False)
        return token

    def copilot_tokens(self) -> list[str]:
        with self._lock:
            return list(self._copilot)

    def expire_copilot(self, token: str) -> None:
        with self._lock:
            account, _ = self._copilot[token]
            self._copilot[token] = (account, 0.0)

    # --- device login ---------------------------------------------------------
    def _device_code(self, req: Captured) -> Reply:
        fields = form(req)
        if fields.get("client_id") != CLIENT_ID:
            return Reply(404, {"error": "Not Found"})
        self.scopes.append(fields.get("scope", ""))
        code = self.new_device()
        answer = {
            "device_code": code.device_code,
            "user_code": code.user_code,
            "verification_uri": "https://github.com/login/device",
            "expires_in": self.device_expires_in,
            "interval": self.interval,
        }
        if "application/json" not in req.headers.get("accept", ""):
            return Reply(200, urlencode(answer), content_type="application/x-www-form-urlencoded")
        return Reply(200, answer)

    def _device_token(self, req: Captured) -> Reply:
        fields = form(req)
        if "application/json" not in req.headers.get("accept", ""):
            return Reply(200, "error=accept_json_please", content_type="application/x-www-form-urlencoded")
        if fields.get("client_id") != CLIENT_ID:
            return _github_error("incorrect_client_credentials", "The client_id is not valid.")
        if fields.get("grant_type") != DEVICE_GRANT:
            return _github_error("unsupported_grant_type", "The grant type is not supported.")
        code = self.devices.get(fields.get("device_code", ""))
        if code is None:
            return _github_error("incorrect_device_code", "The device_code provided is not valid.")
        outcome = code.poll()
        if outcome == "pending":
            return _github_error("authorization_pending", "The authorization request is still pending.")
        if outcome == "slow_down":
            extra = {"interval": self.interval + 5} if self.slow_down_interval else {}
            return _github_error("slow_down", "Too many requests have been made.", **extra)
        if outcome == "expired":
            return _github_error("expired_token", "The device_code has expired.")
        if outcome == "denied":
            return _github_error("access_denied", "The authorization request was denied.")
        token, _ = self.tokens.issue(code.account, self.access_ttl, refresh=False)
        return Reply(200, {"access_token": token, "token_type": "bearer", "scope": self.scopes[-1]})

    # --- GitHub API -------------------------------------------------------------
    def _github_account(self, req: Captured) -> str | None:
        auth = req.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self.tokens.account_of(token)

    def _user(self, req: Captured) -> Reply:
        if not req.headers.get("user-agent"):
            return Reply(403, {"message": "Request forbidden by administrative rules."})
        account = self._github_account(req)
        if account is None:
            return Reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        return Reply(200, {"login": account, "id": zlib.crc32(account.encode()), "email": self.emails.get(account)})

    def _exchange(self, req: Captured) -> Reply:
        auth = req.headers.get("authorization", "")
        account = self.tokens.account_of(auth[6:]) if auth.startswith("token ") else None
        if account is None:
            return Reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        for name in EXCHANGE_HEADERS:
            if req.headers.get(name) != self.chat_headers[name]:
                return Reply(400, {"message": f"missing or wrong {name}"})
        if account in self.unsubscribed:
            message = "No access to GitHub Copilot found. You are currently logged in as " + account
            return Reply(403, {"error_details": {"message": message, "title": "Copilot"}, "message": message})
        expires_at = int(time.time()) + self.token_ttl
        token = f"tid={secrets.token_hex(16)};exp={expires_at};sku=free_limited_copilot;proxy-ep=proxy.example"
        with self._lock:
            self._copilot[token] = (account, float(expires_at))
            self.exchanges += 1
        return Reply(
            200,
            {
                "token": token,
                "expires_at": expires_at,
                "refresh_in": self.refresh_in,
                "endpoints": {
                    "api": self.api_base,
                    "proxy": f"{self.url}/proxy",
                    "origin-tracker": f"{self.url}/origin",
                    "telemetry": f"{self.url}/telemetry",
                },
                "sku": "free_limited_copilot",
                "chat_enabled": True,
            },
        )

    # --- chat ---------------------------------------------------------------------
    def _chat(self, req: Captured) -> Reply:
        token = bearer_of(req)
        with self._lock:
            grant = self._copilot.get(token)
        if grant is None or grant[1] <= time.time():
            return Reply(401, openai_error(401, "unauthorized: token expired or invalid"))
        if (rejected := self.rejected(token)) is not None:
            return rejected
        if (problem := self._header_problem(req)) is not None:
            return Reply(400, openai_error(400, problem))
        return self.chat_reply(req)

    def _header_problem(self, req: Captured) -> str | None:
        for name, value in self.chat_headers.items():
            if req.headers.get(name) != value:
                return f"header {name}: expected {value!r}, got {req.headers.get(name)!r}"
        try:
            uuid.UUID(req.headers.get("x-request-id", ""))
        except ValueError:
            return "header x-request-id: expected a UUID"
        messages = (req.json or {}).get("messages") if isinstance(req.json, dict) else None
        messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        initiator = "user" if not messages or messages[-1].get("role") == "user" else "agent"
        if req.headers.get("x-initiator") != initiator:
            return f"header x-initiator: expected {initiator!r}, got {req.headers.get('x-initiator')!r}"
        images = any(
            isinstance(part, dict) and part.get("type") == "image_url"
            for m in messages
            if isinstance(m.get("content"), list)
            for part in m["content"]
        )
        vision = req.headers.get("copilot-vision-request")
        if (vision == "true") != images:
            return f"header copilot-vision-request: expected {'true' if images else 'none'}, got {vision!r}"
        return None
