"""How Vertex AI is called: Gemini and Claude models in a Google Cloud project.

A service-account credential calls
``{base}/v1/projects/{project}/locations/{location}/publishers/…/models/{model}:{method}``
with a short-lived access token as its Bearer. That token comes from
``oauth.vertex.bearer()`` through the gateway's token keeper; the account's
private key never reaches this module, and the stand-in the auth file gives
as `secret` is refused rather than sent.

Gemini models (``publishers/google``) speak plain Gemini generateContent.
Claude models (``publishers/anthropic``) speak Anthropic Messages through
``rawPredict`` / ``streamRawPredict``: the model moves from the body into the
URL and the body names the API version as ``anthropic_version``; token
counting is one ``count-tokens:rawPredict`` endpoint with the model in the body.

`vertex-api-key` entries (express mode) reach the Gemini models on the global
endpoint, ``/v1/publishers/google/models/{model}:{method}``, key in
``x-goog-api-key`` (as google-genai sends it) so it stays out of URLs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from ...errors import GatewayError
from ..base import CLIENT_SECRET_PARAMS, Call, UpstreamRequest, extra_headers
from .service_account import SERVICE_ACCOUNT_STANDIN, service_account_of

if TYPE_CHECKING:
    from ...pool.credentials import Credential

# The format without a model to go by; `format_for` decides per model.
FORMAT = "gemini"
# Vertex's name for the Anthropic API version, sent in the body.
ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_LOCATION = "us-central1"
# Locations served by a multi-region host rather than a `{location}-` one.
MULTI_REGIONS = frozenset({"us", "eu"})

_ANTHROPIC_ENDPOINTS = frozenset({"messages", "count_tokens"})
# What Vertex's countTokens accepts; anything else is a 400 "Unknown name".
_GEMINI_COUNT_FIELDS = ("contents", "systemInstruction", "tools", "generationConfig")
_DATED = re.compile(r"(claude-.+)-(\d{8})")
# Vertex names that do not follow from Anthropic's by the date rule.
_VERTEX_NAMES = {"claude-3-5-sonnet-20241022": "claude-3-5-sonnet-v2@20241022"}
_LOCATION = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def is_claude(model: str) -> bool:
    return model.lower().startswith("claude")


def format_for(model: str) -> str:
    return "anthropic" if is_claude(model) else "gemini"


def vertex_model(model: str) -> str:
    """A Claude model's Vertex name: Anthropic's dated ids carry the date after '@'."""
    if model in _VERTEX_NAMES:
        return _VERTEX_NAMES[model]
    if m := _DATED.fullmatch(model):
        return f"{m[1]}@{m[2]}"
    return model


def location_of(cred: Credential) -> str:
    return str(cred.data.get("location") or DEFAULT_LOCATION).strip().lower()


def project_of(cred: Credential) -> str:
    return str(cred.data.get("project_id") or service_account_of(cred.data).get("project_id") or "")


def base_url(template: str, location: str) -> str:
    """The API host for `location` from a `{location}` template.

    "global" drops the regional prefix (aiplatform.googleapis.com) and "us"/"eu"
    use their multi-region hosts; a template without `{location}` (a proxy, a
    test server) is taken as it is.
    """
    if "{location}" not in template:
        return template
    if location == "global":
        return template.replace("{location}-", "").replace("{location}.", "")
    if location in MULTI_REGIONS and "{location}-aiplatform." in template:
        return template.replace("{location}-aiplatform.", f"aiplatform.{location}.rep.")
    return template.replace("{location}", location)


def wrap(body: dict[str, Any], call: Call) -> dict[str, Any]:
    """A body in the model's format, as Vertex takes it at `call.endpoint`."""
    if call.endpoint == "messages":
        out = {k: v for k, v in body.items() if k != "model"}
        out.setdefault("anthropic_version", ANTHROPIC_VERSION)
        return out
    if call.endpoint == "count_tokens":
        # The one counting endpoint serves every Claude model, so the body names it.
        out = {k: v for k, v in body.items() if k not in ("max_tokens", "stream")}
        out["model"] = vertex_model(call.model)
        out.setdefault("anthropic_version", ANTHROPIC_VERSION)
        return out
    if call.endpoint == "countTokens":
        inner = body.get("generateContentRequest")
        source = inner if isinstance(inner, dict) else body
        out = {k: source[k] for k in _GEMINI_COUNT_FIELDS if k in source}
        return body if out == body else out
    return body


def _bearer(cred: Credential) -> str:
    token = cred.secret
    if not token or token.startswith(SERVICE_ACCOUNT_STANDIN) or "PRIVATE KEY" in token:
        raise GatewayError(
            503,
            "token_unavailable",
            f"{cred.id}: no Vertex access token has been issued for this service account yet",
        )
    return token


def _gemini_query(call: Call) -> str:
    query = {k: v for k, v in call.query.items() if k not in CLIENT_SECRET_PARAMS}
    return "?" + urlencode(query) if query else ""


def prepare(call: Call) -> UpstreamRequest:
    cred = call.credential
    headers = {**call.header_defaults, **extra_headers(cred, call.client_headers)}
    if cred.kind == "api-key":
        base = cred.base_url or call.upstreams["vertex"]["api-key-base-url"]
        headers["x-goog-api-key"] = cred.secret
        url = f"{base}/v1/publishers/google/models/{quote(call.model, safe='.-_@')}:{call.endpoint}"
        return UpstreamRequest(url + _gemini_query(call), headers, ("x-goog-api-key",))
    headers["authorization"] = f"Bearer {_bearer(cred)}"
    project, location = project_of(cred), location_of(cred)
    if not project or not _LOCATION.fullmatch(location):
        raise GatewayError(
            500,
            "credential_invalid",
            f"{cred.id}: the vertex auth file needs a project_id and a location like us-central1",
        )
    base = base_url(cred.base_url or call.upstreams["vertex"]["base-url"], location)
    parent = f"{base}/v1/projects/{quote(project, safe='')}/locations/{location}/publishers"
    if call.endpoint in _ANTHROPIC_ENDPOINTS:
        if call.endpoint == "count_tokens":
            url = f"{parent}/anthropic/models/count-tokens:rawPredict"
        else:
            # The body carries Anthropic's `stream` flag; the URL must agree with it.
            method = "streamRawPredict" if call.body.get("stream") else "rawPredict"
            url = f"{parent}/anthropic/models/{quote(vertex_model(call.model), safe='.-_@')}:{method}"
        if beta := call.client_headers.get("anthropic-beta"):
            headers["anthropic-beta"] = beta
    else:
        url = f"{parent}/google/models/{quote(call.model, safe='.-_')}:{call.endpoint}"
        url += _gemini_query(call)
    return UpstreamRequest(url, headers, ("authorization",))
