"""How Gemini CLI (Google OAuth) accounts are called: Code Assist's v1internal methods.

The body is a plain Gemini request wrapped as {model, project, request};
answers come back wrapped as {response: …}, which the Gemini decoders unwrap.
"""

from __future__ import annotations

from typing import Any

from ..base import Call, UpstreamRequest, extra_headers

FORMAT = "gemini"
# The body must be wrapped, so even a Gemini-format client goes through translation.
WRAPPED = True

DEFAULT_HEADERS = {
    "user-agent": "GeminiCLI/0.8.0 (linux; x64)",
    "x-goog-api-client": "google-genai-sdk/1.41.0 gl-node/v22.19.0",
    "client-metadata": "ideType=IDE_UNSPECIFIED,platform=PLATFORM_UNSPECIFIED,pluginType=GEMINI",
}


def project_of(call: Call) -> str:
    return str(call.credential.data.get("project_id") or "")


def wrap(body: dict[str, Any], call: Call) -> dict[str, Any]:
    if call.endpoint == "countTokens":
        # countTokens takes no project, and names the model inside the request.
        inner = {k: v for k, v in body.items() if k in ("contents", "systemInstruction", "tools")}
        return {"request": {"model": f"models/{call.model}", **inner}}
    return {"model": call.model, "project": project_of(call), "request": body}


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    base = cred.base_url or call.upstreams["gemini"]["base-url"]
    headers = {**DEFAULT_HEADERS, **call.header_defaults, **extra_headers(cred, call.client_headers)}
    headers["authorization"] = f"Bearer {cred.secret}"
    url = f"{base}/v1internal:{call.endpoint}"
    if call.endpoint == "streamGenerateContent":
        url += "?alt=sse"
    return UpstreamRequest(url=url, headers=headers, secret_headers=("authorization",))
