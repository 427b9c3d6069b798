"""Routing for providers that host other vendors' models (Copilot, iFlow)."""

from __future__ import annotations

import pytest

from quotio_core.providers import catalog
from quotio_core.config import ModelAlias
from quotio_core.pool.credentials import Credential
from quotio_core.pool.routing import ModelNotFound, ModelRouter


def cred(cid: str, provider: str, **kw) -> Credential:
    return Credential(id=cid, provider=provider, kind="oauth", source="file", secret=f"s-{cid}", **kw)


def providers(creds: list[Credential], model: str) -> set[str]:
    return ModelRouter(creds, lambda _: True).resolve(model).providers


COPILOT = cred("gh", "github-copilot")
CLAUDE = cred("cl", "claude")
CODEX = cred("cx", "codex")
GEMINI = cred("ge", "gemini")
QWEN = cred("qw", "qwen")
IFLOW = cred("if", "iflow")


@pytest.mark.parametrize(
    ("model", "alone", "with_owners"),
    [
        # Names the family's own provider serves stay with it when it is there.
        ("gpt-4o", "github-copilot", "codex"),
        ("gpt-5", "github-copilot", "codex"),
        ("claude-sonnet-4-5", "github-copilot", "claude"),
        ("gemini-2.5-pro", "github-copilot", "gemini"),
        ("gpt-5.1-preview", "github-copilot", "codex"),  # unlisted: the family decides
        # Names only Copilot spells so go to Copilot either way.
        ("claude-sonnet-4.5", "github-copilot", "github-copilot"),
        ("grok-code-fast-1", "github-copilot", "github-copilot"),
    ],
)
def test_copilot_is_a_second_choice(model: str, alone: str, with_owners: str) -> None:
    assert providers([COPILOT], model) == {alone}
    assert providers([COPILOT, CLAUDE, CODEX, GEMINI], model) == {with_owners}


def test_provider_head_takes_any_name() -> None:
    pool = [COPILOT, CLAUDE, CODEX]
    route = ModelRouter(pool, lambda _: True).resolve("github-copilot/gpt-4o")
    assert [(c.id, m) for c, m in route.candidates] == [("gh", "gpt-4o")]
    assert providers(pool, "github-copilot/o5-experimental") == {"github-copilot"}
    assert providers(pool, "claude/claude-anything") == {"claude"}


def test_provider_head_respects_listed_models_and_exclusions() -> None:
    listed = Credential(id="k", provider="openai-compatibility", kind="api-key", source="config", secret="k",
                        compat_name="router", models=(ModelAlias(name="m-1"),))
    with pytest.raises(ModelNotFound):
        providers([listed], "router/m-2")
    excluded = cred("gh2", "github-copilot", excluded_models=("grok-*",))
    with pytest.raises(ModelNotFound):
        providers([excluded], "github-copilot/grok-code-fast-1")


@pytest.mark.parametrize(
    ("model", "alone", "with_qwen"),
    [
        ("qwen3-coder-plus", "iflow", "qwen"),
        ("qwen3-max", "iflow", "iflow"),  # not served by Qwen OAuth accounts
        ("qwen3-brand-new", "iflow", "qwen"),
        ("kimi-k2", "iflow", "iflow"),
        ("deepseek-r1", "iflow", "iflow"),
    ],
)
def test_iflow_hosts_qwen_and_its_own_catalog(model: str, alone: str, with_qwen: str) -> None:
    assert providers([IFLOW], model) == {alone}
    assert providers([IFLOW, QWEN], model) == {with_qwen}


def test_unknown_names_still_fail() -> None:
    with pytest.raises(ModelNotFound):
        providers([COPILOT, IFLOW], "llama-3-70b")


def test_model_ids_name_the_serving_provider() -> None:
    router = ModelRouter([COPILOT, CODEX, CLAUDE, IFLOW, QWEN], lambda _: True)
    ids = dict(router.model_ids())
    assert ids["gpt-4o"] == "codex"
    assert ids["claude-sonnet-4.5"] == "github-copilot"
    assert ids["qwen3-coder-plus"] == "qwen"
    assert ids["kimi-k2"] == "iflow"
    for name, provider in ids.items():
        assert provider in router.resolve(name).providers
    assert set(catalog("github-copilot")) <= set(ids)
