"""The Kiro executor (headers, model ids, profile ARN) and how Kiro accounts are routed."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from quotio_core import formats, providers
from quotio_core.providers import catalog
from quotio_core.pool.credentials import credential_from_auth_file
from quotio_core.providers import Call
from quotio_core.providers.kiro import call as kiro
from quotio_core.pool.routing import ModelRouter
from quotio_core.providers import merge_upstreams

UPSTREAMS = merge_upstreams(None)
ARN = "arn:aws:codewhisperer:us-east-1:111122223333:profile/ABC"


def kiro_cred(name: str = "kiro-builder-id-x.json", **fields):
    data = {"type": "kiro", "accessToken": "at-1", "refreshToken": "rt-1", "expiresAt": "2099-01-01T00:00:00Z",
            "authMethod": "builder-id", **fields}
    return credential_from_auth_file(name, data)


def call(cred, model: str = "claude-sonnet-4-5", header_defaults=None, client_headers=None) -> Call:
    return Call(cred, UPSTREAMS, client_headers or {}, "generateAssistantResponse", model,
                header_defaults=header_defaults or {})


def test_file_fields_make_a_servable_kiro_credential():
    cred = kiro_cred()
    assert (cred.provider, cred.kind, cred.secret) == ("kiro", "oauth", "at-1")
    assert cred.expires_at.year == 2099
    assert providers.servable(cred) and providers.format_of(cred) == "kiro"
    assert providers.stream_only(cred)
    assert formats.upstream_endpoint("kiro", "generate", True) == "generateAssistantResponse"
    assert formats.upstream_endpoint("kiro", "count", False) is None  # estimated locally


def test_prepare_sends_what_kiros_ide_sends():
    up = kiro.prepare(call(kiro_cred()))
    assert up.url == "https://codewhisperer.us-east-1.amazonaws.com/generateAssistantResponse"
    h = up.headers
    assert h["authorization"] == "Bearer at-1"
    assert h["content-type"] == "application/x-amz-json-1.0"
    assert h["x-amz-target"] == "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"
    assert h["amz-sdk-request"] == "attempt=1; max=3"
    uuid.UUID(h["amz-sdk-invocation-id"])
    mid = hashlib.sha256(b"KotlinNativeAPI/rt-1").hexdigest()
    assert h["x-amz-user-agent"] == f"aws-sdk-js/{kiro.SDK_VERSION} KiroIDE-{kiro.KIRO_VERSION}-{mid}"
    assert h["user-agent"].endswith(f"KiroIDE-{kiro.KIRO_VERSION}-{mid}")
    assert up.secret_headers == ("authorization",)
    # A fresh invocation id per call.
    assert kiro.prepare(call(kiro_cred())).headers["amz-sdk-invocation-id"] != h["amz-sdk-invocation-id"]


def test_machine_id_prefers_profile_arn_then_an_explicit_one():
    assert kiro.machine_id({"profileArn": ARN, "refreshToken": "rt"}) == hashlib.sha256(
        f"KotlinNativeAPI/{ARN}".encode()).hexdigest()
    assert kiro.machine_id({"profile_arn": ARN}) == kiro.machine_id({"profileArn": ARN})
    assert kiro.machine_id({"machineId": "abc", "profileArn": ARN}) == "abc"
    # Builder ID: the OIDC client id, which outlives the rotating refresh token.
    by_client = kiro.machine_id({"clientId": "cid", "refreshToken": "rt-1"})
    assert by_client == kiro.machine_id({"clientId": "cid", "refreshToken": "rt-2"})
    assert by_client == hashlib.sha256(b"KotlinNativeAPI/cid").hexdigest()


def test_kiros_403_for_a_dead_token_counts_as_refused():
    cred = kiro_cred()
    body = b'{"message":"The bearer token included in the request is invalid.","reason":null}'
    assert providers.token_refused(cred, 403, body)
    assert providers.token_refused(cred, 401, b"")
    assert not providers.token_refused(cred, 403, b'{"message":"x-amz-target must be ...","reason":null}')
    assert not providers.token_refused(cred, 400, body)
    claude = credential_from_auth_file("claude-a.json", {"type": "claude", "access_token": "x"})
    assert not providers.token_refused(claude, 403, body)


def test_configured_headers_may_name_the_machine_id():
    cred = kiro_cred(machineId="f" * 64)
    defaults = {"x-amz-user-agent": "aws-sdk-js/1.0.99 KiroIDE-0.9.0-{machine_id}", "x-amzn-kiro-agent-mode": "vibe"}
    h = kiro.prepare(call(cred, header_defaults=defaults)).headers
    assert h["x-amz-user-agent"] == "aws-sdk-js/1.0.99 KiroIDE-0.9.0-" + "f" * 64
    assert h["x-amzn-kiro-agent-mode"] == "vibe"
    # The credential and the protocol headers cannot be overridden.
    h = kiro.prepare(call(cred, header_defaults={"authorization": "Bearer other", "x-amz-target": "x"})).headers
    assert h["authorization"] == "Bearer at-1" and h["x-amz-target"] == kiro.TARGET


@pytest.mark.parametrize(
    ("client", "upstream"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4.5"),
        ("claude-opus-4-5", "claude-opus-4.5"),
        ("claude-3-7-sonnet-20250219", "CLAUDE_3_7_SONNET_20250219_V1_0"),
        ("claude-opus-4-6", "claude-opus-4.6"),  # a newer name by the same rule
        ("claude-sonnet-4.5", "claude-sonnet-4.5"),
        ("auto", "auto"),
        ("something-else", "something-else"),
    ],
)
def test_model_ids(client, upstream):
    assert kiro.kiro_model(client) == upstream


def test_wrap_sets_model_everywhere_and_profile_arn_when_the_file_has_one():
    body = {"conversationState": {
        "currentMessage": {"userInputMessage": {"content": "x", "modelId": "claude-haiku-4-5"}},
        "history": [{"userInputMessage": {"content": "a", "modelId": "claude-haiku-4-5"}},
                    {"assistantResponseMessage": {"content": "b"}}],
    }}
    out = kiro.wrap(body, call(kiro_cred(), "claude-haiku-4-5"))
    st = out["conversationState"]
    assert st["currentMessage"]["userInputMessage"]["modelId"] == "claude-haiku-4.5"
    assert st["history"][0]["userInputMessage"]["modelId"] == "claude-haiku-4.5"
    assert "profileArn" not in out
    social = kiro_cred("kiro-social-x.json", authMethod="social", profileArn=ARN)
    assert kiro.wrap(body, call(social))["profileArn"] == ARN


# --- routing ------------------------------------------------------------------------


def _resolve(creds, model):
    return sorted((c.id, m) for c, m in ModelRouter(creds, providers.servable).resolve(model).candidates)


def claude_cred():
    return credential_from_auth_file("claude-a.json", {"type": "claude", "access_token": "sk-ant-oat01-x"})


def test_kiro_is_claudes_guest_and_owns_its_own_spellings():
    kiro_only = [kiro_cred()]
    both = [claude_cred(), kiro_cred()]
    # Claude's names go to Claude accounts; Kiro takes them when there is none.
    assert _resolve(both, "claude-sonnet-4-5") == [("claude-a.json", "claude-sonnet-4-5")]
    assert _resolve(kiro_only, "claude-sonnet-4-5") == [("kiro-builder-id-x.json", "claude-sonnet-4-5")]
    # Kiro's spelling never reaches Anthropic, which would 404 on it.
    assert _resolve(both, "claude-sonnet-4.5") == [("kiro-builder-id-x.json", "claude-sonnet-4.5")]
    # `kiro/<model>` picks the Kiro accounts, whatever the name.
    assert _resolve(both, "kiro/claude-sonnet-4-5") == [("kiro-builder-id-x.json", "claude-sonnet-4-5")]
    assert _resolve(both, "kiro/auto") == [("kiro-builder-id-x.json", "auto")]


def test_kiro_models_are_listed_and_reach_kiro():
    both = ModelRouter([claude_cred(), kiro_cred()], providers.servable)
    ids = dict(both.model_ids())
    assert {m for m, p in ids.items() if p == "kiro"} == set(catalog("kiro"))
    for model in catalog("kiro"):
        assert both.resolve(model).providers == {"kiro"}
