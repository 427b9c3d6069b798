"""Refusing an address that keeps guessing the management key."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["KeyLockout"]


class KeyLockout:
    """CLIProxyAPI's rule: 5 wrong management keys from one address lock it out for 30 minutes.

    Single-threaded (the event loop); bounded by forgetting an address once
    its lock has run out or it got the key right.
    """

    def __init__(self, attempts: int = 5, seconds: float = 1800.0, clock: Callable[[], float] = time.time):
        self.attempts = attempts
        self.seconds = seconds
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._until: dict[str, float] = {}

    def remaining(self, address: str) -> float:
        until = self._until.get(address)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._until[address]
            return 0.0
        return left

    def failure(self, address: str) -> None:
        count = self._failures.get(address, 0) + 1
        if count >= self.attempts:
            self._until[address] = self._clock() + self.seconds
            count = 0
        self._failures[address] = count

    def success(self, address: str) -> None:
        self._failures.pop(address, None)

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"address": a, "locked_seconds": round(self.remaining(a))}
            for a in list(self._until) if self.remaining(a) > 0
        ]
