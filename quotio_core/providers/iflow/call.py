"""How iFlow accounts are called: OpenAI Chat Completions with the account's API key, signed.

Every request names a session and a timestamp and signs both with the API
key, so the upstream can tell the CLI's requests from replayed ones.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

from ..base import Call, UpstreamRequest, extra_headers

FORMAT = "openai"

# The signature covers the User-Agent, so an override through
# `header-defaults` (`iflow:`) is signed as sent.
DEFAULT_HEADERS = {"user-agent": "iFlow-Cli"}

_PATHS = {"chat": "/chat/completions"}


def signature(api_key: str, user_agent: str, session_id: str, timestamp_ms: str) -> str:
    """Lowercase hex HMAC-SHA256 of "<UA>:<session-id>:<timestamp>" keyed by the API key."""
    message = f"{user_agent}:{session_id}:{timestamp_ms}".encode()
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    base = cred.base_url or call.upstreams["iflow"]["base-url"]
    headers = {**DEFAULT_HEADERS, **call.header_defaults, **extra_headers(cred, call.client_headers)}
    session_id = f"session-{uuid.uuid4()}"
    timestamp = str(int(time.time() * 1000))
    headers.update(
        {
            "authorization": f"Bearer {cred.secret}",
            "content-type": "application/json",
            "session-id": session_id,
            "x-iflow-timestamp": timestamp,
            "x-iflow-signature": signature(cred.secret, headers["user-agent"], session_id, timestamp),
        }
    )
    return UpstreamRequest(
        url=f"{base}{_PATHS[call.endpoint]}", headers=headers, secret_headers=("authorization",)
    )
