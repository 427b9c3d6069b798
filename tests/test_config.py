import re
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from quotio_core.config import Config, ConfigError, load_config
from quotio_core.providers import DEFAULT_UPSTREAMS, merge_upstreams

FULL_CONFIG = """\
host: 127.0.0.1
port: 9001
auth-dir: ~/cpa-auth
api-keys:
  - client-key-one
  - client-key-two
debug: true
proxy-url: socks5://127.0.0.1:1080
request-retry: 5
max-retry-interval: 12
routing:
  strategy: fill-first
remote-management:
  allow-remote: true
  secret-key: mgmt-secret-value
claude-api-key:
  - api-key: sk-ant-api03-aaaa
    base-url: https://claude.example.com/
    priority: 2
    weight: 3
    prefix: team
    headers:
      X-Custom: fixed
      X-Session: $x-claude-code-session-id
    excluded-models:
      - claude-3-*
    models:
      - name: claude-sonnet-4-5-20250929
        alias: sonnet
codex-api-key:
  - api-key: sk-proj-bbbb
gemini-api-key:
  - api-key: AIzaSy-cccc
    excluded-models: ["*-preview"]
generative-language-api-key:
  - AIzaSy-legacy-dddd
openai-compatibility:
  - name: openrouter
    base-url: https://openrouter.ai/api/v1
    prefix: or
    api-key-entries:
      - api-key: sk-or-eeee
        proxy-url: http://proxy:3128
        weight: 2
    models:
      - name: moonshotai/kimi-k2
        alias: kimi
  - name: legacy
    base-url: https://legacy.example.com/v1
    api-keys:
      - sk-legacy-ffff
oauth-excluded-models:
  claude:
    - claude-3-5-haiku-*
oauth-model-alias:
  claude:
    - name: claude-opus-4-1-20250805
      alias: opus
upstreams:
  claude:
    base-url: http://127.0.0.1:5555/
    token-url: http://127.0.0.1:5556/token
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake $HOME so `~` never points at the real one."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def cfg_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cfg"
    d.mkdir()
    return d


def load_yaml(cfg_dir: Path, text: str, **env: str) -> Config:
    write(cfg_dir / "config.yaml", text)
    return load_config(env={"QUOTIO_CONFIG_DIR": str(cfg_dir), **env})


# --- defaults ---------------------------------------------------------------


def test_defaults_without_any_file(home: Path) -> None:
    cfg = load_config(env={})
    assert cfg.port == 8317
    assert cfg.host == "0.0.0.0"
    assert cfg.auth_dir == home / ".cli-proxy-api"
    assert cfg.auth_dir.is_absolute()
    assert cfg.config_dir == home / ".config" / "quotio"
    assert cfg.config_path is None
    assert cfg.db_path == home / ".config" / "quotio" / "quotio.db"
    assert cfg.passthrough_enabled is True
    assert cfg.cli_proxy_port == 18317
    assert cfg.debug is False
    assert cfg.file.api_keys == []
    assert cfg.file.routing.strategy == "round-robin"
    assert cfg.file.request_retry == 3
    assert cfg.file.max_retry_interval == 30
    assert cfg.upstreams.keys() == DEFAULT_UPSTREAMS.keys()
    # Defaults that name a sibling URL are resolved against it.
    assert cfg.upstreams["claude"]["usage-url"] == "https://api.anthropic.com/api/oauth/usage"
    assert cfg.upstreams["codex"]["usage-url"] == "https://chatgpt.com/backend-api/wham/usage"
    # Only per-account placeholders (Vertex's location, a Kiro login's region) are left.
    left = {url for urls in cfg.upstreams.values() for url in urls.values() if "{" in url}
    assert left == {
        "https://{location}-aiplatform.googleapis.com",
        "https://oidc.{region}.amazonaws.com",
        "https://prod.{region}.auth.desktop.kiro.dev/refreshToken",
    }


def test_db_follows_config_dir(home: Path, cfg_dir: Path) -> None:
    cfg = load_config(env={"QUOTIO_CONFIG_DIR": str(cfg_dir)})
    assert cfg.config_dir == cfg_dir
    assert cfg.db_path == cfg_dir / "quotio.db"
    assert cfg.config_path is None


def test_empty_file_gives_defaults(home: Path, cfg_dir: Path) -> None:
    cfg = load_yaml(cfg_dir, "# nothing but a comment\n")
    assert cfg.config_path == cfg_dir / "config.yaml"
    assert cfg.port == 8317
    assert cfg.file.api_keys == []


# --- where the file is found ---------------------------------------------------


def test_config_dir_file_is_read(home: Path, cfg_dir: Path) -> None:
    cfg = load_yaml(cfg_dir, "port: 9100\n")
    assert cfg.port == 9100
    assert cfg.config_path == cfg_dir / "config.yaml"


def test_quotio_config_points_at_any_file(home: Path, cfg_dir: Path, tmp_path: Path) -> None:
    write(cfg_dir / "config.yaml", "port: 9100\n")
    other = write(tmp_path / "elsewhere" / "cpa.yaml", "port: 9200\n")
    cfg = load_config(env={"QUOTIO_CONFIG_DIR": str(cfg_dir), "QUOTIO_CONFIG": str(other)})
    assert cfg.port == 9200
    assert cfg.config_path == other
    # The config dir still decides where quotio's own state lives.
    assert cfg.db_path == cfg_dir / "quotio.db"


def test_override_config_path_beats_env(home: Path, tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", "port: 9301\n")
    b = write(tmp_path / "b.yaml", "port: 9302\n")
    cfg = load_config(env={"QUOTIO_CONFIG": str(a)}, overrides={"config_path": str(b)})
    assert cfg.port == 9302
    assert cfg.config_path == b


def test_explicit_missing_file_is_an_error(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as e:
        load_config(env={"QUOTIO_CONFIG": str(missing)})
    assert str(missing) in str(e.value)


# --- a full CLIProxyAPI config ---------------------------------------------------


@pytest.fixture
def full(home: Path, cfg_dir: Path) -> Config:
    return load_yaml(cfg_dir, FULL_CONFIG)


def test_full_config_top_level(full: Config, home: Path) -> None:
    assert full.host == "127.0.0.1"
    assert full.port == 9001
    assert full.auth_dir == home / "cpa-auth"
    assert full.debug is True
    f = full.file
    assert f.api_keys == ["client-key-one", "client-key-two"]
    assert f.proxy_url == "socks5://127.0.0.1:1080"
    assert f.request_retry == 5
    assert f.max_retry_interval == 12
    assert f.routing.strategy == "fill-first"
    assert f.remote_management.allow_remote is True
    assert f.remote_management.secret_key == "mgmt-secret-value"


def test_full_config_claude_key_entry(full: Config) -> None:
    [entry] = full.file.claude_api_key
    assert entry.api_key == "sk-ant-api03-aaaa"
    assert entry.base_url == "https://claude.example.com/"
    assert (entry.priority, entry.weight, entry.prefix) == (2, 3, "team")
    assert entry.headers == {"X-Custom": "fixed", "X-Session": "$x-claude-code-session-id"}
    assert entry.excluded_models == ["claude-3-*"]
    assert [(m.name, m.alias) for m in entry.models] == [("claude-sonnet-4-5-20250929", "sonnet")]


def test_full_config_codex_and_gemini(full: Config) -> None:
    assert [k.api_key for k in full.file.codex_api_key] == ["sk-proj-bbbb"]
    keys = full.gemini_keys()
    # gemini-api-key entries first, then the v5 generative-language-api-key strings.
    assert [k.api_key for k in keys] == ["AIzaSy-cccc", "AIzaSy-legacy-dddd"]
    assert keys[0].excluded_models == ["*-preview"]
    assert keys[1].excluded_models == []


def test_full_config_openai_compatibility(full: Config) -> None:
    router, legacy = full.file.openai_compatibility
    assert (router.name, router.base_url, router.prefix) == (
        "openrouter",
        "https://openrouter.ai/api/v1",
        "or",
    )
    [k] = router.keys()
    assert (k.api_key, k.proxy_url, k.weight) == ("sk-or-eeee", "http://proxy:3128", 2)
    assert [(m.name, m.alias) for m in router.models] == [("moonshotai/kimi-k2", "kimi")]
    # v5 spelling: a bare list of key strings.
    [legacy_key] = legacy.keys()
    assert (legacy_key.api_key, legacy_key.weight) == ("sk-legacy-ffff", 1)


def test_full_config_oauth_sections(full: Config) -> None:
    assert full.file.oauth_excluded_models == {"claude": ["claude-3-5-haiku-*"]}
    [alias] = full.file.oauth_model_alias["claude"]
    assert (alias.name, alias.alias) == ("claude-opus-4-1-20250805", "opus")


def test_full_config_upstream_overrides(full: Config) -> None:
    assert full.upstreams["claude"]["base-url"] == "http://127.0.0.1:5555"  # trailing / dropped
    assert full.upstreams["claude"]["token-url"] == "http://127.0.0.1:5556/token"
    # Names not overridden keep their real defaults; other providers untouched.
    assert full.upstreams["claude"]["authorize-url"] == DEFAULT_UPSTREAMS["claude"]["authorize-url"]
    assert full.upstreams["codex"] == merge_upstreams(None)["codex"]


def test_full_config_no_warnings(home: Path, cfg_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        load_yaml(cfg_dir, FULL_CONFIG)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_secrets_not_in_repr(full: Config) -> None:
    text = repr(full)
    for secret in ("client-key-one", "mgmt-secret-value", "sk-ant-api03-aaaa", "sk-or-eeee",
                   "sk-legacy-ffff", "AIzaSy-legacy-dddd"):
        assert secret not in text


def test_snake_case_keys_also_accepted(home: Path, cfg_dir: Path) -> None:
    cfg = load_yaml(cfg_dir, "auth_dir: /srv/auth\nrequest_retry: 1\n")
    assert cfg.auth_dir == Path("/srv/auth")
    assert cfg.file.request_retry == 1


@pytest.mark.parametrize(
    "section",
    ["claude-api-key", "codex-api-key", "gemini-api-key", "vertex-api-key", "openai-compatibility",
     "api-keys", "generative-language-api-key", "routing", "remote-management",
     "oauth-excluded-models", "oauth-model-alias", "upstreams"],
)
def test_section_left_empty_is_accepted(home: Path, cfg_dir: Path, section: str) -> None:
    # `claude-api-key:` with every entry commented out is YAML null; CLIProxyAPI accepts it.
    cfg = load_yaml(cfg_dir, f"port: 9400\n{section}:\n#  - api-key: sk-commented-out\n")
    assert cfg.port == 9400
    assert cfg.file.claude_api_key == [] and cfg.file.openai_compatibility == []
    assert cfg.file.routing.strategy == "round-robin"


# --- environment and overrides -----------------------------------------------------


def test_env_overrides_file(home: Path, cfg_dir: Path, tmp_path: Path) -> None:
    cfg = load_yaml(
        cfg_dir,
        "host: 10.1.1.1\nport: 9001\nauth-dir: /from/file\ndebug: false\n",
        QUOTIO_HOST="127.0.0.2",
        QUOTIO_PORT="9555",
        QUOTIO_AUTH_DIR=str(tmp_path / "envauth"),
        QUOTIO_DEBUG="yes",
        QUOTIO_PASSTHROUGH_ENABLED="false",
        QUOTIO_CLI_PROXY_PORT="28317",
        QUOTIO_DB=str(tmp_path / "x.db"),
    )
    assert cfg.host == "127.0.0.2"
    assert cfg.port == 9555
    assert cfg.auth_dir == tmp_path / "envauth"
    assert cfg.debug is True
    assert cfg.passthrough_enabled is False
    assert cfg.cli_proxy_port == 28317
    assert cfg.db_path == tmp_path / "x.db"


def test_overrides_beat_env(home: Path, cfg_dir: Path, tmp_path: Path) -> None:
    write(cfg_dir / "config.yaml", "port: 9001\n")
    cfg = load_config(
        env={"QUOTIO_CONFIG_DIR": str(cfg_dir), "QUOTIO_PORT": "9002", "QUOTIO_HOST": "1.2.3.4"},
        overrides={"port": 9003, "host": "::1", "auth_dir": str(tmp_path / "o"),
                   "db_path": str(tmp_path / "o.db")},
    )
    assert (cfg.port, cfg.host) == (9003, "::1")
    assert cfg.auth_dir == tmp_path / "o"
    assert cfg.db_path == tmp_path / "o.db"


def test_records_db_from_file(home: Path, cfg_dir: Path) -> None:
    cfg = load_yaml(cfg_dir, "records-db: ~/data/records.db\n")
    assert cfg.db_path == home / "data" / "records.db"


def test_debug_from_file_when_env_unset(home: Path, cfg_dir: Path) -> None:
    assert load_yaml(cfg_dir, "debug: true\n").debug is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("QUOTIO_PORT", "abc"),
        ("QUOTIO_PORT", "0"),
        ("QUOTIO_PORT", "70000"),
        ("QUOTIO_CLI_PROXY_PORT", "-5"),
        ("QUOTIO_DEBUG", "maybe"),
        ("QUOTIO_PASSTHROUGH_ENABLED", "2"),
    ],
)
def test_bad_env_values(home: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(env={name: value})
    msg = str(e.value)
    assert name in msg
    assert repr(value) in msg
    assert "expected" in msg
    assert "\n" not in msg


# --- unknown keys -------------------------------------------------------------------


def test_unknown_key_warns_once_and_is_accepted(
    home: Path, cfg_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="quotio_core.config"):
        cfg = load_yaml(cfg_dir, "port: 9010\nlogging-to-file: true\n")
    assert cfg.port == 9010
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "logging-to-file" in warnings[0].getMessage()
    assert str(cfg_dir / "config.yaml") in warnings[0].getMessage()


def test_each_unknown_key_named(home: Path, cfg_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="quotio_core.config"):
        load_yaml(cfg_dir, "tls:\n  enable: false\nws-auth: true\n")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert any("'tls'" in m for m in messages)
    assert any("'ws-auth'" in m for m in messages)


# --- bad values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("port: abc\n", "port", "valid integer"),
        ("port: 70000\n", "port", "less than or equal to 65535"),
        ("routing:\n  strategy: random\n", "routing.strategy", "round-robin"),
        ("request-retry: -1\n", "request-retry", "greater than or equal to 0"),
        ("claude-api-key:\n  - base-url: https://x\n", "claude-api-key.0.api-key", "required"),
        ("claude-api-key:\n  - api-key: k\n    weight: -2\n", "claude-api-key.0.weight",
         "greater than or equal to 0"),
        ("openai-compatibility:\n  - name: x\n", "openai-compatibility.0.base-url", "required"),
        ("api-keys: not-a-list\n", "api-keys", "valid list"),
        ("remote-management:\n  allow-remote: perhaps\n", "remote-management.allow-remote",
         "valid boolean"),
    ],
)
def test_bad_values_name_file_key_and_expectation(
    home: Path, cfg_dir: Path, text: str, key: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(cfg_dir, text)
    msg = str(e.value)
    assert str(cfg_dir / "config.yaml") in msg
    assert f"key {key}:" in msg
    assert expected in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("upstreams:\n  nosuch:\n    base-url: http://x\n", "upstreams.nosuch: unknown provider"),
        ("upstreams:\n  claude:\n    nosuch-url: http://x\n", "upstreams.claude.nosuch-url: unknown URL name"),
        ("upstreams:\n  claude:\n    base-url: ftp://x\n", "upstreams.claude.base-url: expected an http(s) URL"),
    ],
)
def test_bad_upstreams(home: Path, cfg_dir: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(cfg_dir, text)
    msg = str(e.value)
    assert str(cfg_dir / "config.yaml") in msg
    assert fragment in msg
    assert "expected" in msg
    assert "\n" not in msg


def test_yaml_not_a_mapping(home: Path, cfg_dir: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(cfg_dir, "- just\n- a list\n")
    assert str(cfg_dir / "config.yaml") in str(e.value)
    assert "mapping" in str(e.value)


def test_invalid_yaml_is_one_line(home: Path, cfg_dir: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(cfg_dir, "port: [unclosed\nhost: x\n")
    assert str(cfg_dir / "config.yaml") in str(e.value)
    assert "\n" not in str(e.value)


def test_unreadable_file(home: Path, tmp_path: Path) -> None:
    # A directory where the file should be: unreadable even for root.
    bad = tmp_path / "is-a-dir.yaml"
    bad.mkdir()
    with pytest.raises(ConfigError) as e:
        load_config(env={"QUOTIO_CONFIG": str(bad)})
    assert str(bad) in str(e.value)
    assert "cannot read" in str(e.value)


def test_file_not_utf8(home: Path, cfg_dir: Path) -> None:
    (cfg_dir / "config.yaml").write_bytes(b"host: caf\xe9\n")
    with pytest.raises(ConfigError) as e:
        load_config(env={"QUOTIO_CONFIG_DIR": str(cfg_dir)})
    assert str(cfg_dir / "config.yaml") in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("template", ["your-api-key-1", "your-api-key-2", "your-api-key-3"])
def test_template_api_keys_rejected(home: Path, cfg_dir: Path, template: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(cfg_dir, f"api-keys:\n  - real-key\n  - {template}\n")
    msg = str(e.value)
    assert str(cfg_dir / "config.yaml") in msg
    assert "api-keys" in msg
    assert template in msg


def test_config_is_frozen(full: Config) -> None:
    with pytest.raises(ValidationError):
        full.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "key", "secret"),
    [
        # A missing key's input is the whole entry, which holds the entry's keys.
        (
            "openai-compatibility:\n  - name: x\n    api-key-entries:\n      - api-key: sk-leak-one\n",
            "openai-compatibility.0.base-url",
            "sk-leak-one",
        ),
        ("remote-management:\n  secret-key: {pw: sk-leak-three}\n", "remote-management.secret-key", "sk-leak-three"),
        ("api-keys:\n  - fine-key\n  - [sk-leak-four]\n", "api-keys.1", "sk-leak-four"),
        ("claude-api-key:\n  - api-key: [sk-leak-two]\n", "claude-api-key.0.api-key", "sk-leak-two"),
    ],
)
def test_errors_never_echo_secrets(home: Path, cfg_dir: Path, text: str, key: str, secret: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(cfg_dir, text)
    msg = str(e.value)
    assert f"key {key}:" in msg
    assert str(cfg_dir / "config.yaml") in msg
    assert secret not in msg


def test_non_secret_bad_value_is_echoed(home: Path, cfg_dir: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_yaml(cfg_dir, "claude-api-key:\n  - api-key: sk-hidden\n    weight: heavy\n")
    assert "(got 'heavy')" in str(e.value)
    assert "sk-hidden" not in str(e.value)


def test_numeric_secrets_are_read_as_strings(home: Path, cfg_dir: Path) -> None:
    # Go's YAML loader in CLIProxyAPI takes these as strings; configs carry them.
    cfg = load_yaml(cfg_dir, "api-keys: [1234567]\nremote-management:\n  secret-key: 8675309\n")
    assert cfg.file.api_keys == ["1234567"]
    assert cfg.file.remote_management.secret_key == "8675309"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("proxy-url: ftp://proxy:21\n", "proxy-url"),
        ("claude-api-key:\n  - api-key: k\n    proxy-url: http://user:pw@proxy:8080\n", "claude-api-key[0].proxy-url"),
        (
            "openai-compatibility:\n  - name: x\n    base-url: http://x\n    api-key-entries:\n"
            "      - api-key: k\n        proxy-url: 'http://'\n",
            "openai-compatibility[0].api-key-entries[0].proxy-url",
        ),
    ],
)
def test_bad_proxy_url_names_the_key(home: Path, cfg_dir: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"config.yaml: key {re.escape(key)}:"):
        load_yaml(cfg_dir, text)


@pytest.mark.parametrize("value", ["direct", "none", "", "http://p:3128", "socks5://p:1080"])
def test_accepted_proxy_urls(home: Path, cfg_dir: Path, value: str) -> None:
    assert load_yaml(cfg_dir, f"proxy-url: '{value}'\n").file.proxy_url == value
