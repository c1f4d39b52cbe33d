"""RetryPolicy: the backoff schedule, the dead-letter limits, and settings it refuses."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kreuzberg_webhooks import ConfigurationError
from kreuzberg_webhooks.inbox import RetryPolicy


def test_delays_double_from_the_first_delay_up_to_the_cap() -> None:
    policy = RetryPolicy(first_delay=10, max_delay=60, max_attempts=100, max_age=None)
    assert [policy.delay(n) for n in range(1, 7)] == [10, 20, 40, 60, 60, 60]


def test_a_huge_attempt_count_is_capped_without_overflow() -> None:
    assert RetryPolicy().delay(10_000) == 3600


def test_dead_after_max_attempts() -> None:
    policy = RetryPolicy(first_delay=1, max_delay=1, max_attempts=3, max_age=None)
    assert policy.next_attempt(2, received_at=0, now=100) == 101
    assert policy.next_attempt(3, received_at=0, now=100) is None


def test_dead_when_the_next_attempt_would_pass_max_age() -> None:
    policy = RetryPolicy(first_delay=10, max_delay=10, max_attempts=None, max_age=100)
    assert policy.next_attempt(1, received_at=0, now=90) == 100
    assert policy.next_attempt(1, received_at=0, now=91) is None


def test_the_default_policy_retries_for_hours() -> None:
    policy, now, attempts = RetryPolicy(), 0.0, 0
    while (retry_at := policy.next_attempt(attempts + 1, received_at=0, now=now)) is not None:
        attempts, now = attempts + 1, retry_at
    assert now > 12 * 3600
    assert attempts + 1 == policy.max_attempts


@pytest.mark.parametrize(
    "options",
    [
        {"first_delay": 0},
        {"first_delay": -1},
        {"first_delay": math.nan},
        {"first_delay": math.inf},
        {"max_delay": math.inf},
        {"first_delay": 100, "max_delay": 10},
        {"max_attempts": 0},
        {"max_attempts": 2.5},
        {"max_attempts": True},
        {"max_age": 0},
        {"max_age": math.inf},
        {"max_attempts": None, "max_age": None},
        {"factor": 0.5},
        {"factor": math.nan},
        {"first_delay": "10"},
    ],
    ids=lambda options: ",".join(f"{k}={v}" for k, v in options.items()),
)
def test_settings_that_cannot_work_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**options)  # type: ignore[arg-type]


@given(
    first=st.floats(0.001, 1e6),
    ratio=st.floats(1, 1e6),
    factor=st.floats(1, 100),
    attempts=st.integers(0, 10**6),
)
def test_every_delay_lies_between_the_first_delay_and_the_cap(
    first: float, ratio: float, factor: float, attempts: int
) -> None:
    policy = RetryPolicy(first_delay=first, max_delay=first * ratio, factor=factor)
    delay = policy.delay(attempts)
    assert first <= delay <= policy.max_delay
    assert delay <= policy.delay(attempts + 1)
