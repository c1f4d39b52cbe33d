"""The replay window (``protocol/window.py``): its edges, stale and future timestamps, and the
defaults against the sender's retry schedule."""

from __future__ import annotations

import json

import pytest

from kreuzberg_webhooks import (
    ConfigurationError,
    FutureTimestamp,
    JobEvent,
    ReplayWindow,
    StaleTimestamp,
    Verifier,
    WebhookError,
)
from tests.protocol.support import (
    HOUR,
    NOW,
    SECRET,
    WINDOW,
    event_body,
    make_verifier,
    rejection,
    signed,
)

#: Seconds after the event at which the sender tries: the documented 5 s, 30 s, 5 min backoff
#: (cumulative), then the other document's "over several hours".
RETRY_SCHEDULE = [0, 5, 35, 335, 2 * HOUR, 6 * HOUR, 12 * HOUR, 23 * HOUR]


@pytest.mark.parametrize(
    ("max_age", "max_future"),
    [
        pytest.param(0, 60, id="zero-age"),
        pytest.param(-1, 60, id="negative-age"),
        pytest.param(60, -1, id="negative-future"),
        pytest.param(float("nan"), 60, id="nan-age"),
        pytest.param(60, float("nan"), id="nan-future"),
    ],
)
def test_invalid_windows_are_refused(max_age: float, max_future: float) -> None:
    with pytest.raises(ConfigurationError):
        ReplayWindow(max_age=max_age, max_future=max_future)


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        pytest.param(-600, None, id="exactly-max-age-old"),
        pytest.param(-600.5, "stale_timestamp", id="max-age-plus-half-a-second"),
        pytest.param(-601, "stale_timestamp", id="max-age-plus-one"),
        pytest.param(0, None, id="now"),
        pytest.param(60, None, id="exactly-max-future-ahead"),
        pytest.param(61, "future_timestamp", id="max-future-plus-one"),
        pytest.param(60.5, "future_timestamp", id="max-future-plus-half-a-second"),
    ],
)
def test_the_window_edges(offset: float, reason: str | None) -> None:
    verifier = make_verifier(window=WINDOW)
    body = event_body(timestamp=NOW + offset)
    if reason is None:
        assert isinstance(verifier.verify(body, signed(body)), JobEvent)
    else:
        error = rejection(verifier, body, signed(body))
        assert (error.status_code, error.reason) == (400, reason)


def test_stale_and_future_are_both_timestamp_errors() -> None:
    assert issubclass(StaleTimestamp, WebhookError)
    verifier = make_verifier(window=WINDOW)
    for offset, kind in ((-601, StaleTimestamp), (61, FutureTimestamp)):
        body = event_body(timestamp=NOW + offset)
        error = rejection(verifier, body, signed(body))
        assert isinstance(error, kind)
        assert error.event_id == json.loads(body)["event_id"]


def test_now_can_be_passed_per_call() -> None:
    verifier = make_verifier(window=WINDOW, clock=lambda: 0.0)
    body = event_body(timestamp=NOW)
    assert isinstance(verifier.verify(body, signed(body), now=NOW + 600), JobEvent)
    with pytest.raises(StaleTimestamp):
        verifier.verify(body, signed(body), now=NOW + 601)


@pytest.mark.parametrize("delay", RETRY_SCHEDULE, ids=[f"{int(d)}s" for d in RETRY_SCHEDULE])
def test_the_default_window_accepts_every_attempt_of_the_retry_schedule(delay: float) -> None:
    verifier = Verifier(SECRET, clock=lambda: NOW + delay)
    body = event_body(timestamp=int(NOW), attempt_count=1 + RETRY_SCHEDULE.index(delay))
    assert isinstance(verifier.verify(body, signed(body)), JobEvent)


@pytest.mark.parametrize("skew", [-300, -1, 1, 300], ids=["sender-behind-5min", "-1s", "+1s", "sender-ahead-5min"])
def test_the_default_window_allows_clock_skew(skew: int) -> None:
    verifier = Verifier(SECRET, clock=lambda: NOW)
    body = event_body(timestamp=int(NOW) + skew)
    assert isinstance(verifier.verify(body, signed(body)), JobEvent)


def test_the_default_window_refuses_a_capture_older_than_a_day() -> None:
    body = event_body(timestamp=int(NOW - 24 * HOUR - 1))
    assert rejection(Verifier(SECRET, clock=lambda: NOW), body, signed(body)).reason == "stale_timestamp"
