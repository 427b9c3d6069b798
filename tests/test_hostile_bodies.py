"""Hostile request bodies through the real mitmdump: a 400 in the client's shape, nothing upstream.

For each client format, against a same-format provider and a translated one:
deep nesting (the whole body, or inside the messages), messages of the wrong
type, a content block that is a number, tools as an object, max_tokens as a
string or a boolean. Each must be a 400 naming the field, in the client's
error shape, with nothing sent to any upstream; the gateway must serve a
valid request right after. Unknown extra fields still reach a same-format
upstream untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.fakes.upstreams import FakeUpstream
from tests.gateway_proc import GatewayProcess, start_gateway

KEY = "hostile-client-key-0123456789"
PROVIDERS = {
    # name: (model the client asks for, the provider's format)
    "claude": ("claude-sonnet-4-20250514", "anthropic"),
    "compat": ("fast", "openai"),
    "gemini": ("gemini-2.5-flash", "gemini"),
    "codex": ("gpt-5", "responses"),
}
# Client format -> (same-format provider, a provider it is translated for).
TARGETS = {
    "anthropic": ("claude", "gemini"),
    "openai": ("compat", "claude"),
    "responses": ("codex", "claude"),
    "gemini": ("gemini", "claude"),
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    ups = {name: FakeUpstream(f"Hello from {name}") for name in PROVIDERS}
    for up in ups.values():
        up.start()
    yield ups
    for up in ups.values():
        up.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, fakes) -> Iterator[GatewayProcess]:
    config = {
        "api-keys": [KEY],
        "claude-api-key": [{"api-key": "sk-ant-hostile"}],
        "gemini-api-key": [{"api-key": "AIza-hostile", "models": [{"name": "gemini-2.5-flash"}]}],
        "openai-compatibility": [{
            "name": "local",
            "base-url": fakes["compat"].url + "/v1",
            "api-key-entries": [{"api-key": "sk-compat"}],
            "models": [{"name": "upstream-model-x", "alias": "fast"}],
        }],
        "upstreams": {
            "claude": {"base-url": fakes["claude"].url},
            "gemini": {"api-key-base-url": fakes["gemini"].url},
            "codex": {"base-url": fakes["codex"].url + "/backend-api/codex"},
        },
    }
    auth = {
        "codex-a@example.com.json": {
            "type": "codex", "email": "a@example.com", "access_token": "codex-at", "account_id": "acct",
        },
    }
    gateway = start_gateway(tmp_path_factory.mktemp("hostile"), config, auth_files=auth, confdir=confdir)
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _clear(fakes, gw):
    for up in fakes.values():
        up.clear()
    yield
    # Upstream errors cool credentials down (only if a body got through): start each test afresh.
    httpx.post(gw.url + "/v0/management/reset-quota").raise_for_status()


# --- requests per client format ---------------------------------------------------------------


def valid_body(fmt: str, model: str) -> dict[str, Any]:
    if fmt == "anthropic":
        return {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    if fmt == "openai":
        return {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    if fmt == "responses":
        return {"model": model, "max_output_tokens": 32, "input": [{"role": "user", "content": "hi"}]}
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 32}}


def url_for(gw: GatewayProcess, fmt: str, model: str) -> str:
    paths = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions", "responses": "/v1/responses"}
    return gw.url + paths.get(fmt, f"/v1beta/models/{model}:generateContent")


HEADERS = {
    "anthropic": {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    "openai": {"authorization": f"Bearer {KEY}"},
    "responses": {"authorization": f"Bearer {KEY}"},
    "gemini": {"x-goog-api-key": KEY},
}


def post(gw: GatewayProcess, fmt: str, model: str, content: bytes) -> httpx.Response:
    headers = {**HEADERS[fmt], "content-type": "application/json"}
    return httpx.post(url_for(gw, fmt, model), content=content, headers=headers, timeout=20)


def deep(depth: int) -> Any:
    value: Any = "x"
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def set_in(body: dict, path: tuple, value: Any) -> bytes:
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(body).encode()


# Each format's names for the places the hostile values go.
MESSAGES = {"anthropic": ("messages",), "openai": ("messages",), "responses": ("input",), "gemini": ("contents",)}
BLOCKS = {
    "anthropic": ("messages", 0, "content"),
    "openai": ("messages", 0, "content"),
    "responses": ("input", 0, "content"),
    "gemini": ("contents", 0, "parts"),
}
MAX_TOKENS = {
    "anthropic": ("max_tokens",),
    "openai": ("max_tokens",),
    "responses": ("max_output_tokens",),
    "gemini": ("generationConfig", "maxOutputTokens"),
}
# A wrong type for the messages: Responses takes a string input, so it gets a number.
NOT_MESSAGES = {"anthropic": "hi", "openai": "hi", "responses": 42, "gemini": "hi"}

# name -> (body builder for (fmt, model), what the error message must contain)
Case = tuple[Callable[[str, str], bytes], Callable[[str], str]]
CASES: dict[str, Case] = {
    "brackets-100k": (lambda fmt, model: b"[" * 100_000, lambda fmt: "nests deeper than"),
    "deep-in-messages": (
        lambda fmt, model: set_in(valid_body(fmt, model), BLOCKS[fmt], [deep(500)]),
        lambda fmt: "nests deeper than",
    ),
    "messages-not-a-list": (
        lambda fmt, model: set_in(valid_body(fmt, model), MESSAGES[fmt], NOT_MESSAGES[fmt]),
        lambda fmt: f"{MESSAGES[fmt][0]} must be",
    ),
    "block-is-a-number": (
        lambda fmt, model: set_in(valid_body(fmt, model), BLOCKS[fmt], [7]),
        lambda fmt: ".".join(map(str, BLOCKS[fmt])) + ".0 must be an object",
    ),
    "tools-an-object": (
        lambda fmt, model: set_in(valid_body(fmt, model), ("tools",), {"name": "f"}),
        lambda fmt: "tools must be a list",
    ),
    "max-tokens-a-string": (
        lambda fmt, model: set_in(valid_body(fmt, model), MAX_TOKENS[fmt], "32"),
        lambda fmt: ".".join(MAX_TOKENS[fmt]) + " must be an integer",
    ),
    "max-tokens-true": (
        lambda fmt, model: set_in(valid_body(fmt, model), MAX_TOKENS[fmt], True),
        lambda fmt: ".".join(MAX_TOKENS[fmt]) + " must be an integer",
    ),
}


def error_message(fmt: str, r: httpx.Response) -> str:
    """The error's message, after checking the body is the client format's error shape."""
    body = r.json()
    if fmt == "anthropic":
        assert body["type"] == "error", body
        assert body["error"]["type"] == "invalid_request_error", body
    elif fmt == "gemini":
        assert body["error"]["code"] == 400 and body["error"]["status"] == "INVALID_ARGUMENT", body
    else:
        assert set(body) == {"error"} and body["error"]["type"] == "invalid_request_error", body
    return body["error"]["message"]


def assert_serves(gw: GatewayProcess, fakes: dict[str, FakeUpstream], fmt: str, provider: str) -> None:
    model = PROVIDERS[provider][0]
    r = post(gw, fmt, model, json.dumps(valid_body(fmt, model)).encode())
    assert r.status_code == 200, r.text
    assert f"Hello from {provider}" in r.text
    assert len(fakes[provider].requests) == 1


PAIRS = [(fmt, provider) for fmt, targets in TARGETS.items() for provider in targets]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("fmt", "provider"), PAIRS)
def test_hostile_body_is_400_in_client_shape(gw, fakes, fmt, provider, case):
    build, names = CASES[case]
    model = PROVIDERS[provider][0]
    r = post(gw, fmt, model, build(fmt, model))
    assert r.status_code == 400, r.text
    assert names(fmt) in error_message(fmt, r)
    assert all(not up.requests for up in fakes.values()), "a hostile body reached an upstream"
    assert_serves(gw, fakes, fmt, provider)


# --- the official SDKs ---------------------------------------------------------------------------


def test_anthropic_sdk_gets_a_bad_request_error(gw, fakes):
    client = anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)
    model, hi = PROVIDERS["claude"][0], [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=model, max_tokens=32, messages="hi")  # type: ignore[arg-type]
    assert e.value.status_code == 400
    assert e.value.body["error"]["type"] == "invalid_request_error"
    assert "messages must be a list" in e.value.body["error"]["message"]
    # The SDK does arithmetic on max_tokens itself: a string fails before sending, a boolean does not.
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=model, max_tokens=True, messages=hi)
    assert "max_tokens must be an integer" in e.value.body["error"]["message"]
    assert not fakes["claude"].requests
    assert client.messages.create(model=model, max_tokens=32, messages=hi).content[0].text == "Hello from claude"


def test_openai_sdk_gets_a_bad_request_error(gw, fakes):
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=PROVIDERS["compat"][0], messages=[{"role": "user", "content": "hi"}], tools={"type": "function"},  # type: ignore[arg-type]
        )
    assert e.value.status_code == 400
    assert "tools must be a list" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=PROVIDERS["codex"][0], input=[{"role": "user", "content": [5]}])  # type: ignore[list-item]
    assert "input.0.content.0 must be an object" in e.value.message
    assert all(not up.requests for up in fakes.values())
    reply = client.chat.completions.create(model=PROVIDERS["compat"][0], messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "Hello from compat"


# --- unknown fields pass through -----------------------------------------------------------------

EXTRA = {"nested": [1, "two", None, {"three": 3.5}], "flag": False}


@pytest.mark.parametrize("fmt", TARGETS)
def test_unknown_field_reaches_same_format_upstream_untouched(gw, fakes, fmt):
    provider = TARGETS[fmt][0]
    model = PROVIDERS[provider][0]
    body = {**valid_body(fmt, model), "x_quotio_probe": EXTRA}
    if fmt == "responses":
        body.update(stream=True, store=False, instructions="")  # what the Codex backend insists on
    r = post(gw, fmt, model, json.dumps(body).encode())
    assert r.status_code == 200, r.text
    assert fakes[provider].last.json["x_quotio_probe"] == EXTRA
