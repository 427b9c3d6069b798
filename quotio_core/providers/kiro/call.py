"""How Kiro (AWS CodeWhisperer) accounts are called: generateAssistantResponse.

Kiro serves Claude models behind AWS's JSON-RPC style API: one POST with the
operation in `x-amz-target`, a `conversationState` body (translate/kiro_request)
and a binary event stream back (translate/kiro_stream). It only streams.

Client identity: Kiro's IDE sends the AWS JS SDK's user agent with its own
version and a machine id. The defaults below follow it; any header can be
overridden under `header-defaults.kiro` in the config, and `{machine_id}` in
an overriding value is replaced by the account's machine id. How Kiro derives
the machine id is unconfirmed (hex SHA-256 of `KotlinNativeAPI/` plus the
profile ARN or refresh token), so an auth file's `machineId` wins over it.
Without a profile ARN the seed is the login's OIDC client id before the
refresh token: refresh tokens rotate, and a machine id that changed every
hour would look like a new machine each time.

Kiro refuses an expired or revoked token with 403, not 401; `token_refused`
tells the gateway, so it refreshes the token and tries again as after a 401.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any

from ..base import Call, UpstreamRequest, extra_headers

FORMAT = "kiro"
STREAM_ONLY = True

TARGET = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
SDK_VERSION = "1.0.27"
KIRO_VERSION = "0.7.45"
DEFAULT_HEADERS = {
    "x-amz-user-agent": f"aws-sdk-js/{SDK_VERSION} KiroIDE-{KIRO_VERSION}-{{machine_id}}",
    "user-agent": (
        f"aws-sdk-js/{SDK_VERSION} ua/2.1 os/linux lang/js md/nodejs "
        f"api/codewhispererstreaming#{SDK_VERSION} m/E KiroIDE-{KIRO_VERSION}-{{machine_id}}"
    ),
    "amz-sdk-request": "attempt=1; max=3",
    # Kiro's IDE opts out of AWS using the prompts to improve its service.
    "x-amzn-codewhisperer-optout": "true",
}

# Client model names -> Kiro's model ids. Names not listed pass through as
# they are, after the generic rule in `kiro_model` (Kiro spells minor
# versions with a dot and has no dated snapshots).
MODELS: dict[str, str] = {
    "claude-sonnet-4-5": "claude-sonnet-4.5",
    "claude-sonnet-4-5-20250929": "claude-sonnet-4.5",
    "claude-sonnet-4": "claude-sonnet-4",
    "claude-sonnet-4-20250514": "claude-sonnet-4",
    "claude-haiku-4-5": "claude-haiku-4.5",
    "claude-haiku-4-5-20251001": "claude-haiku-4.5",
    "claude-opus-4-5": "claude-opus-4.5",
    "claude-opus-4-5-20251101": "claude-opus-4.5",
    "claude-3-7-sonnet-20250219": "CLAUDE_3_7_SONNET_20250219_V1_0",
}
_DATED = re.compile(r"-\d{8}$")
_DASHED_MINOR = re.compile(r"^(claude-(?:opus|sonnet|haiku))-(\d+)-(\d)$")


def kiro_model(name: str) -> str:
    if name in MODELS:
        return MODELS[name]
    undated = _DATED.sub("", name)
    if undated in MODELS:
        return MODELS[undated]
    if m := _DASHED_MINOR.match(undated):
        return f"{m[1]}-{m[2]}.{m[3]}"
    return name


def _field(data: Mapping[str, Any], camel: str, snake: str) -> str:
    return str(data.get(camel) or data.get(snake) or "")


def profile_arn(data: Mapping[str, Any]) -> str:
    return _field(data, "profileArn", "profile_arn")


def machine_id(data: Mapping[str, Any]) -> str:
    if explicit := _field(data, "machineId", "machine_id"):
        return explicit
    seed = (
        profile_arn(data)
        or _field(data, "clientId", "client_id")
        or _field(data, "refreshToken", "refresh_token")
    )
    return hashlib.sha256(f"KotlinNativeAPI/{seed}".encode()).hexdigest()


_REFUSED_TOKEN = b"bearer token included in the request is invalid"


def token_refused(status: int, body: bytes) -> bool:
    """Whether an answer says the token itself was refused (a refresh may help)."""
    return status == 403 and _REFUSED_TOKEN in body.lower()


def wrap(body: dict[str, Any], call: Call) -> dict[str, Any]:
    """Kiro's model id on every user message, and the account's profile ARN."""
    model = kiro_model(call.model)
    state = body.get("conversationState") or {}
    messages = [state.get("currentMessage") or {}, *(state.get("history") or [])]
    for entry in messages:
        user = entry.get("userInputMessage")
        if isinstance(user, dict):
            user["modelId"] = model
    # Social-login tokens need it; Builder ID accounts have none and send none.
    if arn := profile_arn(call.credential.data):
        body["profileArn"] = arn
    return body


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    base = cred.base_url or call.upstreams["kiro"]["base-url"]
    mid = machine_id(cred.data)
    configured = {**DEFAULT_HEADERS, **call.header_defaults, **extra_headers(cred, call.client_headers)}
    headers = {k: v.replace("{machine_id}", mid) for k, v in configured.items()}
    headers.update(
        {
            "authorization": f"Bearer {cred.secret}",
            "content-type": "application/x-amz-json-1.0",
            "accept": "*/*",
            "x-amz-target": TARGET,
            "amz-sdk-invocation-id": str(uuid.uuid4()),
        }
    )
    return UpstreamRequest(
        url=f"{base}/generateAssistantResponse", headers=headers, secret_headers=("authorization",)
    )
