"""Credentials: CLIProxyAPI auth files and config key entries, one shape.

Every account or key the gateway can use becomes a :class:`Credential`,
whether it came from ``~/.cli-proxy-api/*.json`` or from a ``*-api-key``
entry in the config, so selection and routing treat them alike.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .. import providers
from ..config import Config, ModelAlias
from ..install import install_secret, key_id

__all__ = [
    "Credential",
    "CredentialError",
    "credential_from_auth_file",
    "credentials_from_config",
    "key_id",
]

Kind = Literal["oauth", "api-key", "service-account"]

class CredentialError(ValueError):
    pass


@dataclass(frozen=True)
class Credential:
    id: str
    provider: str
    kind: Kind
    source: Literal["file", "config"]
    secret: str = field(repr=False)
    label: str = ""
    email: str = ""
    base_url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    prefix: str = ""
    priority: int = 0
    weight: int = 1
    disabled: bool = False
    excluded_models: tuple[str, ...] = ()
    models: tuple[ModelAlias, ...] = ()
    expires_at: datetime | None = None
    compat_name: str = ""
    proxy_url: str = ""
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= datetime.now(UTC)

    @property
    def needs_login(self) -> bool:
        """No token, or its refresh was refused: only a new login brings it back."""
        return not self.secret or bool(self.data.get("needs_login"))

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        if self.needs_login:
            return "needs-login"
        return "expired" if self.is_expired else "ready"

    def excludes(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pat) for pat in self.excluded_models)

    def explicit_model(self, requested: str) -> str | None:
        """The upstream name for `requested` if this credential lists it by name or alias."""
        for m in self.models:
            if requested == (m.alias or m.name) or requested == m.name:
                return m.name
        return None

    def public(self) -> dict[str, Any]:
        """What management routes may show: everything but secrets."""
        return {
            "id": self.id,
            "provider": self.provider,
            "kind": self.kind,
            "source": self.source,
            "label": self.label,
            "email": self.email,
            "prefix": self.prefix,
            "priority": self.priority,
            "weight": self.weight,
            "disabled": self.disabled,
            "status": self.status,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "is_expired": self.is_expired,
            "last_refresh": self.data.get("last_refresh"),
            "last_error": self.data.get("last_error"),
            "excluded_models": list(self.excluded_models),
            "models": [m.alias or m.name for m in self.models],
        }


def _parse_time(value: Any) -> datetime | None:
    """RFC 3339 strings, unix seconds or unix milliseconds, as files carry them."""
    if value in (None, "", 0):
        return None
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return _parse_time(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = data.get(name)
        if value not in (None, ""):
            return value
    return None


# What a service-account credential carries as `secret` until the token keeper
# puts a bearer from `oauth.vertex.bearer()` there: a non-secret stand-in (the
# private key signs tokens and must never ride on a request), non-empty so the
# credential counts as usable. Executors refuse to send it.
def _str_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value if v)
    return ()


def credential_from_auth_file(
    name: str, data: Any, config: Config | None = None
) -> Credential:
    """Parse one auth file's JSON; raises CredentialError with the reason."""
    if not isinstance(data, Mapping):
        raise CredentialError("expected a JSON object")
    raw_type = _first(data, "type", "provider")
    if not isinstance(raw_type, str):
        raise CredentialError("no 'type' field")
    spec = providers.auth_file_provider(raw_type)
    if spec is None:
        raise CredentialError(f"unknown provider type {raw_type!r}")
    provider = spec.id
    kind, secret, expiry = spec.file_secret(data)
    try:
        priority = int(data.get("priority") or 0)
        weight = int(data.get("weight") if data.get("weight") is not None else 1)
    except (TypeError, ValueError) as e:
        raise CredentialError(f"priority/weight must be integers ({e})") from e
    excluded = _str_tuple(data.get("excluded_models"))
    aliases: tuple[ModelAlias, ...] = ()
    if config is not None:
        excluded += tuple(config.file.oauth_excluded_models.get(provider, ()))
        aliases = tuple(config.file.oauth_model_alias.get(provider, ()))
    email = str(_first(data, "email", "username", "account", "client_email") or "")
    return Credential(
        id=name,
        provider=provider,
        kind=kind,
        source="file",
        secret=secret,
        label=str(data.get("label") or data.get("note") or email or name),
        email=email,
        base_url=str(data.get("base_url") or ""),
        prefix=str(data.get("prefix") or "").strip("/"),
        priority=priority,
        weight=weight,
        disabled=bool(data.get("disabled", False)),
        excluded_models=excluded,
        models=aliases,
        expires_at=_parse_time(expiry),
        proxy_url=str(data.get("proxy_url") or ""),
        data=dict(data),
    )


def credentials_from_config(config: Config) -> list[Credential]:
    """The config's key entries, as pool members beside the auth files."""
    salt = install_secret(config.config_dir)
    out: list[Credential] = []
    sections = (
        ("claude-api-key", "claude", config.file.claude_api_key),
        ("codex-api-key", "codex", config.file.codex_api_key),
        ("gemini-api-key", "gemini", config.gemini_keys()),
        ("vertex-api-key", "vertex", config.file.vertex_api_key),
    )
    for section, provider, entries in sections:
        for i, entry in enumerate(entries):
            out.append(
                Credential(
                    id=f"{section}[{i}]",
                    provider=provider,
                    kind="api-key",
                    source="config",
                    secret=entry.api_key,
                    label=f"{section}[{i}] {key_id(entry.api_key, salt)}",
                    base_url=entry.base_url.rstrip("/"),
                    headers=dict(entry.headers),
                    prefix=entry.prefix.strip("/"),
                    priority=entry.priority,
                    weight=entry.weight,
                    excluded_models=tuple(entry.excluded_models),
                    models=tuple(entry.models),
                    proxy_url=entry.proxy_url,
                )
            )
    for compat in config.file.openai_compatibility:
        for i, key in enumerate(compat.keys()):
            out.append(
                Credential(
                    id=f"openai-compatibility:{compat.name}[{i}]",
                    provider="openai-compatibility",
                    kind="api-key",
                    source="config",
                    secret=key.api_key,
                    label=f"{compat.name}[{i}] {key_id(key.api_key, salt)}",
                    base_url=compat.base_url.rstrip("/"),
                    headers=dict(compat.headers),
                    prefix=compat.prefix.strip("/"),
                    priority=compat.priority,
                    weight=key.weight,
                    excluded_models=tuple(compat.excluded_models),
                    models=tuple(compat.models),
                    compat_name=compat.name,
                    proxy_url=key.proxy_url,
                )
            )
    return out
