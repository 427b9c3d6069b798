import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from quotio_core.config import Config, ModelAlias, load_config
from quotio_core.providers.vertex.service_account import SERVICE_ACCOUNT_STANDIN
from quotio_core.pool.credentials import (
    Credential,
    CredentialError,
    credential_from_auth_file,
    credentials_from_config,
    key_id,
)

FUTURE = "2099-01-01T00:00:00Z"
FUTURE_DT = datetime(2099, 1, 1, tzinfo=UTC)

# (file name, JSON, provider, kind, secret, email) for every format the gateway must read.
FILES = [
    (
        "claude-me@example.com.json",
        {"type": "claude", "email": "me@example.com", "access_token": "sk-ant-oat01-claude",
         "refresh_token": "rt", "id_token": "idt", "expired": FUTURE, "last_refresh": FUTURE,
         "account_uuid": "u", "organization_uuid": "o", "organization_name": "Org"},
        "claude", "oauth", "sk-ant-oat01-claude", "me@example.com",
    ),
    (
        "codex-abc123-me@example.com-plus.json",
        {"type": "codex", "email": "me@example.com", "id_token": "idt",
         "access_token": "codex-access", "refresh_token": "rt", "account_id": "acct",
         "expired": FUTURE, "last_refresh": FUTURE},
        "codex", "oauth", "codex-access", "me@example.com",
    ),
    (
        "gemini-me@example.com-proj.json",
        {"type": "gemini", "email": "me@example.com", "project_id": "proj", "auto": False,
         "checked": False,
         "token": {"access_token": "ya29.gemini-access", "refresh_token": "rt",
                   "token_type": "Bearer", "expiry": FUTURE,
                   "token_uri": "https://oauth2.googleapis.com/token"}},
        "gemini", "oauth", "ya29.gemini-access", "me@example.com",
    ),
    (
        "qwen-me@example.com.json",
        {"type": "qwen", "email": "me@example.com", "access_token": "qwen-access",
         "refresh_token": "rt", "resource_url": "portal.qwen.ai", "expired": FUTURE,
         "last_refresh": FUTURE},
        "qwen", "oauth", "qwen-access", "me@example.com",
    ),
    (
        "iflow-me@example.com-1700000000.json",
        {"type": "iflow", "email": "me@example.com", "access_token": "iflow-oauth-token",
         "refresh_token": "rt", "api_key": "sk-iflow-api-key", "cookie": "BXAuth=x",
         "token_type": "bearer", "scope": "s", "expired": FUTURE, "last_refresh": FUTURE},
        "iflow", "oauth", "sk-iflow-api-key", "me@example.com",
    ),
    (
        "github-copilot-octocat.json",
        {"type": "github-copilot", "access_token": "ghu_copilottoken", "token_type": "bearer",
         "scope": "user:email", "username": "octocat", "expires_at": FUTURE},
        "github-copilot", "oauth", "ghu_copilottoken", "octocat",
    ),
    (
        "kiro-aws-me.json",
        {"type": "kiro", "accessToken": "kiro-camel-access", "refreshToken": "rt",
         "profileArn": "arn:aws:codewhisperer:x", "expiresAt": FUTURE, "authMethod": "IdC",
         "email": "me@example.com"},
        "kiro", "oauth", "kiro-camel-access", "me@example.com",
    ),
    (
        "kiro-google-me.json",
        {"type": "kiro", "provider": "Google", "access_token": "kiro-snake-access",
         "refresh_token": "rt", "profile_arn": "arn", "expires_at": FUTURE,
         "auth_method": "social", "last_refresh": FUTURE},
        "kiro", "oauth", "kiro-snake-access", "",
    ),
    (
        "vertex-proj.json",
        {"type": "vertex", "project_id": "proj", "email": "sa@proj.iam.gserviceaccount.com",
         "location": "us-central1",
         "service_account": {"type": "service_account", "client_email": "sa@proj",
                             "private_key": "-----BEGIN PRIVATE KEY-----\nabc"}},
        # Never the private key: a stand-in naming its hash until a bearer is issued.
        "vertex", "service-account", SERVICE_ACCOUNT_STANDIN + key_id("-----BEGIN PRIVATE KEY-----\nabc"),
        "sa@proj.iam.gserviceaccount.com",
    ),
    (
        "antigravity-me@example.com.json",
        {"type": "antigravity", "access_token": "ya29.antigravity", "email": "me@example.com",
         "expired": FUTURE, "expires_in": 3599, "refresh_token": "rt",
         "timestamp": 1_700_000_000_000},
        "antigravity", "oauth", "ya29.antigravity", "me@example.com",
    ),
    # quotio's CLI variants: `provider` instead of `type`.
    (
        "github-copilot-octocat-1700000000000.json",
        {"access_token": "gho_quotiocopilot", "account": "octocat",
         "created_at": "2025-01-01T00:00:00Z", "provider": "github-copilot"},
        "github-copilot", "oauth", "gho_quotiocopilot", "octocat",
    ),
    (
        "kiro-google-me@example.com-1700000000000.json",
        {"access_token": "kiro-quotio-access", "refresh_token": "rt", "email": "me@example.com",
         "auth_method": "Social", "created_at": "2025-01-01T00:00:00Z", "provider": "kiro"},
        "kiro", "oauth", "kiro-quotio-access", "me@example.com",
    ),
    # quotio TS server store format (camelCase, `provider`, its own provider spellings).
    (
        "gemini-cli-1700000000000-abcdef.json",
        {"id": "gemini-cli-1700000000000-abcdef", "provider": "gemini-cli",
         "accessToken": "ya29.ts-gemini", "expiresAt": FUTURE, "email": "me@example.com",
         "status": "ready", "createdAt": FUTURE, "updatedAt": FUTURE},
        "gemini", "oauth", "ya29.ts-gemini", "me@example.com",
    ),
    (
        "vertex-1700000000000-abcdef.json",
        {"id": "vertex-1", "provider": "vertex", "status": "ready",
         "serviceAccountJson": json.dumps({"type": "service_account", "client_email": "sa@p",
                                           "private_key": "PRIVATE-KEY-PEM"})},
        "vertex", "service-account", SERVICE_ACCOUNT_STANDIN + key_id("PRIVATE-KEY-PEM"), "",
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "provider", "kind", "secret", "email"), FILES, ids=[f[0] for f in FILES]
)
def test_every_file_format(
    name: str, data: dict, provider: str, kind: str, secret: str, email: str
) -> None:
    cred = credential_from_auth_file(name, data)
    assert cred.id == name
    assert cred.provider == provider
    assert cred.kind == kind
    assert cred.source == "file"
    assert cred.secret == secret
    assert cred.email == email
    assert cred.label == (email or name)
    assert cred.disabled is False
    assert (cred.priority, cred.weight, cred.prefix) == (0, 1, "")
    assert cred.data == data


@pytest.mark.parametrize(
    ("name", "data", "provider", "kind", "secret", "email"), FILES, ids=[f[0] for f in FILES]
)
def test_public_never_holds_the_secret(
    name: str, data: dict, provider: str, kind: str, secret: str, email: str
) -> None:
    cred = credential_from_auth_file(name, data)
    public = cred.public()
    assert secret not in json.dumps(public)
    assert secret not in repr(cred)
    assert public["id"] == name
    assert public["provider"] == provider
    assert public["status"] == ("ready" if secret else "needs-login")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"expired": "2030-05-06T07:08:09Z"}, datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ({"expired": "2030-05-06T09:08:09+02:00"}, datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)),
        # Go's RFC3339Nano (oauth2.Token.Expiry) carries nine fractional digits.
        ({"expired": "2030-05-06T07:08:09.123456789Z"},
         datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)),
        ({"expired": "2030-05-06T07:08:09"}, datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ({"expires_at": 1_900_000_000}, datetime.fromtimestamp(1_900_000_000, UTC)),
        ({"expires_at": 1_900_000_000_000}, datetime.fromtimestamp(1_900_000_000, UTC)),
        ({"expiresAt": "1900000000000"}, datetime.fromtimestamp(1_900_000_000, UTC)),
        ({"expiry": "1900000000"}, datetime.fromtimestamp(1_900_000_000, UTC)),
        ({"expires_at": 1_900_000_000.5}, datetime.fromtimestamp(1_900_000_000.5, UTC)),
        ({"expired": ""}, None),
        ({"expired": "not a date"}, None),
        ({"expires_at": 0}, None),
        ({}, None),
    ],
)
def test_expiry_parsing(data: dict, expected: datetime | None) -> None:
    cred = credential_from_auth_file("c.json", {"type": "claude", "access_token": "t", **data})
    assert cred.expires_at == expected
    if expected is not None:
        assert cred.expires_at.tzinfo is not None


def test_gemini_expiry_comes_from_nested_token() -> None:
    cred = credential_from_auth_file(
        "g.json", {"type": "gemini", "token": {"access_token": "a", "expiry": "2031-01-01T00:00:00Z"}}
    )
    assert cred.expires_at == datetime(2031, 1, 1, tzinfo=UTC)


def test_iflow_without_api_key_uses_access_token() -> None:
    cred = credential_from_auth_file("i.json", {"type": "iflow", "access_token": "oauth-only"})
    assert cred.secret == "oauth-only"


@pytest.mark.parametrize(
    ("expires", "status", "expired"),
    [
        ((datetime.now(UTC) + timedelta(hours=1)).isoformat(), "ready", False),
        ((datetime.now(UTC) - timedelta(seconds=1)).isoformat(), "expired", True),
        (None, "ready", False),
    ],
)
def test_status_and_expiry(expires: str | None, status: str, expired: bool) -> None:
    data = {"type": "claude", "access_token": "t"}
    if expires:
        data["expired"] = expires
    cred = credential_from_auth_file("c.json", data)
    assert cred.is_expired is expired
    assert cred.status == status
    assert cred.public()["is_expired"] is expired


def test_disabled_wins_over_everything() -> None:
    cred = credential_from_auth_file("c.json", {"type": "claude", "access_token": "", "disabled": True})
    assert cred.status == "disabled"


def test_missing_secret_needs_login() -> None:
    assert credential_from_auth_file("c.json", {"type": "codex"}).status == "needs-login"


def test_optional_fields() -> None:
    cred = credential_from_auth_file(
        "claude-a.json",
        {"type": "claude", "access_token": "t", "email": "a@x", "disabled": True, "priority": 5,
         "prefix": "/team/", "weight": 4, "excluded_models": ["claude-3-*", "*haiku*"],
         "note": "work account", "base_url": "https://claude.example"},
    )
    assert cred.disabled is True
    assert cred.priority == 5
    assert cred.prefix == "team"  # slashes trimmed
    assert cred.weight == 4
    assert cred.excluded_models == ("claude-3-*", "*haiku*")
    assert cred.label == "work account"
    assert cred.base_url == "https://claude.example"
    assert cred.excludes("claude-3-7-sonnet") and cred.excludes("claude-haiku-4-5")
    assert not cred.excludes("claude-sonnet-4-5")


@pytest.mark.parametrize(("raw", "weight"), [(0, 0), ("3", 3), (None, 1)])
def test_weight_values(raw: object, weight: int) -> None:
    cred = credential_from_auth_file("c.json", {"type": "claude", "access_token": "t", "weight": raw})
    assert cred.weight == weight


def test_single_excluded_model_string() -> None:
    cred = credential_from_auth_file(
        "c.json", {"type": "claude", "access_token": "t", "excluded_models": "claude-3-*"}
    )
    assert cred.excluded_models == ("claude-3-*",)


@pytest.mark.parametrize(
    ("raw", "provider"),
    [("anthropic", "claude"), ("Claude", "claude"), ("gemini-cli", "gemini"),
     ("copilot", "github-copilot"), ("github", "github-copilot"), ("openai", "codex")],
)
def test_provider_aliases(raw: str, provider: str) -> None:
    assert credential_from_auth_file("x.json", {"type": raw, "access_token": "t"}).provider == provider


def test_type_wins_over_provider() -> None:
    cred = credential_from_auth_file("k.json", {"type": "kiro", "provider": "AWS", "access_token": "t"})
    assert cred.provider == "kiro"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object"),
        ("claude", "expected a JSON object"),
        (None, "expected a JSON object"),
        ({"access_token": "t"}, "no 'type' field"),
        ({"type": 5, "access_token": "t"}, "no 'type' field"),
        ({"type": "", "access_token": "t"}, "no 'type' field"),
        ({"type": "xai-unknown", "access_token": "t"}, "unknown provider type 'xai-unknown'"),
        ({"type": "claude", "priority": "high"}, "priority/weight must be integers"),
        ({"type": "claude", "weight": "heavy"}, "priority/weight must be integers"),
    ],
)
def test_errors(data: object, message: str) -> None:
    with pytest.raises(CredentialError) as e:
        credential_from_auth_file("bad.json", data)
    assert message in str(e.value)


# --- with a config ---------------------------------------------------------------


def config_from(tmp_path: Path, text: str) -> Config:
    (tmp_path / "config.yaml").write_text(text)
    return load_config(
        env={"QUOTIO_CONFIG_DIR": str(tmp_path), "QUOTIO_AUTH_DIR": str(tmp_path / "auth")}
    )


def test_oauth_sections_apply_to_files(tmp_path: Path) -> None:
    cfg = config_from(
        tmp_path,
        "oauth-excluded-models:\n  claude: ['claude-3-*']\n"
        "oauth-model-alias:\n  claude:\n    - name: claude-opus-4-1-20250805\n      alias: opus\n",
    )
    claude = credential_from_auth_file(
        "c.json", {"type": "claude", "access_token": "t", "excluded_models": ["*haiku*"]}, cfg
    )
    assert claude.excluded_models == ("*haiku*", "claude-3-*")
    assert claude.explicit_model("opus") == "claude-opus-4-1-20250805"
    codex = credential_from_auth_file("x.json", {"type": "codex", "access_token": "t"}, cfg)
    assert codex.excluded_models == () and codex.models == ()


CONFIG_KEYS = """\
claude-api-key:
  - api-key: sk-ant-api03-first
    base-url: https://claude.example.com/
    prefix: /team/
    priority: 3
    weight: 2
    headers: {X-A: b}
    excluded-models: ['claude-3-*']
    models:
      - name: claude-sonnet-4-5-20250929
        alias: sonnet
  - api-key: sk-ant-api03-second
codex-api-key:
  - api-key: sk-proj-codex
gemini-api-key:
  - api-key: AIzaSy-gemini
generative-language-api-key:
  - AIzaSy-legacy
openai-compatibility:
  - name: openrouter
    base-url: https://openrouter.ai/api/v1/
    prefix: or
    priority: 1
    headers: {HTTP-Referer: https://me}
    api-key-entries:
      - api-key: sk-or-one
        weight: 5
    api-keys: [sk-or-two]
    models:
      - name: moonshotai/kimi-k2
        alias: kimi
    excluded-models: ['*free*']
"""


@pytest.fixture
def config_creds(tmp_path: Path) -> list[Credential]:
    return credentials_from_config(config_from(tmp_path, CONFIG_KEYS))


def test_config_credential_ids(config_creds: list[Credential]) -> None:
    assert [(c.id, c.provider, c.kind, c.source) for c in config_creds] == [
        ("claude-api-key[0]", "claude", "api-key", "config"),
        ("claude-api-key[1]", "claude", "api-key", "config"),
        ("codex-api-key[0]", "codex", "api-key", "config"),
        ("gemini-api-key[0]", "gemini", "api-key", "config"),
        ("gemini-api-key[1]", "gemini", "api-key", "config"),
        ("openai-compatibility:openrouter[0]", "openai-compatibility", "api-key", "config"),
        ("openai-compatibility:openrouter[1]", "openai-compatibility", "api-key", "config"),
    ]
    assert [c.secret for c in config_creds] == [
        "sk-ant-api03-first", "sk-ant-api03-second", "sk-proj-codex", "AIzaSy-gemini",
        "AIzaSy-legacy", "sk-or-one", "sk-or-two",
    ]


def test_config_credential_fields(config_creds: list[Credential], tmp_path: Path) -> None:
    first = config_creds[0]
    assert first.base_url == "https://claude.example.com"
    assert first.prefix == "team"
    assert (first.priority, first.weight) == (3, 2)
    assert dict(first.headers) == {"X-A": "b"}
    assert first.excluded_models == ("claude-3-*",)
    assert first.models == (ModelAlias(name="claude-sonnet-4-5-20250929", alias="sonnet"),)
    assert first.explicit_model("sonnet") == "claude-sonnet-4-5-20250929"
    assert first.explicit_model("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5-20250929"
    assert first.explicit_model("opus") is None
    # Keyed with this installation's secret, made in the config dir (0600).
    secret = tmp_path / "install-secret"
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert first.label == f"claude-api-key[0] {key_id('sk-ant-api03-first', secret.read_bytes())}"
    assert key_id("sk-ant-api03-first", secret.read_bytes()) != key_id("sk-ant-api03-first")

    second = config_creds[1]
    assert (second.base_url, second.prefix, second.priority, second.weight) == ("", "", 0, 1)

    one, two = config_creds[5:]
    for c in (one, two):
        assert c.compat_name == "openrouter"
        assert c.base_url == "https://openrouter.ai/api/v1"
        assert c.prefix == "or"
        assert c.priority == 1
        assert dict(c.headers) == {"HTTP-Referer": "https://me"}
        assert c.excluded_models == ("*free*",)
        assert c.explicit_model("kimi") == "moonshotai/kimi-k2"
    assert (one.weight, two.weight) == (5, 1)


def test_config_credentials_public_has_no_secret(config_creds: list[Credential]) -> None:
    dumped = json.dumps([c.public() for c in config_creds])
    for c in config_creds:
        assert c.secret not in dumped
        assert c.secret not in repr(c)
        assert c.status == "ready"


def test_no_config_keys_no_credentials(tmp_path: Path) -> None:
    assert credentials_from_config(config_from(tmp_path, "port: 8317\n")) == []


def test_key_id_is_stable_and_not_the_key() -> None:
    assert key_id("secret-a") == key_id("secret-a")
    assert key_id("secret-a") != key_id("secret-b")
    assert len(key_id("secret-a")) == 12
    assert "secret" not in key_id("secret-a")


@pytest.mark.parametrize("sa", [["not", "an", "object"], 42, "-----BEGIN PRIVATE KEY-----raw"])
def test_vertex_odd_service_account_values(sa: object) -> None:
    # A bare PEM string names no client_email, so nothing could be signed with it.
    cred = credential_from_auth_file("v.json", {"type": "vertex", "service_account": sa})
    assert cred.kind == "service-account"
    assert cred.secret == ""
    assert cred.status == "needs-login"


# Which of FILES carry an expiry, in whichever field their format uses.
EXPIRING = {
    "claude-me@example.com.json",  # expired
    "codex-abc123-me@example.com-plus.json",  # expired
    "gemini-me@example.com-proj.json",  # token.expiry
    "qwen-me@example.com.json",  # expired
    "iflow-me@example.com-1700000000.json",  # expired
    "github-copilot-octocat.json",  # expires_at
    "kiro-aws-me.json",  # expiresAt
    "kiro-google-me.json",  # expires_at
    "antigravity-me@example.com.json",  # expired
    "gemini-cli-1700000000000-abcdef.json",  # expiresAt
}


@pytest.mark.parametrize(("name", "data"), [(f[0], f[1]) for f in FILES], ids=[f[0] for f in FILES])
def test_expiry_field_per_format(name: str, data: dict) -> None:
    cred = credential_from_auth_file(name, data)
    assert cred.expires_at == (FUTURE_DT if name in EXPIRING else None)
    assert cred.is_expired is False
