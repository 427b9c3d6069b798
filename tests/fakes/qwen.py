"""A fake of qwen.ai's device login (PKCE) and the Qwen OAuth chat API (DashScope compatible).

Routes (wire-formats.md §8):

* POST /api/v1/oauth2/device/code   form client_id (f0304373b74a44d2b584a3fb70ca9e56),
  scope ("openid profile email model.completion"), code_challenge,
  code_challenge_method=S256 -> {"device_code", "user_code",
  "verification_uri", "verification_uri_complete", "expires_in"} (no
  `interval`, as Qwen sends none); 400 {"error": "invalid_request"} otherwise.
* POST /api/v1/oauth2/token         form, either
  - grant_type=urn:ietf:params:oauth:grant-type:device_code, client_id,
    device_code, code_verifier: base64url(SHA-256(code_verifier)) must equal
    the challenge (else 400 invalid_grant). Pending: 400
    {"error": "authorization_pending"}; slow down: 429 {"error": "slow_down"};
    400 expired_token / access_denied; success {"access_token",
    "refresh_token", "token_type", "expires_in", "resource_url"}.
  - grant_type=refresh_token, refresh_token, client_id: rotates (see
    oauth_server.py); a dead refresh token is 400 {"error": "invalid_grant"}.
* POST /v1/chat/completions          OpenAI Chat Completions (stream and not)
  for a live access token (401 in OpenAI's shape otherwise, and once per
  `reject_once(token)`); every header in `chat_headers` must have exactly
  that value (400 naming it otherwise).

`resource_url` (default: this fake's own http://127.0.0.1:<port>, scheme
included so the executor keeps http) is what token answers name as the
account's API host. `upstreams` gives the `upstreams.qwen` overrides.
"""

from __future__ import annotations

import base64
import hashlib
from typing import ClassVar

from tests.fakes.oauth_server import OAuthFake, Reply, bearer_of, form
from tests.fakes.upstreams import Captured, openai_error

CLIENT_ID = "f0304373b74a44d2b584a3fb70ca9e56"
SCOPE = "openid profile email model.completion"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CHAT_HEADERS = {
    "x-dashscope-authtype": "qwen-oauth",
    "x-dashscope-cachecontrol": "enable",
    "user-agent": "QwenCode/0.14.2 (linux; x64)",
    "content-type": "application/json",
}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _oauth_error(status: int, code: str, description: str = "") -> Reply:
    return Reply(status, {"error": code, "error_description": description or code})


class FakeQwen(OAuthFake):
    TOKEN_PREFIX = "qwen-"
    ROUTES: ClassVar = {
        ("POST", "/api/v1/oauth2/device/code"): "_device_code",
        ("POST", "/api/v1/oauth2/token"): "_token",
        ("POST", "/v1/chat/completions"): "_chat",
    }

    def __init__(self, reply_text: str = "Hello from Qwen fake", *, account: str = "qwen-user"):
        super().__init__(reply_text, account=account)
        self.resource_url: str | None = None
        self.chat_headers = dict(CHAT_HEADERS)

    @property
    def upstreams(self) -> dict[str, str]:
        return {
            "device-url": f"{self.url}/api/v1/oauth2/device/code",
            "token-url": f"{self.url}/api/v1/oauth2/token",
            "base-url": f"{self.url}/v1",
        }

    def _device_code(self, req: Captured) -> Reply:
        fields = form(req)
        if fields.get("client_id") != CLIENT_ID:
            return _oauth_error(400, "invalid_client", "unknown client_id")
        if fields.get("scope") != SCOPE:
            return _oauth_error(400, "invalid_scope", f"scope must be {SCOPE!r}")
        if fields.get("code_challenge_method") != "S256" or not fields.get("code_challenge"):
            return _oauth_error(400, "invalid_request", "PKCE S256 challenge required")
        code = self.new_device(challenge=fields["code_challenge"])
        return Reply(
            200,
            {
                "device_code": code.device_code,
                "user_code": code.user_code,
                "verification_uri": f"{self.url}/authorize",
                "verification_uri_complete": f"{self.url}/authorize?user_code={code.user_code}&client=qwen-code",
                "expires_in": self.device_expires_in,
            },
        )

    def _token(self, req: Captured) -> Reply:
        fields = form(req)
        if fields.get("client_id") != CLIENT_ID:
            return _oauth_error(400, "invalid_client", "unknown client_id")
        grant = fields.get("grant_type")
        if grant == DEVICE_GRANT:
            return self._device_grant(fields)
        if grant == "refresh_token":
            issued = self.tokens.use_refresh(fields.get("refresh_token", ""), self.access_ttl, self.rotate_refresh)
            if issued is None:
                return _oauth_error(400, "invalid_grant", "refresh token is invalid or expired")
            return Reply(200, self._answer(*issued))
        return _oauth_error(400, "unsupported_grant_type")

    def _device_grant(self, fields: dict[str, str]) -> Reply:
        code = self.devices.get(fields.get("device_code", ""))
        if code is None:
            return _oauth_error(400, "invalid_grant", "unknown device_code")
        if s256(fields.get("code_verifier", "")) != code.challenge:
            return _oauth_error(400, "invalid_grant", "PKCE verification failed")
        outcome = code.poll()
        if outcome == "pending":
            return _oauth_error(400, "authorization_pending")
        if outcome == "slow_down":
            return _oauth_error(429, "slow_down")
        if outcome == "expired":
            return _oauth_error(400, "expired_token")
        if outcome == "denied":
            return _oauth_error(400, "access_denied")
        return Reply(200, self._answer(*self.tokens.issue(code.account, self.access_ttl)))

    def _answer(self, access: str, refresh: str) -> dict:
        answer = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "resource_url": self.resource_url if self.resource_url is not None else self.url,
        }
        if refresh:
            answer["refresh_token"] = refresh
        return answer

    def _chat(self, req: Captured) -> Reply:
        token = bearer_of(req)
        if self.tokens.account_of(token) is None:
            return Reply(401, openai_error(401, "Incorrect API key provided or the token expired."))
        if (rejected := self.rejected(token)) is not None:
            return rejected
        for name, value in self.chat_headers.items():
            if req.headers.get(name) != value:
                return Reply(400, openai_error(400, f"header {name}: expected {value!r}, got {req.headers.get(name)!r}"))
        return self.chat_reply(req)
