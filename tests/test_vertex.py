"""Vertex AI: URL building, body adaptation, routing and request plans (no network)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from quotio_core import providers
from quotio_core.config import load_config
from quotio_core.providers.vertex.service_account import SERVICE_ACCOUNT_STANDIN
from quotio_core.pool.credentials import (
    Credential,
    credential_from_auth_file,
    credentials_from_config,
)
from quotio_core.errors import GatewayError
from quotio_core.gateway import Gateway
from quotio_core.providers import Call, executor_for, format_of, servable
from quotio_core.providers.vertex import call as vertex
from quotio_core.routes import classify
from quotio_core.pool.routing import ModelNotFound, ModelRouter
from quotio_core.providers import merge_upstreams

UPSTREAMS = merge_upstreams(None)
TOKEN = "ya29.vertex-access-token"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"


def vertex_file(project: str = "proj-1", location: str | None = "us-central1", **extra) -> dict:
    data = {
        "type": "vertex",
        "project_id": project,
        "email": f"sa@{project}.iam.gserviceaccount.com",
        "service_account": {
            "type": "service_account",
            "project_id": project,
            "client_email": f"sa@{project}.iam.gserviceaccount.com",
            "private_key": PEM,
            "token_uri": "https://oauth2.googleapis.com/token",
        },
        **extra,
    }
    if location is not None:
        data["location"] = location
    return data


def sa_cred(secret: str = TOKEN, **file_fields) -> Credential:
    """A vertex credential as the token keeper hands it to the executor."""
    return replace(credential_from_auth_file("vertex-proj-1.json", vertex_file(**file_fields)), secret=secret)


def key_cred(secret: str = "AQ.express-key", **kw) -> Credential:
    return Credential(id="vertex-api-key[0]", provider="vertex", kind="api-key", source="config",
                      secret=secret, **kw)


def call(cred: Credential, endpoint: str, model: str, *, stream: bool = False,
         query: dict | None = None, headers: dict | None = None, upstreams=UPSTREAMS) -> Call:
    return Call(credential=cred, upstreams=upstreams, client_headers=headers or {},
                endpoint=endpoint, model=model, query=query or {},
                body={"stream": True} if stream else {})


# --- URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "location", "host"),
    [
        ("https://{location}-aiplatform.googleapis.com", "us-central1",
         "https://us-central1-aiplatform.googleapis.com"),
        ("https://{location}-aiplatform.googleapis.com", "europe-west4",
         "https://europe-west4-aiplatform.googleapis.com"),
        ("https://{location}-aiplatform.googleapis.com", "global", "https://aiplatform.googleapis.com"),
        ("https://{location}-aiplatform.googleapis.com", "us", "https://aiplatform.us.rep.googleapis.com"),
        ("https://{location}-aiplatform.googleapis.com", "eu", "https://aiplatform.eu.rep.googleapis.com"),
        ("http://127.0.0.1:9000", "asia-northeast1", "http://127.0.0.1:9000"),
        ("https://vertex.proxy.example/{location}", "us-east5", "https://vertex.proxy.example/us-east5"),
    ],
)
def test_base_url_per_location(template: str, location: str, host: str) -> None:
    assert vertex.base_url(template, location) == host


def test_gemini_generate_url_and_bearer() -> None:
    up = vertex.prepare(call(sa_cred(), "generateContent", "gemini-2.5-pro"))
    assert up.url == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/proj-1/locations/us-central1"
        "/publishers/google/models/gemini-2.5-pro:generateContent"
    )
    assert up.headers["authorization"] == f"Bearer {TOKEN}"
    assert up.secret_headers == ("authorization",)


def test_gemini_stream_keeps_alt_sse_and_drops_client_key() -> None:
    up = vertex.prepare(call(sa_cred(location="global"), "streamGenerateContent", "gemini-2.5-flash",
                             query={"alt": "sse", "key": "client-key"}))
    assert up.url == (
        "https://aiplatform.googleapis.com/v1/projects/proj-1/locations/global"
        "/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )


def test_location_defaults_to_us_central1() -> None:
    up = vertex.prepare(call(sa_cred(location=None), "countTokens", "gemini-2.5-pro"))
    assert up.url.startswith("https://us-central1-aiplatform.googleapis.com/v1/projects/proj-1/locations/us-central1/")
    assert up.url.endswith("/publishers/google/models/gemini-2.5-pro:countTokens")


@pytest.mark.parametrize(
    ("stream", "method"), [(False, "rawPredict"), (True, "streamRawPredict")]
)
def test_claude_url_names_the_vertex_model(stream: bool, method: str) -> None:
    up = vertex.prepare(call(sa_cred(location="us-east5"), "messages", "claude-sonnet-4-5-20250929",
                             stream=stream, query={"beta": "true"},
                             headers={"anthropic-beta": "context-1m-2025-08-07"}))
    assert up.url == (
        "https://us-east5-aiplatform.googleapis.com/v1/projects/proj-1/locations/us-east5"
        f"/publishers/anthropic/models/claude-sonnet-4-5@20250929:{method}"
    )
    assert up.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert up.headers["authorization"] == f"Bearer {TOKEN}"


def test_claude_count_tokens_url() -> None:
    up = vertex.prepare(call(sa_cred(), "count_tokens", "claude-opus-4-1-20250805"))
    assert up.url.endswith("/v1/projects/proj-1/locations/us-central1/publishers/anthropic/models/count-tokens:rawPredict")


def test_per_credential_base_url_and_upstream_override() -> None:
    ups = merge_upstreams({"vertex": {"base-url": "http://127.0.0.1:1234"}})
    up = vertex.prepare(call(sa_cred(), "generateContent", "gemini-2.5-pro", upstreams=ups))
    assert up.url.startswith("http://127.0.0.1:1234/v1/projects/proj-1/locations/us-central1/")
    own = replace(sa_cred(), base_url="https://{location}-vertex.corp.example")
    assert vertex.prepare(call(own, "generateContent", "g")).url.startswith(
        "https://us-central1-vertex.corp.example/v1/projects/proj-1/"
    )


def test_project_from_the_service_account_when_the_file_has_none() -> None:
    cred = sa_cred()
    cred = replace(cred, data={k: v for k, v in cred.data.items() if k != "project_id"})
    assert "/projects/proj-1/" in vertex.prepare(call(cred, "generateContent", "g")).url


@pytest.mark.parametrize(
    ("model", "vertex_name"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5@20250929"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1@20250805"),
        ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet@20250219"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet-v2@20241022"),
        ("claude-sonnet-4@20250514", "claude-sonnet-4@20250514"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
    ],
)
def test_vertex_model_names(model: str, vertex_name: str) -> None:
    assert vertex.vertex_model(model) == vertex_name


# --- secrets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret", ["", SERVICE_ACCOUNT_STANDIN + "abcdef012345", PEM]
)
def test_never_sends_anything_but_an_access_token(secret: str) -> None:
    with pytest.raises(GatewayError) as e:
        vertex.prepare(call(sa_cred(secret=secret), "generateContent", "gemini-2.5-pro"))
    assert e.value.status == 503 and e.value.code == "token_unavailable"
    assert "PRIVATE" not in e.value.message


def test_file_credential_carries_no_private_key() -> None:
    cred = credential_from_auth_file("vertex-proj-1.json", vertex_file())
    assert cred.kind == "service-account"
    assert PEM not in cred.secret and "PRIVATE" not in cred.secret
    assert cred.secret.startswith(SERVICE_ACCOUNT_STANDIN)
    assert servable(cred)
    assert "PRIVATE" not in json.dumps(cred.public())


@pytest.mark.parametrize("bad", [{"project_id": ""}, {"location": "us-central1/../x"}])
def test_damaged_file_is_a_clear_error(bad: dict) -> None:
    cred = sa_cred()
    data = {**cred.data, **bad}
    if "project_id" in bad:
        data["service_account"] = {**data["service_account"], "project_id": ""}
    with pytest.raises(GatewayError) as e:
        vertex.prepare(call(replace(cred, data=data), "generateContent", "g"))
    assert e.value.code == "credential_invalid"


# --- bodies ------------------------------------------------------------------------


def test_messages_body_moves_model_to_the_url_and_names_the_version() -> None:
    body = {"model": "claude-sonnet-4-5-20250929", "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}
    out = vertex.wrap(body, call(sa_cred(), "messages", "claude-sonnet-4-5-20250929", stream=True))
    assert out == {"max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}],
                   "anthropic_version": "vertex-2023-10-16"}
    assert body["model"] == "claude-sonnet-4-5-20250929"  # the client's body is left alone


def test_count_tokens_body_names_the_vertex_model() -> None:
    body = {"model": "claude-haiku-4-5-20251001", "max_tokens": 1, "stream": False,
            "messages": [{"role": "user", "content": "count me"}], "system": "s"}
    out = vertex.wrap(body, call(sa_cred(), "count_tokens", "claude-haiku-4-5-20251001"))
    assert out == {"model": "claude-haiku-4-5@20251001", "messages": body["messages"], "system": "s",
                   "anthropic_version": "vertex-2023-10-16"}


def test_gemini_count_takes_only_what_vertex_accepts() -> None:
    inner = {"model": "models/gemini-2.5-pro", "contents": [{"role": "user", "parts": [{"text": "x"}]}],
             "systemInstruction": {"parts": [{"text": "sys"}]}, "safetySettings": []}
    out = vertex.wrap({"generateContentRequest": inner}, call(sa_cred(), "countTokens", "gemini-2.5-pro"))
    assert out == {"contents": inner["contents"], "systemInstruction": inner["systemInstruction"]}
    plain = {"contents": inner["contents"]}
    assert vertex.wrap(plain, call(sa_cred(), "countTokens", "gemini-2.5-pro")) is plain


def test_gemini_generate_body_is_sent_as_it_is() -> None:
    body = {"contents": [], "generationConfig": {"temperature": 0}}
    assert vertex.wrap(body, call(sa_cred(), "generateContent", "gemini-2.5-pro")) is body


# --- express-mode keys ---------------------------------------------------------------


def test_api_key_url_has_no_project_and_key_in_header() -> None:
    up = vertex.prepare(call(key_cred(), "streamGenerateContent", "gemini-2.5-flash",
                             query={"alt": "sse", "key": "client"}))
    assert up.url == ("https://aiplatform.googleapis.com/v1/publishers/google/models/"
                      "gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert up.headers["x-goog-api-key"] == "AQ.express-key"
    assert "authorization" not in up.headers
    assert up.secret_headers == ("x-goog-api-key",)


def test_vertex_api_key_config_entries(tmp_path: Path) -> None:
    cfg_dir = tmp_path / "cfg"
    cfg_dir.mkdir()
    (cfg_dir / "config.yaml").write_text(yaml.safe_dump({
        "vertex-api-key": [{"api-key": "AQ.k1", "prefix": "vx", "base-url": "https://proxy.example/",
                            "headers": {"X-Team": "a"}, "models": [{"name": "gemini-2.5-pro", "alias": "vp"}]}],
    }))
    config = load_config(env={"QUOTIO_CONFIG_DIR": str(cfg_dir), "QUOTIO_AUTH_DIR": str(tmp_path / "a")})
    [c] = credentials_from_config(config)
    assert (c.id, c.provider, c.kind, c.secret, c.prefix, c.base_url) == (
        "vertex-api-key[0]", "vertex", "api-key", "AQ.k1", "vx", "https://proxy.example")
    up = vertex.prepare(call(c, "generateContent", "gemini-2.5-pro"))
    assert up.url == "https://proxy.example/v1/publishers/google/models/gemini-2.5-pro:generateContent"
    assert up.headers["x-team"] == "a"


# --- format and registry --------------------------------------------------------------


def test_format_depends_on_the_model() -> None:
    c = sa_cred()
    assert executor_for(c) is vertex and executor_for(key_cred()) is vertex
    assert format_of(c) == "gemini"
    assert format_of(c, "gemini-2.5-pro") == "gemini"
    assert format_of(c, "claude-sonnet-4-5-20250929") == "anthropic"
    # Other providers keep their one format whatever the model.
    claude = Credential(id="c", provider="claude", kind="oauth", source="file", secret="t")
    assert format_of(claude, "gemini-2.5-pro") == "anthropic"


# --- routing -------------------------------------------------------------------------


def gemini_key() -> Credential:
    return Credential(id="gemini-api-key[0]", provider="gemini", kind="api-key", source="config", secret="AIza")


def claude_oauth() -> Credential:
    return Credential(id="claude-me.json", provider="claude", kind="oauth", source="file", secret="sk-ant-oat")


def router(*creds: Credential) -> ModelRouter:
    return ModelRouter(creds, providers.servable)


def test_family_names_share_the_pool() -> None:
    sa, gk, co = sa_cred(), gemini_key(), claude_oauth()
    r = router(sa, gk, co)
    assert {c.id for c, _ in r.resolve("gemini-2.5-pro").candidates} == {sa.id, gk.id}
    assert {c.id for c, _ in r.resolve("claude-sonnet-4-5-20250929").candidates} == {sa.id, co.id}


def test_vertex_head_picks_only_vertex() -> None:
    sa = sa_cred()
    r = router(sa, gemini_key(), claude_oauth())
    route = r.resolve("vertex/claude-sonnet-4-5-20250929")
    assert route.candidates == ((sa, "claude-sonnet-4-5-20250929"),)
    assert r.resolve("vertex/gemini-2.5-flash").candidates == ((sa, "gemini-2.5-flash"),)
    with pytest.raises(ModelNotFound):
        r.resolve("vertex/gpt-5")


def test_prefixed_vertex_only_serves_prefixed_requests() -> None:
    sa = replace(sa_cred(), prefix="gcp")
    r = router(sa, claude_oauth())
    assert [c.id for c, _ in r.resolve("claude-sonnet-4-5-20250929").candidates] == ["claude-me.json"]
    assert r.resolve("gcp/claude-sonnet-4-5-20250929").candidates == ((sa, "claude-sonnet-4-5-20250929"),)


def test_express_keys_serve_gemini_only() -> None:
    kc = key_cred()
    r = router(kc)
    assert r.resolve("gemini-2.5-pro").candidates == ((kc, "gemini-2.5-pro"),)
    with pytest.raises(ModelNotFound):
        r.resolve("claude-sonnet-4-5-20250929")
    listed = {m for m, _ in r.model_ids()}
    assert "gemini-2.5-pro" in listed and not any(m.startswith("claude") for m in listed)


def test_model_list_of_a_service_account() -> None:
    listed = dict(router(sa_cred()).model_ids())
    assert listed["gemini-2.5-pro"] == "vertex"
    assert listed["claude-sonnet-4-5-20250929"] == "vertex"


# --- request plans through the gateway ------------------------------------------------


@pytest.fixture
def gateway(tmp_path: Path):
    cfg_dir, auth_dir = tmp_path / "cfg", tmp_path / "auth"
    cfg_dir.mkdir()
    auth_dir.mkdir()
    (cfg_dir / "config.yaml").write_text(yaml.safe_dump({"upstreams": {"vertex": {"base-url": "http://127.0.0.1:9"}}}))
    (auth_dir / "vertex-proj-1.json").write_text(json.dumps(vertex_file()))
    gw = Gateway(load_config(env={"QUOTIO_CONFIG_DIR": str(cfg_dir), "QUOTIO_AUTH_DIR": str(auth_dir)}))
    gw.rescan()
    yield gw
    gw.records.close()


def with_token(gw: Gateway) -> None:
    """What the token keeper does: the executor sees the bearer, never the file's stand-in."""
    gw.router = ModelRouter([replace(c, secret=TOKEN) for c in gw.credentials()], providers.servable)


def plan_for(gw: Gateway, method: str, path: str, body: dict, query: dict | None = None):
    route = classify(method, path)
    return gw.finalize(gw.draft(route, json.dumps(body).encode(), {}, query or {}))


def test_plan_without_a_token_is_refused(gateway: Gateway) -> None:
    with pytest.raises(GatewayError) as e:
        plan_for(gateway, "POST", "/v1/messages",
                 {"model": "claude-sonnet-4-5-20250929", "max_tokens": 8, "messages": []})
    assert e.value.code == "token_unavailable"


def test_anthropic_client_to_claude_on_vertex_is_native(gateway: Gateway) -> None:
    with_token(gateway)
    plan = plan_for(gateway, "POST", "/v1/messages",
                    {"model": "claude-sonnet-4-5-20250929", "max_tokens": 8, "stream": True,
                     "messages": [{"role": "user", "content": "hi"}]})
    assert plan.translation is None and plan.provider_format == "anthropic" and plan.stream
    assert plan.upstream.url.endswith("/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict")
    body = json.loads(plan.body)
    assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16"


def test_anthropic_count_tokens_native(gateway: Gateway) -> None:
    with_token(gateway)
    plan = plan_for(gateway, "POST", "/v1/messages/count_tokens",
                    {"model": "claude-sonnet-4-5-20250929", "messages": [{"role": "user", "content": "hi"}]})
    assert plan.upstream.url.endswith("/publishers/anthropic/models/count-tokens:rawPredict")
    assert json.loads(plan.body)["model"] == "claude-sonnet-4-5@20250929"


def test_openai_client_to_claude_on_vertex_is_translated(gateway: Gateway) -> None:
    with_token(gateway)
    plan = plan_for(gateway, "POST", "/v1/chat/completions",
                    {"model": "claude-sonnet-4-5-20250929", "stream": False,
                     "messages": [{"role": "user", "content": "hi"}]})
    assert plan.translation is not None
    assert (plan.translation.client_format, plan.translation.provider_format) == ("openai", "anthropic")
    assert plan.upstream.url.endswith("/claude-sonnet-4-5@20250929:rawPredict")
    body = json.loads(plan.body)
    assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16"
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_openai_stream_to_gemini_on_vertex(gateway: Gateway) -> None:
    with_token(gateway)
    plan = plan_for(gateway, "POST", "/v1/chat/completions",
                    {"model": "gemini-2.5-pro", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert plan.translation.provider_format == "gemini"
    assert plan.upstream.url.endswith(
        "/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    assert "contents" in json.loads(plan.body)


def test_gemini_client_to_gemini_on_vertex_is_native(gateway: Gateway) -> None:
    with_token(gateway)
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    plan = plan_for(gateway, "POST", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", body,
                    {"alt": "sse", "key": "client-key"})
    assert plan.translation is None and plan.body is None  # the client's bytes go as they are
    assert plan.upstream.url.endswith("/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert plan.upstream.headers["authorization"] == f"Bearer {TOKEN}"


def test_anthropic_client_to_gemini_on_vertex_is_translated(gateway: Gateway) -> None:
    with_token(gateway)
    plan = plan_for(gateway, "POST", "/v1/messages",
                    {"model": "vertex/gemini-2.5-pro", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert (plan.translation.client_format, plan.translation.provider_format) == ("anthropic", "gemini")
    assert plan.upstream.url.endswith("/google/models/gemini-2.5-pro:generateContent")
    assert "anthropic_version" not in json.loads(plan.body)


def test_co_owner_beside_a_guest_provider() -> None:
    """Copilot hosts Claude only as a guest; a Vertex account owns the family."""
    sa = sa_cred()
    copilot = Credential(id="github-copilot-me.json", provider="github-copilot", kind="oauth",
                         source="file", secret="ghu_x")
    r = router(sa, copilot)
    assert r.resolve("claude-sonnet-4-5-20250929").candidates == ((sa, "claude-sonnet-4-5-20250929"),)
    # A name only Copilot's catalog spells so is Copilot's, never sent to Vertex.
    assert [c.id for c, _ in r.resolve("claude-sonnet-4.5").candidates] == [copilot.id]
