"""Vertex AI through the real mitmdump: official SDKs, a vertex auth file, the fake Vertex.

Service-account requests go through the gateway's token keeper, which calls
`oauth.vertex.bearer()` against the fake token endpoint and hands the executor
only the access token. Express-mode keys need no token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from quotio_core.providers.login import LoginContext
from quotio_core.providers.vertex import login
from tests.fakes.vertex import FakeVertex
from tests.gateway_proc import GatewayProcess, start_gateway

KEY = "vertex-e2e-client-key-0123"
EXPRESS_KEY = "AQ.vertex-express-key-0123"
PROJECT, LOCATION = "proj-e2e", "us-east5"
GEMINI, CLAUDE = "gemini-2.5-pro", "claude-sonnet-4-5-20250929"
REPLY = "Hello from Vertex fake"
PROMPT = "say hello to the vertex"

@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVertex]:
    with FakeVertex(REPLY) as f:
        f.api_keys.add(EXPRESS_KEY)
        yield f


@pytest.fixture(scope="module")
def sa(fake: FakeVertex) -> dict:
    return fake.new_service_account(project=PROJECT, location=LOCATION)


def imported(fake: FakeVertex, sa: dict, location: str) -> tuple[str, dict]:
    """The file exactly as an import through the login module writes it."""

    async def run() -> dict:
        async with httpx.AsyncClient() as http:
            ctx = LoginContext(urls=fake.upstreams, http=http, options={"location": location})
            return await login.import_service_account(ctx, json.dumps(sa))

    data = asyncio.run(run())
    return login.file_name(data), data


@pytest.fixture(scope="module")
def doomed(fake: FakeVertex) -> dict:
    """A second account, only reached as `rv/<model>`, whose key is deleted before first use."""
    return fake.new_service_account(project="proj-revoked", location="global")


@pytest.fixture(scope="module")
def gw(tmp_path_factory, confdir, fake, sa, doomed) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("vertex")
    config = {
        "api-keys": [KEY],
        "vertex-api-key": [{"api-key": EXPRESS_KEY, "prefix": "express"}],
        "upstreams": {"vertex": fake.upstreams},
    }
    name, data = imported(fake, sa, LOCATION)
    doomed_name, doomed_data = imported(fake, doomed, "global")
    files = {name: data, doomed_name: {**doomed_data, "prefix": "rv"}}
    gw = start_gateway(root, config, auth_files=files, confdir=confdir,
                       args=["-w", str(root / "flows.mitm")])
    gw.extra["flows"] = root / "flows.mitm"
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _reset(request, fake):
    fake.clear()
    fake.model.tool_calls = []
    fake.model.thinking = ""
    yield
    if "gw" in request.fixturenames:
        httpx.post(request.getfixturevalue("gw").url + "/v0/management/reset-quota").raise_for_status()


def anthropic_client(gw: GatewayProcess) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=KEY, max_retries=0)


def openai_client(gw: GatewayProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=KEY, max_retries=0)


def ask_anthropic(gw: GatewayProcess, model: str, stream: bool) -> str:
    client = anthropic_client(gw)
    args = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]}
    if not stream:
        return "".join(b.text for b in client.messages.create(**args).content if b.type == "text")
    with client.messages.stream(**args) as s:
        return "".join(s.text_stream)


def ask_openai(gw: GatewayProcess, model: str, stream: bool) -> str:
    client = openai_client(gw)
    messages = [{"role": "user", "content": PROMPT}]
    if not stream:
        return client.chat.completions.create(model=model, messages=messages).choices[0].message.content
    chunks = client.chat.completions.create(model=model, messages=messages, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def the_call(fake: FakeVertex):
    [call] = fake.api_requests()
    return call


def assert_vertex_bearer(fake: FakeVertex, sa: dict, call) -> None:
    assert call.headers["authorization"] == f"Bearer {fake.issued[-1]}"
    blob = json.dumps(call.headers) + call.body.decode()
    assert sa["private_key"] not in blob and "PRIVATE KEY" not in blob and KEY not in blob
    assert "x-api-key" not in call.headers and "x-goog-api-key" not in call.headers


# --- service account: Gemini and Claude models, both SDKs, stream and not ------------------


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_gemini_model_on_vertex(gw, fake, sa, sdk: str, stream: bool) -> None:
    ask = ask_openai if sdk == "openai" else ask_anthropic
    assert ask(gw, GEMINI, stream) == REPLY
    call = the_call(fake)
    method = "streamGenerateContent" if stream else "generateContent"
    assert call.path == (
        f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{GEMINI}:{method}"
    )
    assert call.query == ({"alt": "sse"} if stream else {})
    assert call.json["contents"][0]["parts"][0]["text"] == PROMPT
    assert_vertex_bearer(fake, sa, call)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_claude_model_on_vertex(gw, fake, sa, sdk: str, stream: bool) -> None:
    ask = ask_openai if sdk == "openai" else ask_anthropic
    assert ask(gw, CLAUDE, stream) == REPLY
    call = the_call(fake)
    method = "streamRawPredict" if stream else "rawPredict"
    assert call.path == (
        f"/v1/projects/{PROJECT}/locations/{LOCATION}"
        f"/publishers/anthropic/models/claude-sonnet-4-5@20250929:{method}"
    )
    assert "model" not in call.json
    assert call.json["anthropic_version"] == "vertex-2023-10-16"
    assert bool(call.json.get("stream")) is stream
    assert call.json["messages"][0]["role"] == "user"
    assert_vertex_bearer(fake, sa, call)


def test_claude_tool_call_and_usage_through_openai(gw, fake) -> None:
    fake.model.tool_calls = [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    fake.model.reply_text = ""
    try:
        resp = openai_client(gw).chat.completions.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": "weather in oslo"}],
            tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}}}}],
        )
    finally:
        fake.model.reply_text = REPLY
    [tool_call] = resp.choices[0].message.tool_calls
    assert (tool_call.function.name, json.loads(tool_call.function.arguments)) == ("get_weather", {"city": "Oslo"})
    assert resp.usage.prompt_tokens == 3
    assert the_call(fake).json["tools"][0]["name"] == "get_weather"


def test_claude_count_tokens_on_vertex(gw, fake, sa) -> None:
    count = anthropic_client(gw).messages.count_tokens(
        model=CLAUDE, messages=[{"role": "user", "content": "one two three four"}]
    )
    assert count.input_tokens == 4
    call = the_call(fake)
    assert call.path.endswith(f"/locations/{LOCATION}/publishers/anthropic/models/count-tokens:rawPredict")
    assert call.json["model"] == "claude-sonnet-4-5@20250929"
    assert_vertex_bearer(fake, sa, call)


def test_gemini_sdk_native_on_vertex(gw, fake, sa) -> None:
    client = genai.Client(api_key=KEY, http_options=gtypes.HttpOptions(base_url=gw.url, api_version="v1beta"))
    resp = client.models.generate_content(model=GEMINI, contents=PROMPT)
    assert resp.text == REPLY
    call = the_call(fake)
    assert call.path.endswith(f"/publishers/google/models/{GEMINI}:generateContent")
    assert "key" not in call.query
    assert_vertex_bearer(fake, sa, call)


def test_bearer_is_reused_and_renewed_after_a_401(gw, fake) -> None:
    assert ask_anthropic(gw, CLAUDE, False) == REPLY
    assert ask_anthropic(gw, GEMINI, False) == REPLY
    first, second = fake.api_requests()
    assert first.headers["authorization"] == second.headers["authorization"]
    token = first.headers["authorization"].removeprefix("Bearer ")
    issued = len(fake.issued)
    fake.reject_once(token)
    # The 401 drops the token; one new one is signed and the request retried with it.
    assert ask_anthropic(gw, CLAUDE, False) == REPLY
    rejected, retried = fake.api_requests()[-2:]
    assert rejected.headers["authorization"] == f"Bearer {token}"
    assert retried.headers["authorization"] == f"Bearer {fake.issued[-1]}" != f"Bearer {token}"
    assert len(fake.issued) == issued + 1
    assert ask_anthropic(gw, GEMINI, False) == REPLY
    assert fake.api_requests()[-1].headers["authorization"] == f"Bearer {fake.issued[-1]}"


def test_bearer_is_renewed_before_it_expires(gw, fake) -> None:
    assert ask_anthropic(gw, GEMINI, False) == REPLY
    fake.token_lifetime = 61  # the keeper renews a minute ahead: good for one second
    try:
        fake.reject_once(fake.api_requests()[-1].headers["authorization"].removeprefix("Bearer "))
        assert ask_anthropic(gw, GEMINI, False) == REPLY  # 401, then a short-lived token
        short = fake.issued[-1]
        assert fake.api_requests()[-1].headers["authorization"] == f"Bearer {short}"
    finally:
        fake.token_lifetime = 3599
    time.sleep(1.2)
    assert ask_anthropic(gw, GEMINI, False) == REPLY
    assert fake.issued[-1] != short
    assert fake.api_requests()[-1].headers["authorization"] == f"Bearer {fake.issued[-1]}"


def test_private_key_stays_out_of_logs_records_and_flows(gw, fake, sa) -> None:
    assert ask_openai(gw, CLAUDE, False) == REPLY
    records = httpx.get(gw.url + "/v0/management/logs").text
    auth = httpx.get(gw.url + "/v0/management/auth").text
    key_body = sa["private_key"].split("\n")[1]
    for text in (records, auth, gw.log(), gw.extra["flows"].read_bytes().decode("latin-1")):
        assert key_body not in text
        assert fake.issued[-1] not in text


def test_revoked_key_leaves_the_pool(gw, fake, doomed) -> None:
    fake.revoke(doomed["client_email"])
    # The only credential for `rv/` is gone from the pool: the model has no server left.
    with pytest.raises(openai.NotFoundError):
        ask_openai(gw, "rv/gemini-2.5-pro", False)
    assert fake.api_requests() == []  # nothing reached Vertex without a token
    saved = json.loads((gw.auth_dir / "vertex-proj-revoked.json").read_text())
    assert saved["needs_login"] is True
    assert "Invalid JWT Signature" in saved["last_error"]
    assert saved["service_account"] == doomed  # the key stays; only a new import replaces it
    listed = httpx.get(gw.url + "/v0/management/auth").text
    assert doomed["private_key"].split("\n")[1] not in listed
    [entry] = [e for e in json.loads(listed)["auth_files"] if e["id"] == "vertex-proj-revoked.json"]
    assert entry["status"] == "needs-login"


def test_import_through_management_then_serve(gw, fake) -> None:
    """`POST /v0/management/vertex/import` writes the file this module's import makes."""
    bad = fake.new_service_account(project="proj-bad")
    r = httpx.post(gw.url + "/v0/management/vertex/import", json={**bad, "private_key": "oops"})
    assert r.status_code == 400 and "'private_key'" in r.json()["error"]
    new = fake.new_service_account(project="proj-import", location="europe-west1")
    r = httpx.post(gw.url + "/v0/management/vertex/import", params={"location": "europe-west1"},
                   json=new)
    assert r.status_code == 200, r.text
    assert (r.json()["file"], r.json()["project_id"]) == ("vertex-proj-import.json", "proj-import")
    assert json.loads((gw.auth_dir / "vertex-proj-import.json").read_text())["location"] == "europe-west1"
    assert new["private_key"].split("\n")[1] not in r.text
    try:
        # Round robin over both service accounts: two asks reach both projects.
        for _ in range(2):
            assert ask_openai(gw, GEMINI, False) == REPLY
        paths = {c.path.split("/publishers/")[0] for c in fake.api_requests()}
        assert paths == {f"/v1/projects/{PROJECT}/locations/{LOCATION}",
                         "/v1/projects/proj-import/locations/europe-west1"}
    finally:
        httpx.delete(gw.url + "/v0/management/auth/vertex-proj-import.json").raise_for_status()


# --- express-mode keys (no token keeper involved) -------------------------------------


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_express_key_on_vertex(gw, fake, sdk: str, stream: bool) -> None:
    ask = ask_openai if sdk == "openai" else ask_anthropic
    assert ask(gw, "express/gemini-2.5-flash", stream) == REPLY
    call = the_call(fake)
    method = "streamGenerateContent" if stream else "generateContent"
    assert call.path == f"/v1/publishers/google/models/gemini-2.5-flash:{method}"
    assert call.query == ({"alt": "sse"} if stream else {})
    assert call.headers["x-goog-api-key"] == EXPRESS_KEY
    assert "authorization" not in call.headers
    assert KEY not in json.dumps(call.headers)


def test_express_key_wrong_key_is_the_clients_401(gw, fake) -> None:
    fake.api_keys.discard(EXPRESS_KEY)
    try:
        with pytest.raises(openai.AuthenticationError):
            ask_openai(gw, "express/gemini-2.5-flash", False)
    finally:
        fake.api_keys.add(EXPRESS_KEY)


def test_express_key_only_serves_gemini(gw) -> None:
    with pytest.raises(anthropic.NotFoundError):
        ask_anthropic(gw, "express/claude-sonnet-4-5-20250929", False)
