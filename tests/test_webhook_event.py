"""The third shape, ``WebhookEvent``: parsing, its leniency, and how parse_event tells the shapes apart."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import (
    CrawlJobDocument,
    CrawlWebhookEvent,
    EventType,
    InvalidField,
    JobDocument,
    JobEvent,
    JobFailure,
    JobStatus,
    MemoryStore,
    MissingField,
    Receiver,
    Verifier,
    WebhookEvent,
    parse_event,
)
from kreuzberg_webhooks.testing import (
    OMIT,
    FrozenClock,
    crawl_job_document_payload,
    job_document_payload,
    job_event_payload,
    signed_delivery,
    webhook_event_payload,
)

SECRET = "webhook-event-test-secret-0123456789abcdef"
NOW = 1_800_000_000
JOB = "550e8400-e29b-41d4-a716-446655440000"


def payload(**overrides: Any) -> dict[str, Any]:
    return webhook_event_payload(now=NOW, **{"job_id": JOB, **overrides})


def test_a_completed_event_with_inline_results() -> None:
    data = payload(event_id="evt_01", metadata={"batch": "2026-09"})
    event = parse_event(data)
    assert isinstance(event, WebhookEvent)
    assert event.type is EventType.JOB_COMPLETED
    assert event.status is JobStatus.COMPLETED
    assert (event.event_id, event.job_id) == ("evt_01", JOB)
    assert event.timestamp == datetime.fromtimestamp(NOW, UTC)
    assert event.metadata == {"batch": "2026-09"}
    assert event.results == data["results"]
    assert event.has_inline_results
    assert not event.must_fetch_results
    assert event.error is None
    assert event.raw is data


def test_a_completed_event_without_results_must_be_fetched() -> None:
    event = parse_event(payload(inline_results=False))
    assert isinstance(event, WebhookEvent)
    assert (event.results, event.has_inline_results, event.must_fetch_results) == (None, False, True)


def test_empty_inline_results_are_still_inline() -> None:
    event = parse_event(payload(results=[]))
    assert isinstance(event, WebhookEvent)
    assert (event.has_inline_results, event.must_fetch_results) == (True, False)


def test_a_failed_event_carries_its_error() -> None:
    event = parse_event(payload(event="job.failed"))
    assert isinstance(event, WebhookEvent)
    assert event.type is EventType.JOB_FAILED
    assert event.status is JobStatus.FAILED
    assert event.error == JobFailure(code="2001", message="extraction failed: OCR timeout")
    assert not event.must_fetch_results  # nothing to fetch for a failed job


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param({"code": "2001", "message": "OCR"}, JobFailure("2001", "OCR"), id="as-documented"),
        pytest.param({"code": 2001, "message": "OCR"}, JobFailure("2001", "OCR"), id="numeric-code"),
        pytest.param({"message": "OCR"}, JobFailure(None, "OCR"), id="no-code"),
        pytest.param({"code": ["x"], "message": 5}, JobFailure(None, None), id="odd-types"),
        pytest.param("OCR timeout", JobFailure(None, "OCR timeout"), id="a-plain-string"),
        pytest.param(None, None, id="null"),
        pytest.param(42, None, id="a-number"),
    ],
)
def test_error_is_read_leniently(error: Any, expected: JobFailure | None) -> None:
    event = parse_event(payload(event="job.failed", error=error))
    assert isinstance(event, WebhookEvent)
    assert event.error == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2027-01-15T08:00:00Z", datetime(2027, 1, 15, 8, tzinfo=UTC), id="rfc3339-z"),
        pytest.param("2027-01-15T09:30:00+01:30", datetime(2027, 1, 15, 8, tzinfo=UTC), id="rfc3339-offset"),
        pytest.param("2027-01-15T08:00:00.250Z", datetime(2027, 1, 15, 8, 0, 0, 250_000, tzinfo=UTC), id="fraction"),
        pytest.param("2027-01-15T08:00:00", datetime(2027, 1, 15, 8, tzinfo=UTC), id="no-offset-is-utc"),
        pytest.param(NOW, datetime.fromtimestamp(NOW, UTC), id="unix-seconds"),
        pytest.param(NOW + 0.5, datetime.fromtimestamp(NOW + 0.5, UTC), id="unix-seconds-float"),
    ],
)
def test_timestamp_is_rfc3339_or_unix_seconds_and_always_utc(value: Any, expected: datetime) -> None:
    event = parse_event(payload(timestamp=value))
    assert isinstance(event, WebhookEvent)
    assert event.timestamp == expected
    assert event.timestamp.utcoffset() == timedelta(0)


@given(st.datetimes(timezones=st.just(UTC)) | st.datetimes(timezones=st.just(timezone(timedelta(hours=-7)))))
@settings(max_examples=200, deadline=None)
def test_any_rfc3339_time_round_trips(moment: datetime) -> None:
    event = parse_event(payload(timestamp=moment.isoformat()))
    assert isinstance(event, WebhookEvent)
    assert event.timestamp == moment


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        pytest.param({"job_id": OMIT}, MissingField, "job_id", id="no-job-id"),
        pytest.param({"timestamp": OMIT}, MissingField, "timestamp", id="no-timestamp"),
        pytest.param({"job_id": ""}, InvalidField, "job_id", id="job-id-empty"),
        pytest.param({"job_id": 42}, InvalidField, "job_id", id="job-id-a-number"),
        pytest.param({"timestamp": "yesterday"}, InvalidField, "timestamp", id="timestamp-not-a-time"),
        pytest.param({"timestamp": "2027-13-45T00:00:00Z"}, InvalidField, "timestamp", id="impossible-date"),
        pytest.param({"timestamp": "2" * 100}, InvalidField, "timestamp", id="absurdly-long-time"),
        pytest.param({"timestamp": True}, InvalidField, "timestamp", id="timestamp-a-bool"),
        pytest.param({"timestamp": 10**400}, InvalidField, "timestamp", id="timestamp-out-of-range"),
        pytest.param({"timestamp": "9999-12-31T23:59:59-23:00"}, InvalidField, "timestamp", id="past-year-9999"),
        pytest.param({"event_id": ""}, InvalidField, "event_id", id="empty-event-id"),
        pytest.param({"event_id": 7}, InvalidField, "event_id", id="numeric-event-id"),
        pytest.param({"event": "job.\n"}, InvalidField, "event", id="event-with-newline"),
    ],
)
def test_identifying_fields_are_strict(overrides: dict[str, Any], error: type[Exception], field: str) -> None:
    # Without an event id nothing else identifies the event (with one, it is kept: test_event_families).
    with pytest.raises(error, match=field):
        parse_event(payload(**{"event_id": OMIT, **overrides}))


def test_a_crawl_event_naming_its_crawl_job_id_the_older_way_is_still_a_crawl() -> None:
    # Forward compatibility: the crawl family read from a body that names its id "job_id".
    event = parse_event({"event": "crawl.completed", "job_id": JOB, "timestamp": NOW})
    assert isinstance(event, CrawlWebhookEvent)
    assert (event.type, event.status, event.event_id, event.job_id) == ("crawl.completed", "completed", None, JOB)


def test_a_non_string_event_is_invalid() -> None:
    with pytest.raises(InvalidField, match="event"):
        parse_event({"event": 42, "job_id": JOB, "timestamp": NOW})


def test_unknown_type_and_fields_are_kept() -> None:
    data = payload(event="job.archived", region="eu-2", attempt=3)
    event = parse_event(data)
    assert isinstance(event, WebhookEvent)
    assert (event.type, event.status) == ("job.archived", "archived")
    assert (event.raw["region"], event.raw["attempt"]) == ("eu-2", 3)


def test_odd_optional_fields_fall_back_to_empty() -> None:
    event = parse_event(payload(metadata=["not", "a", "map"], results="x"))
    assert isinstance(event, WebhookEvent)
    assert event.metadata == {}
    assert event.results is None  # neither an object nor a list: left in raw, and the handler is told to fetch
    assert event.must_fetch_results
    assert event.raw["results"] == "x"


def test_event_id_is_optional_as_in_the_vendor_schema() -> None:
    event = parse_event(payload(event_id=OMIT))
    assert isinstance(event, WebhookEvent)
    assert event.event_id is None
    assert event.dedup_key == f"|{JOB}|job.completed"  # keyed on the job and type, like every shape


def test_every_shape_has_job_id_and_type() -> None:
    shapes = [
        parse_event(job_event_payload(job_id=JOB)),
        parse_event(job_document_payload(id=JOB)),
        parse_event(crawl_job_document_payload(id=JOB)),
        parse_event(payload()),
    ]
    assert [type(event) for event in shapes] == [JobEvent, JobDocument, CrawlJobDocument, WebhookEvent]
    assert {event.job_id for event in shapes} == {JOB}
    assert {event.type for event in shapes} == {"job.completed", "crawl.completed"}


def test_the_event_is_frozen_slotted_and_compares_by_identity_fields() -> None:
    event = parse_event(payload(event_id="evt_1"))
    assert isinstance(event, WebhookEvent)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.event_id = "other"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    again = parse_event(payload(event_id="evt_1", metadata={"other": "metadata"}))
    assert again == event
    assert event.dedup_key == f"|{JOB}|job.completed"  # the event id is not the key: the job and type are
    assert "evt_1" in repr(event)


# -- telling the shapes apart ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "shape"),
    [
        pytest.param(webhook_event_payload(), WebhookEvent, id="webhook-event"),
        pytest.param(job_event_payload(), JobEvent, id="job-event"),
        pytest.param(job_document_payload(), JobDocument, id="job-document"),
        pytest.param(crawl_job_document_payload(), CrawlJobDocument, id="crawl-document"),
        pytest.param({**webhook_event_payload(), "project_id": JOB, "status": "x"}, WebhookEvent, id="event-wins"),
        pytest.param({**job_event_payload(), "event": "created"}, JobEvent, id="non-job-event-key-on-a-job-event"),
        pytest.param({**job_document_payload(), "event_id": "e1"}, JobDocument, id="document-with-an-event-id"),
    ],
)
def test_parse_event_tells_the_shapes_apart(data: dict[str, Any], shape: type) -> None:
    assert type(parse_event(data)) is shape


def test_a_small_event_without_project_id_is_reported_as_one() -> None:
    # event_id and status make it the small event, so the missing field named is its project_id.
    with pytest.raises(MissingField, match="project_id"):
        parse_event(job_event_payload(project_id=OMIT))


def test_a_body_resembling_no_shape_is_missing_a_field() -> None:
    with pytest.raises(MissingField, match="none of 'event', 'event_id' and 'id'"):
        parse_event({"job_id": JOB, "timestamp": NOW})


# -- through the verifier and the receiver ---------------------------------------------------


def test_the_body_timestamp_is_checked_against_the_replay_window() -> None:
    verifier = Verifier(SECRET, clock=lambda: NOW)
    body, headers = signed_delivery(SECRET, webhook_event_payload(now=NOW - 3 * 86_400), signed_at=NOW)
    with pytest.raises(Exception, match="too old") as caught:
        verifier.verify(body, headers)
    assert caught.value.reason == "stale_timestamp"  # type: ignore[attr-defined]
    body, headers = signed_delivery(SECRET, webhook_event_payload(now=NOW + 3600), signed_at=NOW)
    with pytest.raises(Exception, match="future") as caught:
        verifier.verify(body, headers)
    assert caught.value.event_id is not None  # type: ignore[attr-defined]


def test_signed_the_dashboard_way_it_is_accepted_too() -> None:
    verifier = Verifier(SECRET, clock=lambda: NOW)
    body, headers = signed_delivery(SECRET, webhook_event_payload(now=NOW), scheme="sha256")
    assert headers["X-Webhook-Signature"].startswith("sha256=")
    assert isinstance(verifier.verify(body, headers), WebhookEvent)


def test_the_receiver_handles_it_once() -> None:
    clock = FrozenClock(NOW)
    receiver = Receiver(SECRET, store=MemoryStore(clock=clock), clock=clock)
    seen: list[WebhookEvent] = []
    receiver.on("job.completed")(seen.append)
    data = webhook_event_payload(now=NOW)
    first = receiver.handle(*signed_delivery(SECRET, data, signed_at=NOW))
    clock.advance(30)  # the sender's retry: re-signed with a fresh t
    again = receiver.handle(*signed_delivery(SECRET, data, signed_at=clock.now))
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.duplicate
    assert [event.event_id for event in seen] == [data["event_id"]]


def test_signed_delivery_signs_a_webhook_event_t_v1_by_default() -> None:
    body, headers = signed_delivery(SECRET, webhook_event_payload(now=NOW), signed_at=NOW)
    assert headers["X-Webhook-Signature"].startswith(f"t={NOW},v1=")
    assert "X-Idempotency-Key" not in headers  # not part of the inline webhook's wire format
    assert json.loads(body)["event"] == "job.completed"
    with pytest.raises(ValueError, match="unknown signature scheme"):
        signed_delivery(SECRET, webhook_event_payload(), scheme="sha512")
