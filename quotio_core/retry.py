"""What an attempt's status means for retrying, written once.

Pure: the failover addon, the cooldown rules and the breakers all ask here.
Status 0 stands for "no answer at all" (refused, reset, timed out).
"""

from __future__ import annotations

import tenacity

__all__ = ["TRANSIENT", "RETRYABLE", "backoff", "retryable", "strikes_breaker", "transient"]

# The upstream failed in a way that says nothing about the account: a short cooldown.
TRANSIENT = frozenset({0, 408, 500, 502, 503, 504, 529})
# Another credential may do better: the transient failures plus a rate limit.
RETRYABLE = TRANSIENT | {429}


def transient(status: int) -> bool:
    return status in TRANSIENT


def retryable(status: int) -> bool:
    return status in RETRYABLE


def strikes_breaker(status: int) -> bool:
    """Whether this status counts against the credential's and its host's breaker.

    A 429 or 4xx is the account's own business; only a host that does not
    answer, times out or fails on its side makes everything behind it suspect.
    """
    return status == 0 or status == 408 or status >= 500


def backoff(max_seconds: float) -> tenacity.wait.wait_base:
    """The wait between the gateway's own failover attempts: short, jittered, capped."""
    return tenacity.wait_exponential_jitter(initial=0.05, max=max(max_seconds, 0.05), jitter=0.05)
