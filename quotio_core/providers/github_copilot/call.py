"""How GitHub Copilot accounts are called: OpenAI Chat Completions on the account's API host.

The credential's secret is the short-lived Copilot token (the token keeper
trades the file's GitHub token for it) and `data["api_base"]` the API host
the exchange named. Copilot bills and gates by what the body holds, so two
headers are derived from it: who spoke last (`X-Initiator`) and whether
images are present (`Copilot-Vision-Request`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..base import Call, UpstreamRequest, extra_headers

FORMAT = "openai"

# The VS Code Copilot Chat identity; versions drift, so `header-defaults`
# (`github-copilot:` in the config) overrides each of them.
DEFAULT_HEADERS = {
    "editor-version": "vscode/1.100.0",
    "editor-plugin-version": "copilot-chat/0.26.7",
    "user-agent": "GitHubCopilotChat/0.26.7",
    "copilot-integration-id": "vscode-chat",
    "openai-intent": "conversation-panel",
    "x-github-api-version": "2025-04-01",
}

_PATHS = {"chat": "/chat/completions"}


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else []


def initiator(body: Mapping[str, Any]) -> str:
    """"user" when a person wrote the last message, else "agent" (a tool result, a prefill)."""
    messages = _messages(body)
    return "user" if not messages or messages[-1].get("role") == "user" else "agent"


def has_images(body: Mapping[str, Any]) -> bool:
    for message in _messages(body):
        content = message.get("content")
        if isinstance(content, list) and any(
            isinstance(part, Mapping) and part.get("type") == "image_url" for part in content
        ):
            return True
    return False


def api_base(call: Call) -> str:
    cred = call.credential
    return cred.base_url or str(cred.data.get("api_base") or "") or call.upstreams["github-copilot"]["base-url"]


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    headers = {**DEFAULT_HEADERS, **call.header_defaults, **extra_headers(cred, call.client_headers)}
    headers.update(
        {
            "authorization": f"Bearer {cred.secret}",
            "content-type": "application/json",
            "x-request-id": str(uuid.uuid4()),
            "x-initiator": initiator(call.body),
        }
    )
    if has_images(call.body):
        headers["copilot-vision-request"] = "true"
    return UpstreamRequest(
        url=f"{api_base(call)}{_PATHS[call.endpoint]}", headers=headers, secret_headers=("authorization",)
    )
