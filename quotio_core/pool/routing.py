"""Model name -> which credentials can serve it, and under which upstream name.

Order of rules: configured model lists and aliases first, then a
``prefix/model`` or ``provider/model`` head (a provider head takes any name),
then the model-name family (its own provider's credentials and co-owners
such as Vertex), then the catalogs and the guest families of providers that
host other vendors' models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import providers
from .credentials import Credential

__all__ = ["ModelNotFound", "ModelRouter", "Route", "family_of"]

# The model-name families, the guest families of providers that also host
# other vendors' models (a second choice: a Copilot account never takes
# "gpt-5" from a Codex one) and the co-owners of families (a Vertex service
# account shares the Gemini and Claude pools) are each provider's spec's
# (providers/<provider>/spec.py).


def _co_owner(cred: Credential) -> bool:
    return (cred.provider, cred.kind) in providers.CO_OWNERS


def serves_family(cred: Credential, family: str | None) -> bool:
    """Whether `cred` owns `family`'s names: its provider's own, or co-owned."""
    return family is not None and (
        cred.provider == family or family in providers.CO_OWNERS.get((cred.provider, cred.kind), ())
    )


def family_of(model: str) -> str | None:
    return providers.family_of(model)


class ModelNotFound(LookupError):
    def __init__(self, model: str, reason: str = ""):
        super().__init__(reason or f"model {model!r} is not served by any configured credential")
        self.model = model


@dataclass(frozen=True)
class Route:
    requested: str
    # (credential, model name to send upstream), in no particular order.
    candidates: tuple[tuple[Credential, str], ...]

    @property
    def providers(self) -> set[str]:
        return {c.provider for c, _ in self.candidates}


class ModelRouter:
    """Resolves model names against the current credentials.

    `servable` says whether a credential can take requests at all right now
    (its provider has an executor, it is not disabled, it has a secret).
    """

    def __init__(self, credentials: Iterable[Credential], servable: Callable[[Credential], bool]):
        self.credentials = [c for c in credentials if servable(c)]

    def _split_head(self, model: str) -> tuple[list[Credential], str, bool]:
        """(pool, name, whether the head named the provider) for a requested model."""
        # Prefixed credentials only serve requests that carry their prefix.
        unprefixed = [c for c in self.credentials if not c.prefix]
        if "/" not in model:
            return unprefixed, model, False
        head, tail = model.split("/", 1)
        by_prefix = [c for c in self.credentials if c.prefix and c.prefix == head]
        if by_prefix:
            return by_prefix, tail, False
        by_provider = [c for c in unprefixed if head in (c.provider, c.compat_name) and head]
        if by_provider:
            return by_provider, tail, True
        return unprefixed, model, False

    def resolve(self, model: str) -> Route:
        if not model:
            raise ModelNotFound(model, "the request names no model")
        pool, name, named = self._split_head(model)
        explicit = [
            (c, upstream)
            for c in pool
            if (upstream := c.explicit_model(name)) is not None and not c.excludes(upstream)
        ]
        if explicit:
            return Route(model, tuple(explicit))
        # Config keys that list their models serve only those.
        open_pool = [c for c in pool if (not c.models or c.source == "file") and not c.excludes(name)]
        if named:
            # A co-owner under its provider head still takes only the families it runs.
            chosen = [c for c in open_pool if not _co_owner(c) or serves_family(c, family_of(name))]
        else:
            chosen = self._by_name(name, open_pool)
        if chosen:
            return Route(model, tuple((c, name) for c in chosen))
        raise ModelNotFound(model)

    @staticmethod
    def _by_name(name: str, pool: list[Credential]) -> list[Credential]:
        family = family_of(name)
        owners = [c for c in pool if serves_family(c, family)]
        # A name only another provider's catalog spells so (Copilot's
        # "claude-sonnet-4.5") goes there; one the family's own catalog lists stays.
        listed = [
            c
            for c in pool
            if c.provider != family and not _co_owner(c) and name in providers.catalog(c.provider)
        ]
        if owners and (not listed or name in providers.catalog(family)):
            return owners
        return listed or [c for c in pool if family in providers.GUEST_FAMILIES.get(c.provider, ())]

    def model_ids(self) -> list[tuple[str, str]]:
        """(model id, provider) pairs a client may ask for, aliases included."""
        seen: dict[str, str] = {}
        for c in self.credentials:
            names = [m.alias or m.name for m in c.models if not c.excludes(m.name)]
            if not c.models or c.source == "file":
                names += [
                    m
                    for m in providers.catalog(c.provider)
                    if not c.excludes(m) and (not _co_owner(c) or serves_family(c, family_of(m)))
                ]
            for name in names:
                seen.setdefault(f"{c.prefix}/{name}" if c.prefix else name, c.provider)
        # Two providers may list one name (Codex and Copilot "gpt-4o"): name the one serving it.
        for name, provider in seen.items():
            try:
                serving = self.resolve(name).providers
            except ModelNotFound:
                continue
            if provider not in serving:
                seen[name] = min(serving)
        return sorted(seen.items())
