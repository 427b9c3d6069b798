"""The one place that says which statuses are transient, retryable and count against a breaker."""

import pytest
import tenacity

from quotio_core import retry


@pytest.mark.parametrize(
    ("status", "transient", "retryable", "strikes"),
    [
        (0, True, True, True),  # no answer at all
        (200, False, False, False),
        (400, False, False, False),
        (401, False, False, False),
        (404, False, False, False),
        (408, True, True, True),
        (429, False, True, False),  # the account's own limit: retry elsewhere, host is fine
        (500, True, True, True),
        (501, False, False, True),
        (502, True, True, True),
        (503, True, True, True),
        (504, True, True, True),
        (529, True, True, True),
    ],
)
def test_every_status_has_one_meaning(status, transient, retryable, strikes):
    assert retry.transient(status) is transient
    assert retry.retryable(status) is retryable
    assert retry.strikes_breaker(status) is strikes


@pytest.mark.parametrize("cap", [0.0, 0.2, 5.0])
def test_backoff_stays_under_its_cap_plus_jitter(cap):
    wait = retry.backoff(cap)
    for n in range(1, 12):
        state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
        state.attempt_number = n
        assert 0 < wait(state) <= max(cap, 0.05) + 0.05
