from dataclasses import replace

import pytest

from quotio_core.providers import catalog
from quotio_core.config import ModelAlias
from quotio_core.pool.credentials import Credential
from quotio_core.pool.routing import ModelNotFound, ModelRouter, family_of


def cred(cid: str, provider: str, *, source: str = "file", kind: str = "oauth", **kw) -> Credential:
    return Credential(id=cid, provider=provider, kind=kind, source=source, secret=f"s-{cid}", **kw)


def api_key(cid: str, provider: str, **kw) -> Credential:
    return cred(cid, provider, source="config", kind="api-key", **kw)


def everything(_: Credential) -> bool:
    return True


def resolve(creds: list[Credential], model: str) -> list[tuple[str, str]]:
    route = ModelRouter(creds, everything).resolve(model)
    assert route.requested == model
    return sorted((c.id, m) for c, m in route.candidates)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-sonnet-4-5-20250929", "claude"),
        ("Claude-Opus-4", "claude"),
        ("gpt-5", "codex"),
        ("gpt-4o-mini", "codex"),
        ("chatgpt-4o-latest", "codex"),
        ("o3", "codex"),
        ("o4-mini", "codex"),
        ("o1-preview", "codex"),
        ("codex-mini-latest", "codex"),
        ("gemini-2.5-pro", "gemini"),
        ("qwen3-coder-plus", "qwen"),
        ("qwq-32b", "qwen"),
        ("llama-3", None),
        ("omni", None),
        ("gpt4", None),
        ("", None),
    ],
)
def test_family_of(model: str, family: str | None) -> None:
    assert family_of(model) == family


def test_family_routes_to_every_unprefixed_credential_of_that_provider() -> None:
    creds = [cred("c1", "claude"), cred("c2", "claude"), cred("x1", "codex"), cred("g1", "gemini")]
    assert resolve(creds, "claude-sonnet-4-5") == [("c1", "claude-sonnet-4-5"), ("c2", "claude-sonnet-4-5")]
    assert resolve(creds, "o4-mini") == [("x1", "o4-mini")]
    assert resolve(creds, "gpt-5-codex") == [("x1", "gpt-5-codex")]
    assert resolve(creds, "gemini-2.5-flash") == [("g1", "gemini-2.5-flash")]


def test_route_providers() -> None:
    creds = [cred("c1", "claude"), api_key("k1", "claude")]
    route = ModelRouter(creds, everything).resolve("claude-opus-4")
    assert route.providers == {"claude"}


@pytest.mark.parametrize("model", ["llama-3-70b", "qwen3-coder-plus", "mistral/large", ""])
def test_unknown_model_raises(model: str) -> None:
    creds = [cred("c1", "claude"), cred("x1", "codex")]
    with pytest.raises(ModelNotFound) as e:
        ModelRouter(creds, everything).resolve(model)
    assert e.value.model == model


def test_not_servable_credentials_are_ignored() -> None:
    creds = [cred("c1", "claude"), cred("c2", "claude", disabled=True)]
    router = ModelRouter(creds, lambda c: not c.disabled)
    assert [c.id for c, _ in router.resolve("claude-x").candidates] == ["c1"]
    with pytest.raises(ModelNotFound):
        ModelRouter(creds, lambda c: False).resolve("claude-x")


def test_explicit_alias_beats_family() -> None:
    aliased = api_key("k1", "claude", models=(ModelAlias(name="claude-opus-4-1-20250805", alias="claude-best"),))
    creds = [aliased, cred("c1", "claude")]
    # "claude-best" is of the claude family too, but the alias wins and maps the name.
    assert resolve(creds, "claude-best") == [("k1", "claude-opus-4-1-20250805")]


def test_explicit_name_without_alias_and_by_upstream_name() -> None:
    k = api_key("k1", "openai-compatibility", compat_name="router",
                base_url="https://x", models=(ModelAlias(name="moonshotai/kimi-k2", alias="kimi"),
                                              ModelAlias(name="deepseek-chat")))
    assert resolve([k], "kimi") == [("k1", "moonshotai/kimi-k2")]
    assert resolve([k], "moonshotai/kimi-k2") == [("k1", "moonshotai/kimi-k2")]
    assert resolve([k], "deepseek-chat") == [("k1", "deepseek-chat")]
    assert resolve([k], "router/kimi") == [("k1", "moonshotai/kimi-k2")]


def test_alias_pool_across_credentials() -> None:
    a = api_key("a", "openai-compatibility", compat_name="one", models=(ModelAlias(name="m-a", alias="pool"),))
    b = api_key("b", "openai-compatibility", compat_name="two", models=(ModelAlias(name="m-b", alias="pool"),))
    assert resolve([a, b], "pool") == [("a", "m-a"), ("b", "m-b")]


def test_config_key_with_model_list_serves_only_its_list() -> None:
    listed = api_key("k1", "claude", models=(ModelAlias(name="claude-sonnet-4-5-20250929"),))
    assert resolve([listed], "claude-sonnet-4-5-20250929") == [("k1", "claude-sonnet-4-5-20250929")]
    with pytest.raises(ModelNotFound):
        resolve([listed], "claude-opus-4")


def test_file_credential_with_aliases_still_serves_family() -> None:
    f = cred("c1", "claude", models=(ModelAlias(name="claude-opus-4-1-20250805", alias="opus"),))
    assert resolve([f], "opus") == [("c1", "claude-opus-4-1-20250805")]
    assert resolve([f], "claude-haiku-4-5") == [("c1", "claude-haiku-4-5")]


@pytest.mark.parametrize(
    ("patterns", "model", "served"),
    [
        (("claude-3-*",), "claude-3-7-sonnet", False),
        (("claude-3-*",), "claude-sonnet-4", True),
        (("*haiku*",), "claude-haiku-4-5", False),
        (("*-thinking",), "claude-opus-4-thinking", False),
        (("claude-opus-4",), "claude-opus-4", False),
        (("claude-opus-4",), "claude-opus-4-1", True),
    ],
)
def test_excluded_models_globs(patterns: tuple[str, ...], model: str, served: bool) -> None:
    creds = [cred("c1", "claude", excluded_models=patterns), cred("c2", "claude")]
    ids = [cid for cid, _ in resolve(creds, model)]
    assert ids == (["c1", "c2"] if served else ["c2"])


def test_excluded_upstream_name_blocks_alias() -> None:
    k = api_key("k1", "claude", models=(ModelAlias(name="claude-3-5-haiku", alias="fast"),),
                excluded_models=("*haiku*",))
    with pytest.raises(ModelNotFound):
        resolve([k], "fast")


def test_all_excluded_raises() -> None:
    with pytest.raises(ModelNotFound):
        resolve([cred("c1", "claude", excluded_models=("*",))], "claude-x")


# --- prefixes and heads -------------------------------------------------------------------


@pytest.fixture
def mixed() -> list[Credential]:
    return [
        cred("plain", "claude"),
        cred("team", "claude", prefix="team"),
        api_key("team-key", "claude", prefix="team",
                models=(ModelAlias(name="claude-sonnet-4-5-20250929", alias="fast"),)),
        cred("codex", "codex"),
        api_key("or", "openai-compatibility", compat_name="openrouter", prefix="or",
                models=(ModelAlias(name="moonshotai/kimi-k2", alias="kimi"),)),
    ]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-sonnet-4", [("plain", "claude-sonnet-4")]),
        ("team/claude-sonnet-4", [("team", "claude-sonnet-4")]),
        ("team/fast", [("team-key", "claude-sonnet-4-5-20250929")]),
        ("claude/claude-sonnet-4", [("plain", "claude-sonnet-4")]),
        ("codex/gpt-5", [("codex", "gpt-5")]),
        ("or/kimi", [("or", "moonshotai/kimi-k2")]),
    ],
)
def test_heads(mixed: list[Credential], model: str, expected: list[tuple[str, str]]) -> None:
    assert resolve(mixed, model) == expected


@pytest.mark.parametrize("model", ["fast", "kimi", "openrouter/kimi", "team/gpt-5"])
def test_prefixed_credentials_only_serve_prefixed_requests(mixed: list[Credential], model: str) -> None:
    with pytest.raises(ModelNotFound):
        resolve(mixed, model)


def test_only_prefixed_credentials_means_bare_names_fail() -> None:
    creds = [cred("team", "claude", prefix="team")]
    with pytest.raises(ModelNotFound):
        resolve(creds, "claude-sonnet-4")
    assert resolve(creds, "team/claude-sonnet-4") == [("team", "claude-sonnet-4")]


def test_unknown_head_keeps_full_name() -> None:
    k = api_key("k1", "openai-compatibility", compat_name="router",
                models=(ModelAlias(name="meta-llama/llama-3-70b"),))
    assert resolve([k], "meta-llama/llama-3-70b") == [("k1", "meta-llama/llama-3-70b")]


# --- model_ids ---------------------------------------------------------------------------------


def test_model_ids_catalog_aliases_and_prefixes(mixed: list[Credential]) -> None:
    ids = dict(ModelRouter(mixed, everything).model_ids())
    for name in catalog("claude"):
        assert ids[name] == "claude"
        assert ids[f"team/{name}"] == "claude"
    for name in catalog("codex"):
        assert ids[name] == "codex"
    assert ids["team/fast"] == "claude"
    assert ids["or/kimi"] == "openai-compatibility"
    assert "fast" not in ids and "kimi" not in ids
    assert not any(i.startswith("gemini") for i in ids)


def test_model_ids_sorted_and_unique() -> None:
    creds = [cred("c1", "claude"), cred("c2", "claude")]
    pairs = ModelRouter(creds, everything).model_ids()
    names = [n for n, _ in pairs]
    assert names == sorted(set(names))
    assert len(names) == len(catalog("claude"))


def test_model_ids_respect_exclusions_and_model_lists() -> None:
    creds = [
        cred("c1", "claude", excluded_models=("claude-3-*",),
             models=(ModelAlias(name="claude-opus-4-1-20250805", alias="opus"),)),
        api_key("k1", "codex", models=(ModelAlias(name="gpt-5", alias="my-gpt"),)),
    ]
    ids = dict(ModelRouter(creds, everything).model_ids())
    assert "opus" in ids
    assert "claude-sonnet-4-5-20250929" in ids
    assert not any(i.startswith("claude-3-") for i in ids)
    # A config key that lists its models offers only those, under their aliases.
    assert ids["my-gpt"] == "codex"
    assert "gpt-5" not in ids and "o3" not in ids


def test_model_ids_are_all_resolvable(mixed: list[Credential]) -> None:
    router = ModelRouter(mixed, everything)
    for name, provider in router.model_ids():
        assert provider in router.resolve(name).providers


def test_excluded_everywhere_hidden_from_ids() -> None:
    creds = [replace(cred("c1", "claude"), excluded_models=("*",))]
    assert ModelRouter(creds, everything).model_ids() == []
