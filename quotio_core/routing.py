"""Model name -> which credentials can serve it, and under which upstream name.

Order of rules: configured model lists and aliases first, then a
``prefix/model`` or ``provider/model`` head, then the model-name family.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .catalog import CATALOG
from .credentials import Credential

__all__ = ["FAMILIES", "ModelNotFound", "ModelRouter", "Route", "family_of"]

FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^claude"), "claude"),
    (re.compile(r"^(gpt-|chatgpt|codex|o\d)"), "codex"),
    (re.compile(r"^gemini"), "gemini"),
    (re.compile(r"^(qwen|qwq)"), "qwen"),
)


def family_of(model: str) -> str | None:
    lowered = model.lower()
    for pattern, provider in FAMILIES:
        if pattern.match(lowered):
            return provider
    return None


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

    def _split_head(self, model: str) -> tuple[list[Credential], str]:
        # Prefixed credentials only serve requests that carry their prefix.
        unprefixed = [c for c in self.credentials if not c.prefix]
        if "/" not in model:
            return unprefixed, model
        head, tail = model.split("/", 1)
        by_prefix = [c for c in self.credentials if c.prefix and c.prefix == head]
        if by_prefix:
            return by_prefix, tail
        by_provider = [c for c in unprefixed if head in (c.provider, c.compat_name) and head]
        if by_provider:
            return by_provider, tail
        return unprefixed, model

    def resolve(self, model: str) -> Route:
        if not model:
            raise ModelNotFound(model, "the request names no model")
        pool, name = self._split_head(model)
        explicit = [
            (c, upstream)
            for c in pool
            if (upstream := c.explicit_model(name)) is not None and not c.excludes(upstream)
        ]
        if explicit:
            return Route(model, tuple(explicit))
        family = family_of(name)
        by_family = [
            (c, name)
            for c in pool
            if family is not None
            and c.provider == family
            and (not c.models or c.source == "file")
            and not c.excludes(name)
        ]
        if by_family:
            return Route(model, tuple(by_family))
        raise ModelNotFound(model)

    def model_ids(self) -> list[tuple[str, str]]:
        """(model id, provider) pairs a client may ask for, aliases included."""
        seen: dict[str, str] = {}
        for c in self.credentials:
            names = [m.alias or m.name for m in c.models if not c.excludes(m.name)]
            if not c.models or c.source == "file":
                names += [m for m in CATALOG.get(c.provider, ()) if not c.excludes(m)]
            for name in names:
                seen.setdefault(f"{c.prefix}/{name}" if c.prefix else name, c.provider)
        return sorted(seen.items())
