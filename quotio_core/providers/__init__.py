"""Providers: who the gateway calls, how, how it logs in to them, what their quotas say.

The room's rules: one package per provider (`<provider>/spec.py` holds its
`Provider`; `call.py` how its upstream is called; `login.py` how it logs in
and stays logged in; `quota.py` what its quota fetch reads), and `PROVIDERS`
below is the one list of them. Every per-provider table anywhere in the
gateway (aliases, upstream URLs, model catalogs and families, login and
quota modules, CLIProxyAPI's auth-url names, how an auth file holds its
token) is derived from that list, here. Modules here may import `formats/`;
`login/` (the machinery that runs logins and keeps tokens fresh against
the auth store) may also import `pool/`. `pool/` reaches providers only
through this module.

Adding a provider: a new `<provider>/` folder and one line in `PROVIDERS`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .antigravity.spec import PROVIDER as ANTIGRAVITY
from .base import (
    CLIENT_SECRET_HEADERS,
    CLIENT_SECRET_PARAMS,
    Call,
    Provider,
    UpstreamRequest,
    extra_headers,
)
from .claude.spec import PROVIDER as CLAUDE
from .codex.spec import PROVIDER as CODEX
from .gemini.spec import PROVIDER as GEMINI
from .github_copilot.spec import PROVIDER as GITHUB_COPILOT
from .iflow.spec import PROVIDER as IFLOW
from .kiro.spec import PROVIDER as KIRO
from .openai_compat.spec import PROVIDER as OPENAI_COMPAT
from .quotas import QuotaContext, QuotaReport, Window
from .qwen.spec import PROVIDER as QWEN
from .vertex.spec import PROVIDER as VERTEX

if TYPE_CHECKING:
    from ..pool.credentials import Credential

__all__ = [
    "CLIENT_SECRET_HEADERS",
    "CLIENT_SECRET_PARAMS",
    "DEFAULT_UPSTREAMS",
    "PROVIDERS",
    "Call",
    "Provider",
    "QuotaContext",
    "QuotaReport",
    "UpstreamRequest",
    "Window",
    "auth_file_provider",
    "auth_url_names",
    "canonical_provider",
    "catalog",
    "executor_for",
    "extra_headers",
    "family_of",
    "format_of",
    "login_module",
    "login_providers",
    "merge_upstreams",
    "quota_fetcher",
    "servable",
    "stream_only",
    "token_refused",
    "wrapped",
]

# The one list. Order matters where tables are searched in order (model families).
PROVIDERS: tuple[Provider, ...] = (
    CLAUDE, CODEX, GEMINI, VERTEX, GITHUB_COPILOT, QWEN, IFLOW, KIRO, OPENAI_COMPAT, ANTIGRAVITY,
)

BY_ID: dict[str, Provider] = {p.id: p for p in PROVIDERS}
# Every spelling of a provider (its id and aliases) -> its id.
_NAMES: dict[str, str] = {name: p.id for p in PROVIDERS for name in (p.id, *p.aliases)}
_EXECUTORS: dict[tuple[str, str], ModuleType] = {
    (p.id, kind): module for p in PROVIDERS for kind, module in p.calls.items()
}
# Model-name families: (pattern, owner), in list order.
FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), p.id) for p in PROVIDERS for pattern in p.families
)
GUEST_FAMILIES: dict[str, tuple[str, ...]] = {p.id: p.guest_families for p in PROVIDERS if p.guest_families}
CO_OWNERS: dict[tuple[str, str], tuple[str, ...]] = {
    (p.id, kind): families for p in PROVIDERS for kind, families in p.co_owns.items()
}
DEFAULT_UPSTREAMS: dict[str, dict[str, str]] = {p.id: dict(p.upstreams) for p in PROVIDERS if p.upstreams}


# --- names ----------------------------------------------------------------------------


def canonical_provider(name: str) -> str:
    """A provider's id from any of its spellings (unknown names come back lower-cased)."""
    name = (name or "").strip().lower()
    return _NAMES.get(name, name)


def auth_file_provider(file_type: str) -> Provider | None:
    """The provider an auth file's `type` names, if its accounts live in auth files."""
    provider = BY_ID.get(canonical_provider(file_type))
    return provider if provider is not None and provider.auth_files else None


def auth_url_names() -> tuple[str, ...]:
    return tuple(name for p in PROVIDERS for name in p.auth_url_names)


def catalog(provider: str) -> tuple[str, ...]:
    p = BY_ID.get(provider)
    return p.catalog if p is not None else ()


def family_of(model: str) -> str | None:
    lowered = model.lower()
    return next((owner for pattern, owner in FAMILIES if pattern.match(lowered)), None)


# --- calling ------------------------------------------------------------------------------


def executor_for(cred: Credential) -> ModuleType | None:
    return _EXECUTORS.get((cred.provider, cred.kind))


def servable(cred: Credential) -> bool:
    return executor_for(cred) is not None and not cred.disabled and not cred.needs_login


def format_of(cred: Credential, model: str = "") -> str:
    """The API format the credential's upstream speaks (for `model`, on upstreams
    that host several vendors' models behind one credential, like Vertex)."""
    executor = executor_for(cred)
    if model and (per_model := getattr(executor, "format_for", None)):
        return per_model(model)
    return executor.FORMAT


def stream_only(cred: Credential) -> bool:
    return getattr(executor_for(cred), "STREAM_ONLY", False)


def token_refused(cred: Credential, status: int, body: bytes) -> bool:
    """Whether an upstream answer means the credential's token was refused.

    A 401 everywhere; an executor's `token_refused(status, body)` names other
    answers that mean the same (Kiro's 403 for an expired token).
    """
    check = getattr(executor_for(cred), "token_refused", None)
    return status == 401 or (check is not None and check(status, body))


def wrapped(cred: Credential) -> bool:
    """Whether the upstream wraps the format's bodies (Code Assist), so always translates."""
    return getattr(executor_for(cred), "WRAPPED", False)


# --- logging in, quotas ----------------------------------------------------------------------


def login_providers() -> list[str]:
    return [p.id for p in PROVIDERS if p.login is not None]


def login_module(provider: str) -> ModuleType | None:
    p = BY_ID.get(canonical_provider(provider))
    return p.login if p is not None else None


def quota_fetcher(provider: str) -> ModuleType | None:
    p = BY_ID.get(provider)
    return p.quota if p is not None else None


# --- upstream URLs ----------------------------------------------------------------------------


def merge_upstreams(overrides: Mapping[str, Mapping[str, str]] | None) -> dict[str, dict[str, str]]:
    """Every provider's URLs with the configured `upstreams:` overrides laid over them.

    Raises ValueError naming the unknown provider or URL name, so a typo in
    the config cannot silently leave a real upstream in place during tests.
    A default may name a sibling URL (`{base-url}/…`, `..` allowed), so moving
    an API base moves the endpoints that live on it.
    """
    merged = {p: dict(urls) for p, urls in DEFAULT_UPSTREAMS.items()}
    for provider, urls in (overrides or {}).items():
        if provider not in merged:
            raise ValueError(f"upstreams.{provider}: unknown provider (expected one of {', '.join(merged)})")
        for name, url in urls.items():
            if name not in merged[provider]:
                known = ", ".join(sorted(merged[provider]))
                raise ValueError(f"upstreams.{provider}.{name}: unknown URL name (expected one of {known})")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"upstreams.{provider}.{name}: expected an http(s) URL, got {url!r}")
            merged[provider][name] = url.rstrip("/")
    for urls in merged.values():
        for name, url in urls.items():
            urls[name] = _resolve(url, urls)
    return merged


_REF = re.compile(r"\{([a-z-]+)\}")


def _resolve(url: str, urls: Mapping[str, Any], depth: int = 0) -> str:
    """`url` with `{name}` references to its siblings filled in and `..` folded."""
    if "{" not in url or depth > 4:
        return url
    filled = _REF.sub(lambda m: _resolve(urls.get(m[1], m[0]), urls, depth + 1), url)
    parts = urlsplit(filled)
    path = posixpath.normpath(parts.path) if ".." in parts.path else parts.path
    return urlunsplit(parts._replace(path=path))
