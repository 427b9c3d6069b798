"""Configuration: CLIProxyAPI's ``config.yaml`` keys, the seed's env vars, one place.

Precedence, lowest first: model defaults, the config file, ``QUOTIO_*``
environment variables, then explicit overrides (CLI flags / mitmproxy
options). A bad value stops start-up with one line naming the file, the key
and what was expected (:class:`ConfigError`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, field_validator

from .proxyurl import parse_proxy_url

__all__ = [
    "parse_duration",
    "ClaudeKey",
    "CodexKey",
    "Config",
    "ConfigError",
    "FileConfig",
    "GeminiKey",
    "ImageFetching",
    "ModelAlias",
    "OpenAICompat",
    "load_config",
]

log = logging.getLogger(__name__)


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=_kebab,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        # CLIProxyAPI (Go YAML) reads `secret-key: 123456` as a string; so do we.
        coerce_numbers_to_str=True,
    )


class ModelAlias(_Model):
    name: str
    alias: str = ""


class _KeyEntry(_Model):
    api_key: str = Field(repr=False)
    priority: int = 0
    weight: int = Field(default=1, ge=0)
    prefix: str = ""
    base_url: str = ""
    proxy_url: str = ""
    headers: dict[str, str] = {}
    excluded_models: list[str] = []
    models: list[ModelAlias] = []


class ClaudeKey(_KeyEntry):
    pass


class CodexKey(_KeyEntry):
    pass


class GeminiKey(_KeyEntry):
    pass


class VertexKey(_KeyEntry):
    """A Vertex AI express-mode API key (Gemini models, no project)."""


class CompatKey(_Model):
    api_key: str = Field(repr=False)
    proxy_url: str = ""
    weight: int = Field(default=1, ge=0)


class OpenAICompat(_Model):
    name: str
    base_url: str
    prefix: str = ""
    priority: int = 0
    headers: dict[str, str] = {}
    api_key_entries: list[CompatKey] = []
    # v5 spelling: a bare list of keys.
    api_keys: list[str] = Field(default=[], repr=False)
    models: list[ModelAlias] = []
    excluded_models: list[str] = []

    def keys(self) -> list[CompatKey]:
        return list(self.api_key_entries) + [CompatKey(api_key=k) for k in self.api_keys]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)?")


def parse_duration(text: str) -> float:
    """ "1h", "30m", "90s", "1h30m", "500ms" or plain seconds, as CLIProxyAPI writes TTLs."""
    compact = str(text).replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"expected a duration like 30m, 1h or 90s, got {text!r}")
    factors = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "": 1.0}
    return sum(float(n) * factors[u] for n, u in parts)


class Routing(_Model):
    strategy: Literal["round-robin", "fill-first", "weighted-round-robin"] = "round-robin"
    # Unset: on for pools of Claude OAuth accounts only, keyed by the session
    # ids agents send (thinking signatures only validate on their own account).
    session_affinity: bool | None = None
    session_affinity_ttl: str = "1h"

    @field_validator("session_affinity_ttl")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class Timeouts(_Model):
    # No bytes either way for this long closes the connection: a hung upstream
    # before its first byte, or a stream stalled between events. Generous by
    # default, since a long thinking phase sends nothing before the first token.
    idle_seconds: float = Field(default=600, gt=0)
    # Opening the upstream connection; a black-holed host otherwise waits for the OS (minutes).
    connect_seconds: float = Field(default=10, gt=0)
    # From the request until the upstream's response headers.
    first_byte_seconds: float = Field(default=300, gt=0)
    # A streamed answer silent for this long gets an SSE comment, so proxies and
    # load balancers between the gateway and the client keep the stream; 0: never.
    keepalive_seconds: float = Field(default=15, ge=0)


class OAuthSettings(_Model):
    """quotio's own login settings (CLIProxyAPI takes these as flags)."""

    # Callback port per provider, e.g. {claude: 54545}; a provider's
    # registered redirect URI names its default port, so change it only for tests
    # or when a tunnel forwards that port.
    callback_ports: dict[str, int] = {}
    login_timeout_seconds: float = Field(default=600, gt=0)
    # How often the background refresher looks for tokens within their lead.
    refresh_check_seconds: float = Field(default=5, gt=0)
    # How long a credential whose refresh failed waits before the next try.
    refresh_retry_seconds: float = Field(default=300, ge=0)
    # Pause between polls of a long-running upstream step (Code Assist onboarding).
    poll_seconds: float = Field(default=5, gt=0)


class RemoteManagement(_Model):
    allow_remote: bool = False
    secret_key: str = Field(default="", repr=False)
    disable_control_panel: bool = False


class ImageFetching(_Model):
    """Remote image URLs the gateway fetches for targets that only take inline bytes (Gemini, Kiro)."""

    # public: only hosts with public addresses; off: every remote image is refused;
    # any: every address, loopback and private networks included.
    fetch_remote: Literal["public", "off", "any"] = "public"
    # Networks fetched from although not public, e.g. an internal image host ("10.1.2.0/24").
    allowed_networks: tuple[IPvAnyNetwork, ...] = ()
    # All of one request's images must arrive within this many seconds.
    deadline_seconds: float = Field(default=20, gt=0)


# Keys of CLIProxyAPI's config.yaml that are understood and acted on.
IMPLEMENTED_KEYS = frozenset(
    {
        "host",
        "port",
        "auth-dir",
        "api-keys",
        "debug",
        "proxy-url",
        "request-retry",
        "max-retry-interval",
        "disable-cooling",
        "transient-error-cooldown-seconds",
        "routing",
        "timeouts",
        "remote-management",
        "claude-api-key",
        "codex-api-key",
        "gemini-api-key",
        "generative-language-api-key",
        "vertex-api-key",
        "openai-compatibility",
        "oauth-excluded-models",
        "oauth-model-alias",
        "upstreams",
        "records-db",
        "header-defaults",
        "codex-header-defaults",
        "oauth",
        "quota-refresh-seconds",
        "usage-retention-days",
        "web-max-flows",
        "allowed-hosts",
        "max-request-body-mb",
        "images",
    }
)


class FileConfig(_Model):
    host: str = "0.0.0.0"
    port: int = Field(default=8317, ge=1, le=65535)
    auth_dir: str = "~/.cli-proxy-api"
    api_keys: list[str] = Field(default=[], repr=False)
    debug: bool = False
    proxy_url: str = ""
    request_retry: int = Field(default=3, ge=0)
    max_retry_interval: int = Field(default=30, ge=0)
    disable_cooling: bool = False
    transient_error_cooldown_seconds: int = Field(default=60, ge=0)
    routing: Routing = Routing()
    timeouts: Timeouts = Timeouts()
    remote_management: RemoteManagement = RemoteManagement()
    claude_api_key: list[ClaudeKey] = []
    codex_api_key: list[CodexKey] = []
    gemini_api_key: list[GeminiKey] = []
    generative_language_api_key: list[str] = Field(default=[], repr=False)
    vertex_api_key: list[VertexKey] = []
    openai_compatibility: list[OpenAICompat] = []
    oauth_excluded_models: dict[str, list[str]] = {}
    oauth_model_alias: dict[str, list[ModelAlias]] = {}
    upstreams: dict[str, dict[str, str]] = {}
    records_db: str = ""
    # Client identity headers sent upstream, per provider id (versions drift).
    header_defaults: dict[str, dict[str, str]] = {}
    codex_header_defaults: dict[str, str] = {}
    oauth: OAuthSettings = OAuthSettings()
    # How often each account's quota is fetched in the background; 0 fetches
    # only on demand (`/usage/quotas/all?refresh=true`).
    quota_refresh_seconds: float = Field(default=300, ge=0)
    # Request records older than this are pruned; 0 keeps them forever.
    usage_retention_days: float = Field(default=30, ge=0)
    # Flows mitmweb keeps for its UI (oldest finished ones go first); 0: no limit.
    web_max_flows: int = Field(default=1000, ge=0)
    # Host names (besides loopback ones) the gateway may be reached by, e.g.
    # behind a reverse proxy; anything else is refused as DNS rebinding.
    allowed_hosts: list[str] = []
    # Larger request bodies get 413 before they are read whole (Anthropic's limit).
    max_request_body_mb: float = Field(default=32, gt=0)
    # Remote images fetched on a client's behalf (SSRF guard).
    images: ImageFetching = ImageFetching()

    @field_validator("api_keys", "generative_language_api_key", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v


class Config(_Model):
    """The resolved configuration the gateway runs with."""

    host: str
    port: int
    auth_dir: Path
    config_dir: Path
    config_path: Path | None
    db_path: Path
    debug: bool
    passthrough_enabled: bool
    cli_proxy_port: int
    file: FileConfig
    upstreams: dict[str, dict[str, str]]

    @property
    def listen_mode(self) -> str:
        """The mitmproxy mode of the gateway's listener.

        Reverse mode whose target is CLIProxyAPI: whatever the addons do not
        route is passed on to it.
        """
        # mitmproxy splits the port off at the last colon: an IPv6 host goes unbracketed.
        return f"reverse:http://127.0.0.1:{self.cli_proxy_port}@{self.host}:{self.port}"

    @property
    def reachable_hosts(self) -> frozenset[str]:
        """Names besides loopback ones a local client may call the gateway by (its Host header)."""
        names = {h.strip().lower().strip("[]") for h in self.file.allowed_hosts}
        if self.host not in ("0.0.0.0", "::", ""):
            names.add(self.host.lower().strip("[]"))
        return frozenset(names)

    def headers_for(self, provider: str) -> dict[str, str]:
        """Header overrides for a provider's upstream; CLIProxyAPI's codex key included."""
        out = {}
        if provider == "codex" and self.file.codex_header_defaults.get("user-agent"):
            out["user-agent"] = self.file.codex_header_defaults["user-agent"]
        out.update({k.lower(): v for k, v in self.file.header_defaults.get(provider, {}).items()})
        return out

    def gemini_keys(self) -> list[GeminiKey]:
        legacy = [GeminiKey(api_key=k) for k in self.file.generative_language_api_key]
        return list(self.file.gemini_api_key) + legacy


class ConfigError(ValueError):
    """A configuration problem, already phrased as one line for the user."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"environment {name}: expected true or false, got {raw!r}")


def _env_port(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise ConfigError(f"environment {name}: expected a port number 1-65535, got {raw!r}")
    return port


_SECRET_KEYS = {"api-key", "api-keys", "secret-key", "generative-language-api-key"}


def _describe(err: dict[str, Any]) -> str:
    loc = [str(p) for p in err["loc"]]
    text = f"key {'.'.join(loc) or '(top level)'}: {err['msg']}"
    # A missing key's input is its whole entry; neither that nor a secret is echoed.
    if err["type"] == "missing" or _SECRET_KEYS.intersection(loc):
        return text
    return f"{text} (got {err.get('input')!r})"


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: cannot read config file (not UTF-8: {e.reason})") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})".replace("\n", " ")) from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def _warn_unimplemented(path: Path, data: Mapping[str, Any]) -> None:
    for key in data:
        if key not in IMPLEMENTED_KEYS:
            log.warning("%s: config key %r is accepted but not implemented yet", path, key)


def _proxy_urls(cfg: FileConfig) -> list[tuple[str, str]]:
    found = [("proxy-url", cfg.proxy_url)]
    for section in ("claude_api_key", "codex_api_key", "gemini_api_key", "vertex_api_key"):
        for i, entry in enumerate(getattr(cfg, section)):
            found.append((f"{_kebab(section)}[{i}].proxy-url", entry.proxy_url))
    for i, compat in enumerate(cfg.openai_compatibility):
        for j, key in enumerate(compat.api_key_entries):
            found.append((f"openai-compatibility[{i}].api-key-entries[{j}].proxy-url", key.proxy_url))
    return found


def parse_file_config(data: Mapping[str, Any], source: str = "config") -> FileConfig:
    # A section whose entries are all commented out is YAML null: treat it as unset.
    data = {k: v for k, v in data.items() if v is not None}
    try:
        cfg = FileConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"{source}: {_describe(e.errors()[0])}") from e
    for key, value in _proxy_urls(cfg):
        try:
            parse_proxy_url(value)
        except ValueError as e:
            raise ConfigError(f"{source}: key {key}: {e}") from e
    for key in cfg.api_keys:
        if key.startswith("your-api-key-"):
            raise ConfigError(
                f"{source}: key api-keys: still holds the template value {key!r}; set real keys"
            )
    return cfg


def load_config(
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the :class:`Config` from file, environment and overrides."""
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    config_dir = Path(env.get("QUOTIO_CONFIG_DIR") or "~/.config/quotio").expanduser()

    explicit = overrides.get("config_path") or env.get("QUOTIO_CONFIG")
    path = Path(explicit).expanduser() if explicit else config_dir / "config.yaml"
    if path.exists() or explicit:
        data = _read_file(path)
        _warn_unimplemented(path, data)
        file_cfg = parse_file_config(data, str(path))
        config_path: Path | None = path
    else:
        file_cfg = FileConfig()
        config_path = None
    source = str(config_path or "config")

    # Imported here: the providers' modules read Config, so this module cannot
    # need them while it is first imported.
    from .providers import merge_upstreams

    try:
        upstreams = merge_upstreams(file_cfg.upstreams)
    except ValueError as e:
        raise ConfigError(f"{source}: key {e}") from e

    port = overrides.get("port") or _env_port(env, "QUOTIO_PORT") or file_cfg.port
    host = overrides.get("host") or env.get("QUOTIO_HOST") or file_cfg.host
    auth_dir = overrides.get("auth_dir") or env.get("QUOTIO_AUTH_DIR") or file_cfg.auth_dir
    debug = _env_bool(env, "QUOTIO_DEBUG")
    passthrough = _env_bool(env, "QUOTIO_PASSTHROUGH_ENABLED")
    cli_port = _env_port(env, "QUOTIO_CLI_PROXY_PORT") or 18317
    db = overrides.get("db_path") or env.get("QUOTIO_DB") or file_cfg.records_db
    return Config(
        host=host,
        port=port,
        auth_dir=Path(auth_dir).expanduser(),
        config_dir=config_dir,
        config_path=config_path,
        db_path=Path(db).expanduser() if db else config_dir / "quotio.db",
        debug=file_cfg.debug if debug is None else debug,
        passthrough_enabled=True if passthrough is None else passthrough,
        cli_proxy_port=cli_port,
        file=file_cfg,
        upstreams=upstreams,
    )
