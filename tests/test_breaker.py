from __future__ import annotations

import pytest

from quotio_core.pool.breaker import Breakers, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def tripped(clock: Clock, threshold: int = 3, timeout: float = 30.0) -> CircuitBreaker:
    b = CircuitBreaker(failure_threshold=threshold, reset_timeout=timeout, clock=clock)
    for _ in range(threshold):
        b.failure()
    return b


def test_opens_after_threshold_consecutive_failures() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, reset_timeout=30, clock=clock)
    b.failure()
    b.failure()
    assert b.state == "closed" and b.allow()
    b.failure()
    assert b.state == "open"
    assert not b.allow()


def test_success_resets_the_consecutive_count() -> None:
    b = CircuitBreaker(failure_threshold=3, clock=Clock())
    b.failure()
    b.failure()
    b.success()
    b.failure()
    b.failure()
    assert b.state == "closed" and b.failures == 2


def test_half_open_admits_exactly_one_probe() -> None:
    clock = Clock()
    b = tripped(clock)
    clock.t += 29.9
    assert b.state == "open" and not b.allow()
    clock.t += 0.1
    assert b.state == "half_open"
    assert b.allow() is True
    assert [b.allow() for _ in range(5)] == [False] * 5


def test_probe_success_closes() -> None:
    clock = Clock()
    b = tripped(clock)
    clock.t += 30
    assert b.allow()
    b.success()
    assert b.state == "closed" and b.failures == 0
    assert all(b.allow() for _ in range(3))


def test_probe_failure_reopens_with_fresh_timeout() -> None:
    clock = Clock()
    b = tripped(clock)
    clock.t += 45
    assert b.allow()
    b.failure()
    assert b.state == "open"
    assert b.snapshot()["opened_at"] == clock.t
    clock.t += 29
    assert not b.allow()
    clock.t += 1
    assert b.allow() and not b.allow()


def test_late_failure_while_open_does_not_extend() -> None:
    clock = Clock()
    b = tripped(clock)
    opened = b.snapshot()["opened_at"]
    clock.t += 20
    b.failure()
    assert b.snapshot()["opened_at"] == opened
    clock.t += 10
    assert b.allow()


def test_lost_probe_does_not_wedge_forever() -> None:
    clock = Clock()
    b = tripped(clock)
    clock.t += 30
    assert b.allow()  # probe admitted; its result never arrives
    clock.t += 29
    assert not b.allow()
    clock.t += 1
    assert b.allow()


def test_snapshot() -> None:
    clock = Clock()
    b = CircuitBreaker(failure_threshold=2, reset_timeout=30, clock=clock)
    assert b.snapshot() == {"state": "closed", "failures": 0, "opened_at": None, "remaining": 0.0}
    b.failure()
    b.failure()
    clock.t += 12
    assert b.snapshot() == {"state": "open", "failures": 2, "opened_at": 1000.0, "remaining": 18.0}
    clock.t += 18
    assert b.snapshot()["state"] == "half_open" and b.snapshot()["remaining"] == 0.0


def test_invalid_threshold() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)


def test_breakers_per_key() -> None:
    clock = Clock()
    bs = Breakers(failure_threshold=2, reset_timeout=10, clock=clock)
    assert "a" not in bs and len(bs) == 0
    bs.failure("a")
    bs.failure("a")
    assert not bs.allow("a")
    assert bs.allow("b")
    assert bs.get("a") is bs["a"]
    snap = bs.snapshot()
    assert list(snap) == ["a", "b"]
    assert snap["a"]["state"] == "open" and snap["b"]["state"] == "closed"
    clock.t += 10
    assert bs.allow("a") and not bs.allow("a")
    bs.success("a")
    assert bs.snapshot()["a"]["state"] == "closed"
