"""A fake Google token endpoint and Vertex AI, for service-account logins and requests.

`FakeVertex` is a real HTTP/1.1 server on 127.0.0.1 (ephemeral port, one
thread per connection). Service accounts are made at test time with
`new_service_account()`: an RSA key generated with `cryptography`, returned
as the key JSON Google would hand out, its public half kept by the fake the
way Google keeps it. No key file is ever written or committed.

Routes (errors in Google's shape ``{"error": {code, message, status}}``
unless said otherwise):

* ``POST /token`` – OAuth 2.0 JWT-bearer grant (RFC 7523), form encoded:
  ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``.
  The assertion must be RS256, signed by a known, unrevoked service account's
  key, with ``iss == sub == client_email``, ``aud`` this endpoint's URL,
  ``scope`` holding cloud-platform, and ``0 < exp - iat <= 3600`` around now.
  Answers ``{"access_token", "expires_in", "token_type": "Bearer"}``;
  otherwise 400 ``{"error": "invalid_grant" | "unsupported_grant_type" |
  "invalid_request", "error_description"}`` as Google does.
* ``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent
  | :streamGenerateContent[?alt=sse] | :countTokens`` – Gemini (SSE events end
  with CRLF CRLF; without ``alt=sse`` the stream is one JSON array).
  countTokens takes only ``contents, systemInstruction, tools,
  generationConfig`` (others: 400 "Unknown name") and answers
  ``{"totalTokens", "totalBillableCharacters", "promptTokensDetails"}``.
* ``POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict
  | :streamRawPredict`` – Anthropic Messages; the body must carry
  ``anthropic_version: "vertex-2023-10-16"``, no ``model``, and ``stream``
  true exactly for streamRawPredict (errors: 400 in Anthropic's shape).
* ``POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/count-tokens:rawPredict``
  – the body names the model (Vertex's ``name@date``) and the version;
  answers ``{"input_tokens"}``.
* ``POST /v1/publishers/google/models/{m}:…`` – express mode: the key in
  ``x-goog-api-key`` must be one of `api_keys`; no project or location.

Every project route needs ``Authorization: Bearer <a token this fake
issued>``, unexpired (else 401 UNAUTHENTICATED), for a service account of
that project (else 403 PERMISSION_DENIED) and the location it was made for
(else 404 NOT_FOUND).

Programmable: `model` is an unstarted `FakeUpstream` whose `reply_text`,
`thinking` and `tool_calls` shape every answer and whose token counting rules
apply (see tests/fakes/upstreams.py); `revoke(email)`; `reject_once(token)`
(the next API call with that token gets 401); `token_lifetime`;
`fail_next(status)` (the next API call answers `status` in the route's error
shape). Captured: `requests`, `last`, `issued` (access tokens in order),
`assertions` (the decoded claims of every accepted assertion).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from tests.fakes.served import Served
from tests.fakes.upstreams import (
    Captured,
    FakeUpstream,
    anthropic_error,
    anthropic_events,
    anthropic_message,
    gemini_chunks,
    gemini_error,
    gemini_response,
)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
ANTHROPIC_VERSION = "vertex-2023-10-16"
MAX_ASSERTION_SECONDS = 3600
CLOCK_SKEW = 300
_COUNT_FIELDS = {"contents", "systemInstruction", "tools", "generationConfig", "model", "instances"}

_PROJECT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/publishers"
_GEMINI = re.compile(
    _PROJECT + r"/google/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent|countTokens)"
)
_CLAUDE_COUNT = re.compile(_PROJECT + r"/anthropic/models/count-tokens:rawPredict")
_CLAUDE = re.compile(_PROJECT + r"/anthropic/models/(?P<model>[^/:]+):(?P<method>rawPredict|streamRawPredict)")
_EXPRESS = re.compile(
    r"/v1/publishers/google/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent|countTokens)"
)


@dataclass
class _Account:
    email: str
    project: str
    location: str
    public_key: RSAKey
    revoked: bool = False


@dataclass(frozen=True)
class _Token:
    email: str
    expires_at: float


def _pem_key() -> tuple[str, RSAKey]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem, RSAKey.import_key(private.public_key())


def google_error(status: int, message: str) -> dict:
    return gemini_error(status, message)


class FakeVertex(Served):
    def __init__(self, reply_text: str = "Hello from Vertex fake", *, token_lifetime: int = 3599):
        self.model = FakeUpstream(reply_text)  # never started: only shapes answers
        self.token_lifetime = token_lifetime
        self.api_keys: set[str] = set()
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, _Token] = {}
        self._reject: set[str] = set()
        self._fail: list[int] = []
        self._requests: list[Captured] = []
        self.issued: list[str] = []
        self.assertions: list[dict] = []


    @property
    def token_url(self) -> str:
        return self.url + "/token"

    @property
    def upstreams(self) -> dict[str, str]:
        """`upstreams.vertex` overrides pointing every Vertex URL here."""
        return {"base-url": self.url, "token-url": self.token_url, "api-key-base-url": self.url}

    # -- accounts and tokens ------------------------------------------------

    def new_service_account(
        self, project: str = "quotio-test", location: str = "us-central1", name: str = "quotio"
    ) -> dict[str, Any]:
        """A fresh service-account key JSON, as IAM's "Create key" downloads it."""
        pem, public = _pem_key()
        email = f"{name}-{secrets.token_hex(3)}@{project}.iam.gserviceaccount.com"
        with self._lock:
            self._accounts[email] = _Account(email, project, location, public)
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": secrets.token_hex(20),
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(10**20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
            "universe_domain": "googleapis.com",
        }

    def revoke(self, email: str) -> None:
        """The key is deleted in IAM: its assertions get invalid_grant from now on."""
        with self._lock:
            self._accounts[email].revoked = True

    def reject_once(self, token: str) -> None:
        """The next API call bearing `token` gets 401, as if it had been revoked."""
        with self._lock:
            self._reject.add(token)

    def fail_next(self, status: int) -> None:
        with self._lock:
            self._fail.append(status)

    @property
    def requests(self) -> list[Captured]:
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> Captured | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    def api_requests(self) -> list[Captured]:
        return [r for r in self.requests if r.path != "/token"]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._fail.clear()
            self._reject.clear()

    # -- used by the handler ----------------------------------------------

    def _record(self, req: Captured) -> None:
        with self._lock:
            self._requests.append(req)

    def _take_failure(self) -> int | None:
        with self._lock:
            return self._fail.pop(0) if self._fail else None

    def _grant(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}
        raw = form.get("assertion", "")
        if not raw:
            return 400, {"error": "invalid_request", "error_description": "Missing required parameter: assertion"}
        try:
            header = json.loads(_b64(raw.split(".")[0]))
            unverified = json.loads(_b64(raw.split(".")[1]))
        except (IndexError, ValueError):
            return 400, _invalid_grant("Invalid JWT: malformed")
        if header.get("alg") != "RS256":
            return 400, _invalid_grant("Invalid JWT: alg must be RS256")
        with self._lock:
            account = self._accounts.get(str(unverified.get("iss")))
        if account is None:
            return 400, _invalid_grant("Invalid grant: account not found")
        try:
            claims = jwt.decode(raw, account.public_key, algorithms=["RS256"]).claims
        except (JoseError, ValueError):
            return 400, _invalid_grant("Invalid JWT Signature.")
        if account.revoked:
            return 400, _invalid_grant("Invalid JWT Signature.")
        problem = _claims_problem(claims, account.email, self.token_url)
        if problem:
            return 400, _invalid_grant(problem)
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Token(account.email, time.time() + self.token_lifetime)
            self.issued.append(token)
            self.assertions.append(claims)
        return 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def _authorize(self, req: Captured, project: str, location: str) -> tuple[int, str] | None:
        """None when the bearer may call this project and location; else (status, message)."""
        auth = req.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        with self._lock:
            issued = self._tokens.get(token)
            rejected = token in self._reject
            self._reject.discard(token)
            account = self._accounts.get(issued.email) if issued else None
        if issued is None or issued.expires_at <= time.time() or rejected or account is None:
            return 401, (
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential."
            )
        if account.project != project:
            return 403, f"Permission 'aiplatform.endpoints.predict' denied on resource projects/{project}"
        if account.location != location:
            return 404, f"Publisher model not found in locations/{location}"
        return None


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _invalid_grant(description: str) -> dict:
    return {"error": "invalid_grant", "error_description": description}


def _claims_problem(claims: dict, email: str, audience: str) -> str:
    now = time.time()
    if claims.get("sub") != email:
        return "Invalid JWT: sub must be the service account's email"
    if claims.get("aud") != audience:
        return "Invalid JWT: aud must be the token endpoint"
    if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
        return "Invalid JWT: scope must include cloud-platform"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return "Invalid JWT: iat and exp must be integers"
    if not 0 < exp - iat <= MAX_ASSERTION_SECONDS:
        return "Invalid JWT: Token must be a short-lived token (60 minutes)"
    if iat > now + CLOCK_SKEW or exp < now - CLOCK_SKEW:
        return "Invalid JWT: Token must be in a reasonable timeframe"
    return ""


def _sse(data: Any, event: str | None = None, eol: str = "\n") -> bytes:
    head = f"event: {event}{eol}" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}{eol}{eol}".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeVertex:
        return self.server.fake  # type: ignore[attr-defined]

    def _capture(self) -> Captured:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        return Captured.parse(self.command, self.path, self.headers.items(), body)

    def do_POST(self) -> None:
        req = self._capture()
        self.fake._record(req)
        if req.path == "/token":
            form = {k: v[-1] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
            if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                self.send_json(400, {"error": "invalid_request", "error_description": "form body expected"})
                return
            self.send_json(*self.fake._grant(form))
            return
        for pattern, handler, dialect in (
            (_CLAUDE_COUNT, self._claude_count, "anthropic"),
            (_CLAUDE, self._claude, "anthropic"),
            (_GEMINI, self._gemini, "gemini"),
            (_EXPRESS, self._express, "gemini"),
        ):
            if match := pattern.fullmatch(req.path):
                break
        else:
            self.send_json(404, google_error(404, f"The requested URL {req.path} was not found."))
            return
        if pattern is not _EXPRESS:
            denied = self.fake._authorize(req, match["project"], match["location"])
            if denied is not None:
                # Google's front end answers auth failures in its own shape, whatever the model.
                self.send_json(denied[0], google_error(*denied))
                return
        if (status := self.fake._take_failure()) is not None:
            self._error(dialect, status, f"fake vertex: injected {status}")
            return
        if not isinstance(req.json, dict):
            self._error(dialect, 400, "fake vertex: body must be a JSON object")
            return
        handler(req, match)

    def do_GET(self) -> None:
        self._capture()
        self.send_json(404, google_error(404, "not found"))

    # -- answers ------------------------------------------------------------

    def _error(self, dialect: str, status: int, message: str) -> None:
        if dialect == "anthropic":
            self.send_json(status, anthropic_error(status, message, "req_" + uuid.uuid4().hex[:24]))
        else:
            self.send_json(status, google_error(status, message))

    def _claude(self, req: Captured, match: re.Match) -> None:
        body = req.json
        if body.get("anthropic_version") != ANTHROPIC_VERSION:
            self._error("anthropic", 400, f"anthropic_version: must be {ANTHROPIC_VERSION!r}")
            return
        if "model" in body:
            self._error("anthropic", 400, "model: Extra inputs are not permitted")
            return
        streaming = match["method"] == "streamRawPredict"
        if bool(body.get("stream")) != streaming:
            self._error("anthropic", 400, f"stream must be {streaming} for {match['method']}")
            return
        answer = self.fake.model._answer(body.get("system"), body.get("messages"))
        msg_id, model = "msg_vrtx_" + uuid.uuid4().hex[:20], match["model"]
        if streaming:
            events = anthropic_events(msg_id, model, answer)
            self.send_stream((_sse(data, event=name) for name, data in events), "text/event-stream")
        else:
            self.send_json(200, anthropic_message(msg_id, model, answer))

    def _claude_count(self, req: Captured, match: re.Match) -> None:
        body = req.json
        if body.get("anthropic_version") != ANTHROPIC_VERSION:
            self._error("anthropic", 400, f"anthropic_version: must be {ANTHROPIC_VERSION!r}")
            return
        if "@" not in str(body.get("model", "")):
            self._error("anthropic", 400, "model: a Vertex model name (name@version) is required")
            return
        prompt = self.fake.model._prompt_tokens(body.get("system"), body.get("messages"))
        self.send_json(200, {"input_tokens": prompt})

    def _gemini(self, req: Captured, match: re.Match) -> None:
        body = req.json
        if match["method"] == "countTokens":
            unknown = sorted(set(body) - _COUNT_FIELDS)
            if unknown:
                self._error("gemini", 400, f'Invalid JSON payload received. Unknown name "{unknown[0]}"')
                return
            total = self.fake.model._prompt_tokens(body.get("systemInstruction"), body.get("contents"))
            details = [{"modality": "TEXT", "tokenCount": total}]
            self.send_json(
                200, {"totalTokens": total, "totalBillableCharacters": total * 4, "promptTokensDetails": details}
            )
            return
        if not isinstance(body.get("contents"), list):
            self._error("gemini", 400, "contents is required")
            return
        answer = self.fake.model._answer(body.get("systemInstruction"), body.get("contents"))
        args = (uuid.uuid4().hex[:20], match["model"], answer)
        if match["method"] == "generateContent":
            self.send_json(200, gemini_response(*args))
        elif req.query.get("alt") == "sse":
            frames = (_sse(chunk, eol="\r\n") for chunk in gemini_chunks(*args))
            self.send_stream(frames, "text/event-stream")
        else:
            self.send_stream(_json_array(gemini_chunks(*args)), "application/json")

    def _express(self, req: Captured, match: re.Match) -> None:
        if req.headers.get("x-goog-api-key") not in self.fake.api_keys:
            self._error("gemini", 401, "API keys are not supported by this API or the key is invalid.")
            return
        self._gemini(req, match)

    # -- wire -----------------------------------------------------------

    def send_json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=UTF-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, frames: Iterable[bytes], content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            for frame in frames:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _json_array(items: Iterable[dict]) -> Iterator[bytes]:
    for i, item in enumerate(items):
        yield (b"[" if i == 0 else b",\r\n") + json.dumps(item, separators=(",", ":")).encode()
    yield b"]"


FakeVertex.HANDLER = _Handler
