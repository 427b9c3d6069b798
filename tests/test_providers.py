from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from quotio_core import providers
from quotio_core.config import load_config
from quotio_core.pool.credentials import Credential
from quotio_core.providers import Call, executor_for, format_of, servable
from quotio_core.providers.claude import call as claude
from quotio_core.providers.codex import call as codex
from quotio_core.providers.gemini import call as gemini_api, code_assist as gemini_cli
from quotio_core.providers.kiro import call as kiro
from quotio_core.providers.openai_compat import call as openai_compat
from quotio_core.providers import DEFAULT_UPSTREAMS, merge_upstreams

UPSTREAMS = merge_upstreams(None)


def cred(provider: str, kind: str, secret: str = "the-secret", **kw) -> Credential:
    return Credential(id="c", provider=provider, kind=kind, source="config", secret=secret, **kw)


def call(credential: Credential, *, headers: dict | None = None, endpoint: str = "messages",
         model: str = "m", query: dict | None = None, upstreams=UPSTREAMS) -> Call:
    return Call(credential=credential, upstreams=upstreams, client_headers=headers or {},
                endpoint=endpoint, model=model, query=query or {})


# --- claude ----------------------------------------------------------------------------------


def test_claude_oauth_defaults() -> None:
    up = claude.prepare(call(cred("claude", "oauth", "sk-ant-oat01-tok")))
    assert up.url == "https://api.anthropic.com/v1/messages?beta=true"
    assert up.headers["authorization"] == "Bearer sk-ant-oat01-tok"
    assert up.headers["anthropic-beta"] == "oauth-2025-04-20"
    assert up.headers["anthropic-version"] == "2023-06-01"
    assert "x-api-key" not in up.headers
    assert up.secret_headers == ("authorization",)


@pytest.mark.parametrize(
    ("client_beta", "merged"),
    [
        (None, "oauth-2025-04-20"),
        ("", "oauth-2025-04-20"),
        ("claude-code-20250219", "claude-code-20250219,oauth-2025-04-20"),
        ("claude-code-20250219, interleaved-thinking-2025-05-14",
         "claude-code-20250219,interleaved-thinking-2025-05-14,oauth-2025-04-20"),
        ("oauth-2025-04-20,claude-code-20250219", "oauth-2025-04-20,claude-code-20250219"),
        ("a,oauth-2025-04-20,b", "a,oauth-2025-04-20,b"),
        (" , a ,", "a,oauth-2025-04-20"),
    ],
)
def test_claude_oauth_beta_merge(client_beta: str | None, merged: str) -> None:
    headers = {} if client_beta is None else {"anthropic-beta": client_beta}
    up = claude.prepare(call(cred("claude", "oauth"), headers=headers))
    assert up.headers["anthropic-beta"] == merged
    assert up.headers["anthropic-beta"].split(",").count("oauth-2025-04-20") == 1


def test_claude_client_version_kept() -> None:
    up = claude.prepare(call(cred("claude", "oauth"), headers={"anthropic-version": "2024-01-01"}))
    assert up.headers["anthropic-version"] == "2024-01-01"


def test_claude_count_tokens_path() -> None:
    up = claude.prepare(call(cred("claude", "oauth"), endpoint="count_tokens"))
    assert up.url == "https://api.anthropic.com/v1/messages/count_tokens?beta=true"


def test_claude_api_key() -> None:
    up = claude.prepare(
        call(cred("claude", "api-key", "sk-ant-api03-key"),
             headers={"anthropic-beta": "prompt-caching-2024-07-31", "authorization": "Bearer client"})
    )
    assert up.url == "https://api.anthropic.com/v1/messages"
    assert up.headers["x-api-key"] == "sk-ant-api03-key"
    assert "authorization" not in up.headers
    # The client's betas pass unchanged; no OAuth beta for a key.
    assert up.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert up.headers["anthropic-version"] == "2023-06-01"
    assert up.secret_headers == ("x-api-key",)


def test_claude_api_key_without_client_beta() -> None:
    up = claude.prepare(call(cred("claude", "api-key")))
    assert "anthropic-beta" not in up.headers


def test_claude_base_url_from_config_upstreams(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("upstreams:\n  claude:\n    base-url: http://127.0.0.1:9999/\n")
    cfg = load_config(env={"QUOTIO_CONFIG_DIR": str(tmp_path)})
    for kind, url in (("oauth", "http://127.0.0.1:9999/v1/messages?beta=true"),
                      ("api-key", "http://127.0.0.1:9999/v1/messages")):
        assert claude.prepare(call(cred("claude", kind), upstreams=cfg.upstreams)).url == url


def test_claude_credential_base_url_wins() -> None:
    c = cred("claude", "api-key", base_url="https://claude.example.com")
    assert claude.prepare(call(c)).url == "https://claude.example.com/v1/messages"


# --- openai-compatible ------------------------------------------------------------------------------


def test_openai_compat_uses_credential_base_url() -> None:
    c = cred("openai-compatibility", "api-key", "sk-or-key", base_url="https://openrouter.ai/api/v1",
             compat_name="openrouter")
    up = openai_compat.prepare(call(c, endpoint="chat"))
    assert up.url == "https://openrouter.ai/api/v1/chat/completions"
    assert up.headers["authorization"] == "Bearer sk-or-key"
    assert up.secret_headers == ("authorization",)


def test_codex_api_key_uses_api_key_base_url() -> None:
    up = openai_compat.prepare(call(cred("codex", "api-key", "sk-proj-key"), endpoint="chat"))
    assert up.url == "https://api.openai.com/v1/chat/completions"
    assert up.headers["authorization"] == "Bearer sk-proj-key"
    # Never the ChatGPT backend used by Codex OAuth accounts.
    assert not up.url.startswith(DEFAULT_UPSTREAMS["codex"]["base-url"])


def test_codex_api_key_base_url_override() -> None:
    ups = merge_upstreams({"codex": {"api-key-base-url": "http://127.0.0.1:7000/v1/"}})
    up = openai_compat.prepare(call(cred("codex", "api-key"), endpoint="chat", upstreams=ups))
    assert up.url == "http://127.0.0.1:7000/v1/chat/completions"


# --- gemini ---------------------------------------------------------------------------------------------


def test_gemini_key_in_header_not_url() -> None:
    c = cred("gemini", "api-key", "AIzaSy-secret")
    up = gemini_api.prepare(
        call(c, endpoint="streamGenerateContent", model="gemini-2.5-flash",
             query={"key": "client-key", "alt": "sse", "auth_token": "client-key-2"})
    )
    parts = urlsplit(up.url)
    assert f"{parts.scheme}://{parts.netloc}" == "https://generativelanguage.googleapis.com"
    assert parts.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert parse_qs(parts.query) == {"alt": ["sse"]}
    assert "AIzaSy-secret" not in up.url and "client-key" not in up.url
    assert up.headers["x-goog-api-key"] == "AIzaSy-secret"
    assert up.secret_headers == ("x-goog-api-key",)


@pytest.mark.parametrize("endpoint", ["generateContent", "countTokens"])
def test_gemini_no_query_no_question_mark(endpoint: str) -> None:
    up = gemini_api.prepare(call(cred("gemini", "api-key"), endpoint=endpoint, model="gemini-2.5-pro",
                                 query={"key": "x"}))
    assert up.url == f"https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:{endpoint}"


def test_gemini_model_is_quoted() -> None:
    up = gemini_api.prepare(call(cred("gemini", "api-key"), endpoint="generateContent", model="a b/c"))
    assert "/v1beta/models/a%20b%2Fc:generateContent" in up.url


def test_gemini_base_url_override() -> None:
    ups = merge_upstreams({"gemini": {"api-key-base-url": "http://127.0.0.1:7100"}})
    up = gemini_api.prepare(call(cred("gemini", "api-key"), endpoint="generateContent",
                                 model="gemini-2.5-pro", upstreams=ups))
    assert up.url.startswith("http://127.0.0.1:7100/v1beta/models/gemini-2.5-pro:")


# --- key entry headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "provider", "endpoint"),
    [(claude, "claude", "messages"), (openai_compat, "openai-compatibility", "chat"),
     (openai_compat, "codex", "chat"), (gemini_api, "gemini", "generateContent")],
)
def test_entry_headers_fixed_and_copied(module, provider: str, endpoint: str) -> None:
    c = cred(provider, "api-key", base_url="https://up.example",
             headers={"X-Fixed": "v1", "X-Session": "$x-claude-code-session-id", "X-Absent": "$x-nope"})
    up = module.prepare(call(c, endpoint=endpoint, headers={"x-claude-code-session-id": "sess-42"}))
    assert up.headers["x-fixed"] == "v1"
    assert up.headers["x-session"] == "sess-42"
    # A `$name` the client did not send is omitted, not sent as the literal.
    assert "x-absent" not in up.headers
    assert "$x-nope" not in up.headers.values()


def test_entry_headers_cannot_override_credential() -> None:
    c = cred("claude", "api-key", "real-key", headers={"x-api-key": "from-config"})
    assert claude.prepare(call(c)).headers["x-api-key"] == "real-key"


# --- registry -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "kind", "module", "fmt"),
    [
        ("claude", "oauth", claude, "anthropic"),
        ("claude", "api-key", claude, "anthropic"),
        ("openai-compatibility", "api-key", openai_compat, "openai"),
        ("codex", "api-key", openai_compat, "openai"),
        ("gemini", "api-key", gemini_api, "gemini"),
        ("codex", "oauth", codex, "responses"),
        ("gemini", "oauth", gemini_cli, "gemini"),
        ("kiro", "oauth", kiro, "kiro"),
    ],
)
def test_executor_registry(provider: str, kind: str, module, fmt: str) -> None:
    c = cred(provider, kind)
    assert executor_for(c) is module
    assert format_of(c) == fmt
    assert servable(c)


@pytest.mark.parametrize(
    ("provider", "kind"),
    [("antigravity", "oauth")],
)
def test_no_executor_not_servable(provider: str, kind: str) -> None:
    c = cred(provider, kind)
    assert executor_for(c) is None
    assert not servable(c)


def test_disabled_or_secretless_not_servable() -> None:
    assert not servable(cred("claude", "oauth", disabled=True))
    assert not servable(cred("claude", "oauth", secret=""))


def test_client_secret_names() -> None:
    assert set(providers.CLIENT_SECRET_HEADERS) == {"authorization", "x-api-key", "x-goog-api-key"}
    assert set(providers.CLIENT_SECRET_PARAMS) == {"key", "auth_token"}


def test_codex_oauth_headers_and_account_id_from_id_token() -> None:
    import base64
    import json

    claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-123"}}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    c = cred("codex", "oauth", data={"id_token": f"h.{payload}.s"})
    up = codex.prepare(
        Call(c, UPSTREAMS, {}, "responses", "gpt-5", header_defaults={"version": "9.9"})
    )
    assert up.url == "https://chatgpt.com/backend-api/codex/responses"
    assert up.headers["authorization"] == "Bearer the-secret"
    assert up.headers["chatgpt-account-id"] == "acct-123"
    assert up.headers["version"] == "9.9"
    assert up.headers["accept"] == "text/event-stream"
    assert up.secret_headers == ("authorization",)


def test_gemini_cli_wraps_with_project_and_streams_with_alt_sse() -> None:
    c = cred("gemini", "oauth", data={"project_id": "proj-1"})
    call = Call(c, UPSTREAMS, {}, "streamGenerateContent", "gemini-2.5-pro")
    up = gemini_cli.prepare(call)
    assert up.url == "https://cloudcode-pa.googleapis.com/v1internal:streamGenerateContent?alt=sse"
    assert gemini_cli.wrap({"contents": []}, call) == {
        "model": "gemini-2.5-pro", "project": "proj-1", "request": {"contents": []},
    }
    count = Call(c, UPSTREAMS, {}, "countTokens", "gemini-2.5-pro")
    assert gemini_cli.wrap({"contents": [1]}, count) == {
        "request": {"model": "models/gemini-2.5-pro", "contents": [1]}
    }
