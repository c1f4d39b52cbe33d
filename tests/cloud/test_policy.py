"""The jobs client's pure decisions: parsing the job-lookup union, Retry-After, errors, backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kreuzberg_webhooks import CrawlJobDocument, JobDocument, JobStatus
from kreuzberg_webhooks.cloud import (
    APIUnavailable,
    Backoff,
    InvalidAPIKey,
    InvalidJobId,
    InvalidResponse,
    JobNotFound,
    PermanentAPIError,
    ServerError,
    parse_job_response,
    parse_retry_after,
)
from kreuzberg_webhooks.cloud.policy import error_for

# The vendor's examples (docs/contract.md §4c): a completed job, a crawl job, an uppercase Pro status.
JOB = {
    "id": "550e8400-e29b-41d4-a716-446655440000",
    "filename": "invoice.pdf",
    "status": "completed",
    "created_at": "2025-12-21T10:00:00Z",
    "result": {"content": "Invoice total: $1,234.56", "mime_type": "text/markdown", "tables": [], "images": []},
}
CRAWL = {
    "id": "660e9400-f39c-51e5-b827-557766551111",
    "status": "extracting",
    "seed_urls": ["https://example.com/docs"],
    "created_at": "2025-12-21T10:00:00Z",
    "progress": {"pages_crawled": 42, "documents_discovered": 15, "documents_extracted": 10, "documents_failed": 0},
    "jobs": [{"id": "550e8400-e29b-41d4-a716-446655440000", "filename": "guide.pdf", "status": "completed"}],
}


def test_a_job_response_becomes_a_job_document() -> None:
    document = parse_job_response(JOB)
    assert isinstance(document, JobDocument)
    assert document.status is JobStatus.COMPLETED
    assert document.result is not None
    assert document.result.content == "Invoice total: $1,234.56"


def test_a_crawl_job_response_becomes_a_crawl_document() -> None:
    document = parse_job_response(CRAWL)
    assert isinstance(document, CrawlJobDocument)
    assert [str(i) for i in document.job_ids] == ["550e8400-e29b-41d4-a716-446655440000"]
    assert document.status == "extracting"


def test_a_crawl_job_without_its_optional_jobs_list_is_still_a_crawl() -> None:
    document = parse_job_response({k: v for k, v in CRAWL.items() if k != "jobs"})
    assert isinstance(document, CrawlJobDocument)
    assert document.job_ids == ()


@pytest.mark.parametrize("status", ["COMPLETED", "Partial_Success", "FAILED"])
def test_status_case_is_normalised(status: str) -> None:
    document = parse_job_response({**JOB, "status": status})
    assert document.status == status.lower()
    assert isinstance(document.status, JobStatus)


def test_unknown_statuses_and_fields_are_kept() -> None:
    document = parse_job_response({**JOB, "status": "archived", "cached": True})
    assert document.status == "archived"
    assert document.raw["cached"] is True


@pytest.mark.parametrize("body", [[], "x", {"status": "completed"}, {"id": 42, "status": "completed"}])
def test_what_is_not_a_job_document_is_an_invalid_response(body: object) -> None:
    with pytest.raises(InvalidResponse):
        parse_job_response(body)


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    now = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", now=now) == 0.0  # in the past: now
    for unreadable in (None, "", "soon", "nan", "inf", "-inf"):
        assert parse_retry_after(unreadable) is None
    assert parse_retry_after("-5") == 0.0


@given(st.integers(min_value=0, max_value=10**6))
def test_retry_after_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == seconds


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_retry_after_dates_round_trip(moment: datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=UTC)
    now = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
    assert parse_retry_after(format_datetime(moment, usegmt=True), now=now) == moment.timestamp() - now


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, {"error": "Invalid job ID format"}, InvalidJobId, None),
        (401, {"error": {"code": "unauthorized", "message": "Bad API key"}}, InvalidAPIKey, "unauthorized"),
        (404, {"error": {"code": "job_not_found", "message": "Job not found"}}, JobNotFound, "job_not_found"),
        (403, {"error": "forbidden"}, PermanentAPIError, None),
        (500, {"error": "Database connection failed"}, ServerError, None),
        (503, {"error": {"code": "service_unavailable", "message": "x"}}, APIUnavailable, "service_unavailable"),
        (404, b"<html>not json</html>", JobNotFound, None),
    ],
    ids=["400-flat", "401-envelope", "404-envelope", "403", "500", "503", "404-html"],
)
def test_error_bodies_flat_and_enveloped(status: int, body: object, kind: type[Exception], code: str | None) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    error = error_for(httpx.Response(status, content=content), "GET /v1/jobs/x", "secret-key", job_id="x")
    assert type(error) is kind
    assert error.code == code
    assert error.status_code == status


def test_the_key_is_scrubbed_from_a_server_message_that_echoes_it() -> None:
    body = json.dumps({"error": {"code": "unauthorized", "message": "bad key sk-live-123"}}).encode()
    error = error_for(httpx.Response(401, content=body), "GET /v1/jobs/x", "sk-live-123", job_id="x")
    assert "sk-live-123" not in str(error)


def test_backoff_doubles_from_one_second_to_thirty() -> None:
    assert [Backoff().delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert Backoff().delay(10_000) == 30
