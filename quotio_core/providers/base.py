"""What every provider shares: the shape of a call, and of a provider's spec.

`Provider` is the one description of a provider: every per-provider table
in the gateway (aliases, upstream URLs, model catalogs and families, login
and quota modules, CLIProxyAPI's route names, how an auth file holds its
token) is derived from the list of these in `providers/__init__.py`.
An executor (`<provider>/call.py`) turns a credential and a client request
into the upstream URL and headers (`prepare`); it does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..pool.credentials import Credential

__all__ = [
    "CLIENT_SECRET_HEADERS",
    "CLIENT_SECRET_PARAMS",
    "Call",
    "Provider",
    "UpstreamRequest",
    "extra_headers",
    "token_file_secret",
]


# Headers that carry the client's own key to us; never forwarded upstream.
CLIENT_SECRET_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")
CLIENT_SECRET_PARAMS = ("key", "auth_token")


@dataclass(frozen=True)
class Call:
    credential: Credential
    upstreams: Mapping[str, Mapping[str, str]]
    client_headers: Mapping[str, str]
    endpoint: str  # "messages", "count_tokens", "chat", "generateContent", ...
    model: str  # the model name to send upstream
    query: Mapping[str, str] = field(default_factory=dict)
    # Configured client-identity headers for this provider (`header-defaults`).
    header_defaults: Mapping[str, str] = field(default_factory=dict)
    # The request body in the provider's format (before any wrapping), for
    # headers that depend on it (Copilot's X-Initiator and vision flag).
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class UpstreamRequest:
    url: str
    headers: Mapping[str, str]
    # Names of headers in `headers` whose values are credentials (masked on the stored flow).
    secret_headers: tuple[str, ...]


def extra_headers(cred: Credential, client_headers: Mapping[str, str]) -> dict[str, str]:
    """A key entry's own `headers`; a value `$name` copies that client header."""
    out = {}
    for name, value in cred.headers.items():
        if value.startswith("$"):
            copied = client_headers.get(value[1:].lower())
            if copied is not None:
                out[name.lower()] = copied
        else:
            out[name.lower()] = value
    return out


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    return next((data[k] for k in keys if data.get(k) is not None), None)


def token_file_secret(data: Mapping[str, Any]) -> tuple[str, str, Any]:
    """(kind, secret, expiry) of an auth file that holds a bearer token, in CLIProxyAPI's spellings."""
    secret = _first(data, "access_token", "accessToken") or ""
    expiry = _first(data, "expired", "expires_at", "expiresAt", "expiry")
    return "oauth", str(secret), expiry


@dataclass(frozen=True)
class Provider:
    """Everything the gateway knows of one provider; see the module docstring."""

    id: str
    # Other spellings of the id: auth files' `type`, management and CLI names.
    aliases: tuple[str, ...] = ()
    # How each kind of credential is called: "oauth", "api-key", "service-account".
    calls: Mapping[str, ModuleType] = field(default_factory=dict)
    login: ModuleType | None = None
    quota: ModuleType | None = None
    # Every upstream URL it calls, name -> real default (`upstreams.<id>.<name>` overrides).
    upstreams: Mapping[str, str] = field(default_factory=dict)
    # Model ids listed for its credentials when they name none.
    catalog: tuple[str, ...] = ()
    # Regexes of model names it owns ("^claude").
    families: tuple[str, ...] = ()
    # Other providers' families it serves as a second choice (when none of theirs is in the pool).
    guest_families: tuple[str, ...] = ()
    # By credential kind: other providers' families it shares a pool for (a Vertex service account).
    co_owns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # CLIProxyAPI's `/v0/management/<name>-auth-url` names for its login.
    auth_url_names: tuple[str, ...] = ()
    # Whether accounts of it live in auth files, and how such a file holds its secret.
    auth_files: bool = True
    file_secret: Callable[[Mapping[str, Any]], tuple[str, str, Any]] = token_file_secret


