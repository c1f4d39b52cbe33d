"""A job document carries no ``timestamp``: its replay is bounded by the signed times it carries.

``created_at`` (or a later ``completed_at``) must lie inside the verifier's
document window, 7 days back by default; the longest span the verifier
accepts anything for is ``Verifier.max_span``, the least a replay store must
remember a processed delivery.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import ConfigurationError, CrawlJobDocument, JobDocument, ReplayWindow, Verifier, WebhookError
from kreuzberg_webhooks.protocol.verify import DEFAULT_DOCUMENT_WINDOW
from kreuzberg_webhooks.testing import (
    OMIT,
    crawl_job_document_payload,
    job_document_payload,
    job_event_payload,
    signed_delivery,
    webhook_event_payload,
)

SECRET = "document-window-secret-0123456789abcdef01"
NOW = 1_800_000_000.0
HOUR = 3600.0
DAY = 24 * HOUR


def rfc3339(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def verify(payload: dict[str, Any], **options: Any) -> Any:
    body, headers = signed_delivery(SECRET, payload)
    return Verifier(SECRET, clock=lambda: NOW, **options).verify(body, headers)


def rejection(payload: dict[str, Any], **options: Any) -> WebhookError:
    with pytest.raises(WebhookError) as caught:
        verify(payload, **options)
    return caught.value


BUILDERS = [pytest.param(job_document_payload, id="job"), pytest.param(crawl_job_document_payload, id="crawl")]


@pytest.mark.parametrize("build", BUILDERS)
def test_a_captured_document_replayed_after_the_window_is_400_stale(build: Any) -> None:
    # Before: accepted once a day, forever, whenever its dedupe entry had expired.
    error = rejection(build(created_at=rfc3339(NOW - 8 * DAY)))
    assert (error.status_code, error.reason) == (400, "stale_timestamp")


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("age", [0, 5 * 60 + 35, 6 * HOUR, 3 * DAY, 7 * DAY])
def test_a_document_within_the_window_is_accepted(build: Any, age: float) -> None:
    # Long OCR jobs plus hours of sender retries: 7 days, edges inclusive.
    assert isinstance(verify(build(created_at=rfc3339(NOW - age))), (JobDocument, CrawlJobDocument))


def test_a_later_completion_time_is_what_bounds_a_long_job() -> None:
    payload = job_document_payload(created_at=rfc3339(NOW - 10 * DAY), completed_at=rfc3339(NOW - HOUR))
    event = verify(payload)
    assert isinstance(event, JobDocument)
    assert event.signed_time == datetime.fromtimestamp(NOW - HOUR, UTC)
    stale = job_document_payload(created_at=rfc3339(NOW - 10 * DAY), completed_at=rfc3339(NOW - 8 * DAY))
    assert rejection(stale).reason == "stale_timestamp"


def test_a_document_created_in_the_future_beyond_the_skew_is_400() -> None:
    assert isinstance(verify(job_document_payload(created_at=rfc3339(NOW + 5 * 60))), JobDocument)
    assert rejection(job_document_payload(created_at=rfc3339(NOW + 6 * 60))).reason == "future_timestamp"


@pytest.mark.parametrize(
    "created_at",
    [pytest.param(OMIT, id="missing"), pytest.param("yesterday", id="not-iso"), pytest.param(None, id="null")],
)
def test_a_document_without_a_parseable_created_at_is_accepted_and_logged(
    created_at: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Every vendor schema requires created_at: a document without one is a sender
    # change, never a forgery; a 400 would lose it for good (docs/contract.md §4).
    with caplog.at_level(logging.WARNING, logger="kreuzberg_webhooks"):
        event = verify(job_document_payload(created_at=created_at))
    assert isinstance(event, JobDocument)
    assert event.signed_time is None
    assert "carries no created_at" in caplog.text


def test_the_document_window_is_configurable_and_must_be_a_window() -> None:
    short = ReplayWindow(max_age=HOUR, max_future=60)
    assert rejection(job_document_payload(created_at=rfc3339(NOW - 2 * HOUR)), document_window=short).reason == (
        "stale_timestamp"
    )
    with pytest.raises(ConfigurationError):
        Verifier(SECRET, document_window=7 * DAY)
    with pytest.raises(ConfigurationError):
        ReplayWindow(max_age=float("inf"))


def test_max_span_is_the_longest_span_the_verifier_enforces() -> None:
    verifier = Verifier(SECRET)
    assert verifier.document_window == DEFAULT_DOCUMENT_WINDOW
    assert verifier.max_span == 7 * DAY + 5 * 60 == DEFAULT_DOCUMENT_WINDOW.span
    small = Verifier(SECRET, document_window=ReplayWindow(max_age=HOUR, max_future=0))
    assert small.max_span == small.window.span == DAY + 5 * 60


def test_span_for_is_the_span_of_the_events_kind() -> None:
    # A store may keep a small event's entry for its window only, a document's for 7 days.
    verifier = Verifier(SECRET, clock=lambda: NOW)
    document = verify(job_document_payload(created_at=rfc3339(NOW)))
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    assert verifier.span_for(document) == DEFAULT_DOCUMENT_WINDOW.span == verifier.max_span
    assert verifier.span_for(verifier.verify(body, headers)) == verifier.window.span == DAY + 300
    inline, inline_headers = signed_delivery(SECRET, webhook_event_payload(now=NOW), scheme="sha256")
    assert verifier.span_for(verifier.verify(inline, inline_headers)) == DAY + 300


@settings(max_examples=200, deadline=None)
@given(
    created=st.floats(min_value=-30 * DAY, max_value=DAY, allow_nan=False),
    completed=st.none() | st.floats(min_value=-30 * DAY, max_value=DAY, allow_nan=False),
    max_age=st.floats(min_value=1, max_value=30 * DAY),
    max_future=st.floats(min_value=0, max_value=HOUR),
)
def test_an_accepted_document_is_never_older_than_max_span(
    created: float, completed: float | None, max_age: float, max_future: float
) -> None:
    # The invariant of docs/contract.md §4: a store that remembers max_span
    # either still remembers a replay, or the verifier refuses it.
    payload = job_document_payload(created_at=rfc3339(NOW + created))
    if completed is not None:
        payload["completed_at"] = rfc3339(NOW + completed)
    window = ReplayWindow(max_age=max_age, max_future=max_future)
    try:
        event = verify(payload, document_window=window)
    except WebhookError as error:
        reason = error.reason
    else:
        reason = "accepted"
    assert reason in ("accepted", "stale_timestamp", "future_timestamp")
    if reason != "accepted":
        return
    assert event.signed_time is not None
    age = NOW - event.signed_time.timestamp()
    assert -max_future <= age <= max_age <= Verifier(SECRET, document_window=window).max_span
