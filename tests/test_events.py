"""Typed events: both payload shapes, their types, and what makes a payload invalid."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from kreuzberg_webhooks import (
    CrawlJobDocument,
    EventType,
    InvalidField,
    InvalidPayload,
    JobDocument,
    JobEvent,
    JobStatus,
    MissingField,
    parse_event,
)
from kreuzberg_webhooks.testing import OMIT, job_document_payload, job_event_payload

JOB_ID = "550e8400-e29b-41d4-a716-446655440000"
PROJECT_ID = "1cbb9d72-660a-4df2-ba3d-66d83b6afaff"
CHILD_IDS = ["0b7f9a36-4c55-4a4f-9d65-6f7f0f0c8b11", "7a1e2b0c-3d4e-4f50-8a6b-7c8d9e0f1a2b"]
CHILD_IDS_CANONICAL = tuple(CHILD_IDS)


def wire(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as a receiver decodes it from the wire."""
    decoded: dict[str, Any] = json.loads(json.dumps(payload))
    return decoded


# -- the small event ----------------------------------------------------------------


def test_the_documented_small_event_parses_into_proper_types() -> None:
    data = wire(
        {
            "event_id": "01HZQ3K4M5N6P7Q8R9S0T1V2W3",
            "job_id": JOB_ID,
            "project_id": PROJECT_ID,
            "status": "completed",
            "error_message": None,
            "timestamp": 1747038551,
            "attempt_count": 1,
        }
    )
    event = parse_event(data)
    assert isinstance(event, JobEvent)
    assert event.event_id == "01HZQ3K4M5N6P7Q8R9S0T1V2W3"
    assert event.job_id == JOB_ID
    assert event.project_id == UUID(PROJECT_ID)
    assert event.status is JobStatus.COMPLETED
    assert event.error_message is None
    assert event.timestamp == datetime(2025, 5, 12, 8, 29, 11, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    assert event.attempt_count == 1
    assert event.is_retry is False
    assert event.type == EventType.JOB_COMPLETED == "job.completed"
    assert event.dedup_key == "|550e8400-e29b-41d4-a716-446655440000|job.completed"
    assert event.raw is data


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        pytest.param("completed", "job.completed", id="completed"),
        pytest.param("partial_success", "job.completed", id="partial-success-is-completed"),
        pytest.param("failed", "job.failed", id="failed"),
        pytest.param("cancelled", "job.cancelled", id="cancelled"),
        pytest.param("processing", "job.processing", id="non-terminal"),
        pytest.param("archived", "job.archived", id="unknown-status"),
    ],
)
def test_event_type_is_derived_from_the_status(status: str, event_type: str) -> None:
    assert parse_event(wire(job_event_payload(status=status))).type == event_type
    assert parse_event(wire(job_document_payload(status=status))).type == event_type


def test_a_failed_event_carries_its_error_message() -> None:
    event = parse_event(wire(job_event_payload(status="failed", error_message="OCR timeout")))
    assert event.status is JobStatus.FAILED
    assert isinstance(event, JobEvent)
    assert event.error_message == "OCR timeout"


@pytest.mark.parametrize(
    ("attempt_count", "is_retry"),
    [pytest.param(1, False, id="first-try"), pytest.param(2, True, id="second"), pytest.param(5, True, id="last")],
)
def test_attempt_count_tells_a_first_try_from_a_retry(attempt_count: int, is_retry: bool) -> None:
    event = parse_event(wire(job_event_payload(attempt_count=attempt_count)))
    assert isinstance(event, JobEvent)
    assert (event.attempt_count, event.is_retry) == (attempt_count, is_retry)


def test_a_missing_attempt_count_means_first_try() -> None:
    event = parse_event(wire(job_event_payload(attempt_count=OMIT)))
    assert isinstance(event, JobEvent)
    assert (event.attempt_count, event.is_retry) == (1, False)


def test_unknown_status_and_fields_are_kept() -> None:
    data = wire(job_event_payload(status="archived", region="eu-2", nested={"a": [1, 2]}))
    event = parse_event(data)
    assert event.status == "archived"
    assert not isinstance(event.status, JobStatus)
    assert event.raw["region"] == "eu-2"
    assert event.raw["nested"] == {"a": [1, 2]}


def test_a_fractional_timestamp_keeps_its_fraction() -> None:
    event = parse_event(wire(job_event_payload(timestamp=1747038551.25)))
    assert isinstance(event, JobEvent)
    assert event.timestamp == datetime(2025, 5, 12, 8, 29, 11, 250000, tzinfo=UTC)


def test_events_are_frozen_and_compare_on_their_identity() -> None:
    data = wire(job_event_payload())
    event = parse_event(data)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = "failed"  # type: ignore[misc]
    assert parse_event(dict(data, extra=1)) == event  # raw is not part of equality
    assert "raw" not in repr(event)


@pytest.mark.parametrize(
    ("overrides", "error", "field"),
    [
        pytest.param({"event_id": OMIT}, None, "event_id", id="event-id-missing-means-document-shape"),
        pytest.param({"job_id": OMIT}, MissingField, "job_id", id="job-id-missing"),
        pytest.param({"project_id": OMIT}, MissingField, "project_id", id="project-id-missing"),
        pytest.param({"status": OMIT}, MissingField, "status", id="status-missing"),
        pytest.param({"timestamp": OMIT}, MissingField, "timestamp", id="timestamp-missing"),
        pytest.param({"event_id": 42}, InvalidField, "event_id", id="event-id-int"),
        pytest.param({"event_id": ""}, InvalidField, "event_id", id="event-id-empty"),
        pytest.param({"event_id": "a\nb"}, InvalidField, "event_id", id="event-id-newline"),
        pytest.param({"event_id": "\ud800"}, InvalidField, "event_id", id="event-id-lone-surrogate"),
        pytest.param({"job_id": ""}, InvalidField, "job_id", id="job-id-empty"),
        pytest.param({"job_id": "a\nb"}, InvalidField, "job_id", id="job-id-newline"),
        pytest.param({"job_id": 12345}, InvalidField, "job_id", id="job-id-int"),
        pytest.param({"project_id": None}, InvalidField, "project_id", id="project-id-null"),
        pytest.param({"status": ""}, InvalidField, "status", id="status-empty"),
        pytest.param({"status": 3}, InvalidField, "status", id="status-int"),
        pytest.param({"status": None}, InvalidField, "status", id="status-null"),
        pytest.param({"error_message": 5}, InvalidField, "error_message", id="error-message-int"),
        pytest.param({"timestamp": "1747038551"}, InvalidField, "timestamp", id="timestamp-string"),
        pytest.param({"timestamp": True}, InvalidField, "timestamp", id="timestamp-bool"),
        pytest.param({"timestamp": None}, InvalidField, "timestamp", id="timestamp-null"),
        pytest.param({"timestamp": 10**400}, InvalidField, "timestamp", id="timestamp-too-big-for-float"),
        pytest.param({"timestamp": 1e300}, InvalidField, "timestamp", id="timestamp-out-of-datetime-range"),
        pytest.param({"attempt_count": True}, InvalidField, "attempt_count", id="attempt-count-bool"),
        pytest.param({"attempt_count": 0}, InvalidField, "attempt_count", id="attempt-count-zero"),
        pytest.param({"attempt_count": 1.0}, InvalidField, "attempt_count", id="attempt-count-float"),
        pytest.param({"attempt_count": "2"}, InvalidField, "attempt_count", id="attempt-count-string"),
    ],
)
def test_a_small_event_with_a_bad_required_field_is_invalid(
    overrides: dict[str, Any], error: type[InvalidPayload] | None, field: str
) -> None:
    data = job_event_payload(**overrides)
    if error is None:
        # Without event_id the payload is read as a job document, which needs an "id".
        with pytest.raises(MissingField, match="none of 'event', 'event_id' and 'id'"):
            parse_event(data)
        return
    with pytest.raises(error) as caught:
        parse_event(data)
    assert caught.value.status_code == 400
    assert field in caught.value.detail


# -- the job document ----------------------------------------------------------------


def test_a_job_document_parses_with_its_echoed_metadata() -> None:
    data = wire(
        job_document_payload(
            id=JOB_ID,
            metadata={"request_id": "abc123", "customer": {"tier": "gold"}},
            created_at="2025-12-21T10:00:00Z",
        )
    )
    event = parse_event(data)
    assert isinstance(event, JobDocument)
    assert event.id == event.job_id == JOB_ID
    assert event.event_id is None
    assert event.status is JobStatus.COMPLETED
    assert event.type == "job.completed"
    assert event.filename == "invoice.pdf"
    assert event.created_at == datetime(2025, 12, 21, 10, 0, tzinfo=UTC)
    assert event.processing_time_ms == 1234
    assert event.metadata == {"request_id": "abc123", "customer": {"tier": "gold"}}
    assert event.result is not None
    assert event.result.content == "Invoice total: $1,234.56"
    assert event.result.mime_type == "text/markdown"
    assert event.result.metadata == {"title": "Invoice #12345"}
    assert event.raw is data


def test_a_job_document_is_deduplicated_on_its_signed_id_and_status() -> None:
    completed = parse_event(wire(job_document_payload(id=JOB_ID)))
    failed = parse_event(wire(job_document_payload(id=JOB_ID, status="failed")))
    assert completed.dedup_key == f"|{JOB_ID}|job.completed"
    assert failed.dedup_key == f"|{JOB_ID}|job.failed"


def test_the_same_job_id_spelled_differently_has_one_dedup_key() -> None:
    lower = parse_event(wire(job_document_payload(id=JOB_ID)))
    upper = parse_event(wire(job_document_payload(id=JOB_ID.upper())))
    assert lower.dedup_key == upper.dedup_key


def test_partial_success_exposes_the_warnings() -> None:
    payload = job_document_payload(status="partial_success")
    payload["result"]["metadata"]["warnings"] = ["page 3 unreadable"]
    event = parse_event(wire(payload))
    assert isinstance(event, JobDocument)
    assert event.type == "job.completed"
    assert event.result is not None
    assert event.result.warnings == ["page 3 unreadable"]


def test_a_failed_document_has_no_result() -> None:
    event = parse_event(wire(job_document_payload(status="failed")))
    assert isinstance(event, JobDocument)
    assert (event.result, event.error_message, event.type) == (None, "extraction failed", "job.failed")


def test_optional_document_fields_of_the_wrong_type_are_ignored_not_rejected() -> None:
    data = wire(
        job_document_payload(
            filename=7, created_at="yesterday", processing_time_ms="fast", metadata=["not", "a", "map"], result="?"
        )
    )
    event = parse_event(data)
    assert isinstance(event, JobDocument)
    assert (event.filename, event.created_at, event.processing_time_ms, event.result) == (None, None, None, None)
    assert event.metadata == {}
    assert event.raw["metadata"] == ["not", "a", "map"]


def test_a_naive_created_at_is_read_as_utc() -> None:
    event = parse_event(wire(job_document_payload(created_at="2025-12-21T10:00:00")))
    assert isinstance(event, JobDocument)
    assert event.created_at == datetime(2025, 12, 21, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"id": OMIT}, MissingField, id="id-missing"),
        pytest.param({"id": ""}, InvalidField, id="id-empty"),
        pytest.param({"id": 42}, InvalidField, id="id-a-number"),
        pytest.param({"status": OMIT}, MissingField, id="status-missing"),
        pytest.param({"status": ["completed"]}, InvalidField, id="status-list"),
    ],
)
def test_a_document_with_a_bad_identity_is_invalid(overrides: dict[str, Any], error: type[InvalidPayload]) -> None:
    with pytest.raises(error):
        parse_event(job_document_payload(**overrides))


# -- the crawl document --------------------------------------------------------------


@pytest.mark.parametrize(
    "listing",
    [
        pytest.param({"job_ids": CHILD_IDS}, id="job-ids"),
        pytest.param({"jobs": [{"job_id": CHILD_IDS[0]}, {"id": CHILD_IDS[1]}]}, id="jobs-objects"),
        pytest.param({"jobs": CHILD_IDS}, id="jobs-strings"),
    ],
)
def test_a_crawl_document_lists_the_jobs_it_spawned(listing: dict[str, Any]) -> None:
    data = wire({"id": JOB_ID, "status": "completed", "metadata": {"crawl": "site-1"}, **listing})
    event = parse_event(data)
    assert isinstance(event, CrawlJobDocument)
    assert event.job_ids == CHILD_IDS_CANONICAL
    assert event.job_id == JOB_ID
    assert event.metadata == {"crawl": "site-1"}
    assert event.type == "crawl.completed"
    assert event.dedup_key == f"|{JOB_ID}|crawl.completed"
    assert event.event_id is None


@pytest.mark.parametrize(
    "listing",
    [
        pytest.param({"job_ids": [CHILD_IDS[0], None, CHILD_IDS[1]]}, id="null-in-job-ids"),
        pytest.param({"job_ids": [CHILD_IDS[0], "", 42, [], CHILD_IDS[1]]}, id="odd-job-ids"),
        pytest.param(
            {"jobs": [{"job_id": CHILD_IDS[0]}, {"filename": "a.pdf", "status": "failed"}, {"id": CHILD_IDS[1]}]},
            id="job-without-an-id",
        ),
        pytest.param(
            {"jobs": [None, {"job_id": None, "id": CHILD_IDS[0]}, "", {"id": 7}, [1], {"id": CHILD_IDS[1]}]},
            id="odd-job-entries",
        ),
    ],
)
def test_odd_child_entries_of_a_crawl_are_skipped_and_kept_in_raw(listing: dict[str, Any]) -> None:
    # The children are not identity, dedupe or window; a 400 would lose the crawl.
    data = wire({"id": JOB_ID, "status": "partial_success", "created_at": "2025-12-21T10:00:00Z", **listing})
    event = parse_event(data)
    assert isinstance(event, CrawlJobDocument)
    assert event.job_ids == CHILD_IDS_CANONICAL
    assert event.raw == data
    assert event.dedup_key == f"|{JOB_ID}|crawl.completed"


@pytest.mark.parametrize("job_ids", ["nope", 42, {"a": CHILD_IDS[0]}, True])
def test_a_crawl_whose_job_ids_are_not_a_list_is_a_crawl_without_children(job_ids: Any) -> None:
    event = parse_event(wire({"id": JOB_ID, "status": "completed", "job_ids": job_ids}))
    assert isinstance(event, CrawlJobDocument)
    assert event.job_ids == ()
    assert event.raw["job_ids"] == job_ids


def test_an_empty_crawl_is_still_a_crawl() -> None:
    event = parse_event(wire({"id": JOB_ID, "status": "cancelled", "job_ids": []}))
    assert isinstance(event, CrawlJobDocument)
    assert (event.job_ids, event.type) == ((), "crawl.cancelled")


# -- enums -----------------------------------------------------------------------------


def test_the_terminal_statuses() -> None:
    terminal = {s for s in JobStatus if s.is_terminal}
    assert terminal == {JobStatus.COMPLETED, JobStatus.PARTIAL_SUCCESS, JobStatus.FAILED, JobStatus.CANCELLED}


def test_statuses_compare_equal_to_their_wire_strings() -> None:
    assert JobStatus.PARTIAL_SUCCESS == "partial_success"
    assert EventType.JOB_FAILED == "job.failed"
