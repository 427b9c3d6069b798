"""Circuit breakers: stop sending to an upstream that keeps failing.

A breaker is closed (traffic flows), open (traffic refused) or half-open
(one probe request is let through to test the upstream). Unlike cooldowns,
which react to what an upstream *said*, a breaker reacts to a run of
failures whatever their cause, and recovers through a single probe so a dead
upstream is not hit by a burst the moment the timeout passes.

Single-threaded by design: the gateway uses it from its event loop only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

__all__ = ["Breakers", "CircuitBreaker", "State"]

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._open = False
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_at: float | None = None  # when the half-open probe was admitted

    @property
    def state(self) -> State:
        if not self._open:
            return "closed"
        if self._clock() - (self._opened_at or 0.0) >= self.reset_timeout:
            return "half_open"
        return "open"

    @property
    def failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a request go through now? In half-open, True exactly once per probe."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        # A probe whose result never came back (cancelled request) must not
        # wedge the breaker forever: after another timeout, admit a new one.
        if self._probe_at is not None and now - self._probe_at < self.reset_timeout:
            return False
        self._probe_at = now
        return True

    def success(self) -> None:
        """Any success proves the upstream works: close and forget the failures."""
        self._open = False
        self._failures = 0
        self._opened_at = None
        self._probe_at = None

    def failure(self) -> None:
        state = self.state
        if state == "half_open":
            self._trip()  # the probe failed: a fresh full timeout
            return
        if state == "open":
            # A request admitted before the breaker opened failed late; it
            # says nothing new and must not extend the timeout.
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._trip()

    # Common spellings elsewhere; same behaviour.
    record_success = success
    record_failure = failure

    def snapshot(self) -> dict[str, Any]:
        state = self.state
        remaining = 0.0
        if state == "open" and self._opened_at is not None:
            remaining = max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        return {
            "state": state,
            "failures": self._failures,
            "opened_at": self._opened_at,
            "remaining": round(remaining, 3),
        }

    def _trip(self) -> None:
        self._open = True
        self._opened_at = self._clock()
        self._probe_at = None


class Breakers:
    """One breaker per key (credential id, upstream host…), created on demand."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(self.failure_threshold, self.reset_timeout, self._clock)
            self._breakers[key] = breaker
        return breaker

    __getitem__ = get

    def allow(self, key: str) -> bool:
        return self.get(key).allow()

    def success(self, key: str) -> None:
        self.get(key).success()

    def failure(self, key: str) -> None:
        self.get(key).failure()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {key: b.snapshot() for key, b in sorted(self._breakers.items())}

    def __contains__(self, key: object) -> bool:
        return key in self._breakers

    def __len__(self) -> int:
        return len(self._breakers)

    def __iter__(self) -> Iterator[str]:
        return iter(self._breakers)
