"""Which credential serves the next request: priority tiers, then a strategy.

Pure and single-threaded: the addon calls it from the event loop only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["STRATEGIES", "Selector"]

STRATEGIES = ("round-robin", "fill-first", "weighted-round-robin")


class _Candidate(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def priority(self) -> int: ...
    @property
    def weight(self) -> int: ...


C = TypeVar("C", bound=_Candidate)


class Selector:
    def __init__(self, strategy: str = "round-robin"):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown routing strategy {strategy!r}")
        self.strategy = strategy
        self._cursor: dict[str, int] = {}
        # Smooth weighted round-robin keeps a running score per candidate.
        self._score: dict[str, dict[str, int]] = {}

    def pick(self, key: str, candidates: Sequence[C]) -> C:
        """Choose among `candidates` (non-empty) for the cursor named `key`."""
        if not candidates:
            raise ValueError("no candidates")
        top = max(c.priority for c in candidates)
        tier = sorted((c for c in candidates if c.priority == top), key=lambda c: c.id)
        if self.strategy == "fill-first" or len(tier) == 1:
            return tier[0]
        if self.strategy == "weighted-round-robin":
            return self._weighted(key, tier)
        n = self._cursor.get(key, 0)
        self._cursor[key] = n + 1
        return tier[n % len(tier)]

    def _weighted(self, key: str, tier: list[C]) -> C:
        scores = self._score.setdefault(key, {})
        weights = {c.id: max(c.weight, 0) for c in tier}
        total = sum(weights.values())
        if total == 0:
            return tier[0]
        for c in tier:
            scores[c.id] = scores.get(c.id, 0) + weights[c.id]
        best = max(tier, key=lambda c: scores[c.id])
        scores[best.id] -= total
        return best
