"""The Kiro fake refuses what Kiro refuses, so the tests that pass through it mean something."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from quotio_core.formats import eventstream
from tests.fakes.kiro import DEFAULT_TOKEN, PROFILE_ARN, TARGET, FakeKiro

MACHINE = "a" * 64
HEADERS = {
    "authorization": f"Bearer {DEFAULT_TOKEN}",
    "content-type": "application/x-amz-json-1.0",
    "x-amz-target": TARGET,
    "amz-sdk-request": "attempt=1; max=3",
    "x-amz-user-agent": f"aws-sdk-js/1.0.27 KiroIDE-0.7.45-{MACHINE}",
    "user-agent": f"aws-sdk-js/1.0.27 ua/2.1 KiroIDE-0.7.45-{MACHINE}",
}
BODY = {"conversationState": {
    "chatTriggerType": "MANUAL",
    "conversationId": "conv-1",
    "history": [
        {"userInputMessage": {"content": "weather?", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR"}},
        {"assistantResponseMessage": {"content": " ", "toolUses": [
            {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}]}},
    ],
    "currentMessage": {"userInputMessage": {
        "content": "Tool results provided.", "modelId": "claude-sonnet-4.5", "origin": "AI_EDITOR",
        "userInputMessageContext": {
            "toolResults": [{"toolUseId": "tooluse_1", "status": "success", "content": [{"text": "22C"}]}],
            "tools": [{"toolSpecification": {"name": "get_weather", "description": "d",
                                             "inputSchema": {"json": {"type": "object"}}}}],
        },
    }},
}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeKiro]:
    with FakeKiro() as f:
        yield f


def post(fake: FakeKiro, body=BODY, **headers) -> httpx.Response:
    h = {**HEADERS, "amz-sdk-invocation-id": str(uuid.uuid4()), **headers}
    h = {k: v for k, v in h.items() if v is not None}
    return httpx.post(fake.url + "/generateAssistantResponse", headers=h, content=json.dumps(body))


def test_a_correct_request_gets_a_correct_event_stream(fake):
    fake.tool_calls = [{"name": "get_weather", "arguments": {"city": "Bergen"}}]
    try:
        r = post(fake)
    finally:
        fake.tool_calls = []
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
    messages = eventstream.Decoder().feed(r.content)  # CRCs checked here
    kinds = [m.event_type for m in messages]
    assert kinds[:4] == ["assistantResponseEvent"] * 4
    assert kinds[4:] == ["toolUseEvent"] * 4 + ["meteringEvent", "contextUsageEvent", "metricsEvent"]
    usage = json.loads(messages[-1].payload)["tokenUsage"]
    # "weather?" + "Tool results provided." + "22C" = 5 words of prompt; 4 words + one call out.
    assert usage == {"uncachedInputTokens": 5, "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0,
                     "outputTokens": 9}


def _edit(path: str, value) -> dict:
    body = copy.deepcopy(BODY)
    node = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return body


CUR = "conversationState.currentMessage.userInputMessage"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_edit(f"{CUR}.content", "  "), "content must not be empty"),
        (_edit(f"{CUR}.modelId", "claude-sonnet-4-5"), "Invalid model"),
        (_edit(f"{CUR}.origin", "CLI"), "origin"),
        (_edit("conversationState.history.1", {"userInputMessage": BODY["conversationState"]["history"][0]["userInputMessage"]}),
         "alternate"),
        (_edit("conversationState.history", BODY["conversationState"]["history"][:1]), "alternate"),
        (_edit(f"{CUR}.userInputMessageContext.toolResults.0.toolUseId", "tooluse_9"), "answers no earlier toolUse"),
        (_edit(f"{CUR}.userInputMessageContext.tools", []), "not defined"),
        (_edit("conversationState.history.1.assistantResponseMessage.toolUses",
               [{"toolUseId": "tooluse_1", "name": "get_weather", "input": {}}] * 2), "duplicate"),
        (_edit(f"{CUR}.userInputMessageContext.tools.0.toolSpecification.description", "x" * 10_241), "too long"),
        (_edit("conversationState.conversationId", KeyError), "conversationId"),
    ],
)
def test_malformed_bodies_are_400_in_kiros_shape(fake, body, words):
    r = post(fake, body)
    assert r.status_code == 400
    assert words in r.json()["message"] and "reason" in r.json()


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({"authorization": "Bearer nope"}, 403, "bearer token included in the request is invalid"),
        ({"x-amz-target": "AmazonQDeveloperStreamingService.SendMessage"}, 403, "x-amz-target"),
        ({"content-type": "application/json"}, 400, "content-type"),
        ({"amz-sdk-invocation-id": "x"}, 400, "amz-sdk-invocation-id"),
        ({"amz-sdk-request": None}, 400, "amz-sdk-request"),
        ({"x-amz-user-agent": "aws-sdk-js/1.0.27 KiroIDE-0.7.45"}, 400, "x-amz-user-agent"),
        ({"user-agent": "python-httpx"}, 400, "user-agent"),
    ],
)
def test_wrong_headers_are_refused(fake, headers, status, words):
    r = post(fake, **headers)
    assert r.status_code == status
    assert words in r.json()["message"]


def test_social_tokens_need_the_profile_arn(fake):
    fake.add_token("social-tok", social=True)
    assert post(fake, authorization="Bearer social-tok").status_code == 403
    assert post(fake, {**BODY, "profileArn": PROFILE_ARN}, authorization="Bearer social-tok").status_code == 200


def test_programmed_failures(fake):
    fake.reject_once(DEFAULT_TOKEN)
    assert post(fake).status_code == 401
    assert post(fake).status_code == 200
    fake.quota_next()
    r = post(fake)
    assert (r.status_code, r.json()["reason"]) == (402, "MONTHLY_REQUEST_COUNT")
    fake.stream_error_next("truncate")
    r = post(fake)
    dec = eventstream.Decoder()
    dec.feed(r.content)
    assert dec.pending > 0
    fake.stream_error_next("corrupt")
    with pytest.raises(eventstream.FrameError):
        eventstream.Decoder().feed(post(fake).content)
    fake.stream_error_next("exception")
    messages = eventstream.Decoder().feed(post(fake).content)
    assert messages[-1].message_type == "exception"
    assert messages[-1].headers[":exception-type"] == "ThrottlingException"


def test_oidc_refuses_bad_clients_and_grants(fake):
    r = httpx.post(fake.url + "/client/register", json={"clientName": "x", "clientType": "confidential"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    r = httpx.post(fake.url + "/device_authorization", json={"clientId": "x", "clientSecret": "y", "startUrl": "z"})
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    client = httpx.post(fake.url + "/client/register", json={
        "clientName": "x", "clientType": "public", "scopes": ["codewhisperer:completions"]}).json()
    r = httpx.post(fake.url + "/token", json={**{k: client[k] for k in ("clientId", "clientSecret")},
                                              "grantType": "password"})
    assert r.json()["error"] == "unsupported_grant_type"
    r = httpx.post(fake.url + "/refreshToken", json={"refreshToken": "unknown"})
    assert r.status_code == 401
