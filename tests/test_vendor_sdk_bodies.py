"""The vendor's own SDK models as the oracle: every body they build is verified, typed and handled once.

The bodies are built with the model classes of ``xberg-io-sdk`` (``Model(...).to_dict()``) and signed as
the service signs them (``t=<unix seconds>,v1=<hex>``), so a change of the vendor's wire format shows up
here first (``docs/contract.md`` §2).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kreuzberg_cloud._generated.models import JobResponse as KreuzbergCloudJobResponse
from kreuzberg_cloud._generated.models.job_status import JOB_STATUS_VALUES as KREUZBERG_CLOUD_STATUSES
from xberg_io_sdk._generated_api.models import AutoTuneWebhookEvent as SdkAutoTuneWebhookEvent
from xberg_io_sdk._generated_api.models import CrawlProgress as SdkCrawlProgress
from xberg_io_sdk._generated_api.models import CrawlWebhookEvent as SdkCrawlWebhookEvent
from xberg_io_sdk._generated_api.models import (
    GetJobResponseVariant0,
    GetJobResponseVariant1,
    WebhookEventError,
    WebhookEventResults,
)
from xberg_io_sdk._generated_api.models import WebhookEvent as SdkWebhookEvent

from kreuzberg_webhooks import (
    AutoTuneWebhookEvent,
    CrawlJobDocument,
    CrawlWebhookEvent,
    Event,
    JobDocument,
    Receiver,
    Verifier,
    WebhookDelivery,
    WebhookEvent,
)
from kreuzberg_webhooks.testing import FrozenClock, signed_delivery

SECRET = "vendor-sdk-oracle-secret-0123456789abcdef"
NOW = 1_800_000_000
WHEN = datetime.fromtimestamp(NOW, UTC)
ULID = "01JDQ8Z6W1N3K4M5P6Q7R8S9T0"
RESULT = {"content": "Invoice total: 1,234.56", "metadata": {"title": "Invoice"}, "mime_type": "text/plain"}


def job_event(event: str, job_id: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = SdkWebhookEvent(
        event=event,  # type: ignore[arg-type]
        event_id=uuid.uuid4(),
        job_id=job_id,
        timestamp=WHEN,
        **extra,
    ).to_dict()
    return body


def crawl_event(event: str, status: str, crawl_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    progress = SdkCrawlProgress(documents_discovered=12, documents_extracted=11, documents_failed=1, pages_crawled=12)
    body: dict[str, Any] = SdkCrawlWebhookEvent(
        crawl_job_id=crawl_id,
        event=event,  # type: ignore[arg-type]
        event_id=uuid.uuid4(),
        progress=progress,
        status=status,  # type: ignore[arg-type]
        timestamp=WHEN,
        **extra,
    ).to_dict()
    return body


def auto_tune_event(event: str, status: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = SdkAutoTuneWebhookEvent(
        auto_tune_job_id="01JDQ9A1B2C3D4E5F6G7H8J9K0",
        event=event,  # type: ignore[arg-type]
        event_id=uuid.uuid4(),
        project_id=uuid.UUID("d18afeed-67af-414a-8340-e409da360a66"),
        status=status,  # type: ignore[arg-type]
        timestamp=WHEN,
        trials_completed=24,
        trials_total=24,
        **extra,
    ).to_dict()
    return body


def extraction_document(status: str, **extra: Any) -> dict[str, Any]:
    data = {
        "id": str(uuid.uuid4()),
        "job_type": "extraction",
        "status": status,
        "filename": "invoice.pdf",
        "mime_type": "application/pdf",
        "created_at": (WHEN - timedelta(seconds=30)).isoformat(),
        **extra,
    }
    body: dict[str, Any] = GetJobResponseVariant0.from_dict(data).to_dict()
    return body


def crawl_document(crawl_id: uuid.UUID, status: str) -> dict[str, Any]:
    data = {
        "id": str(crawl_id),
        "job_type": "crawl",
        "status": status,
        "created_at": (WHEN - timedelta(minutes=10)).isoformat(),
        "output_mode": "documents",
        "seed_urls": ["https://example.com/docs"],
        "progress": {"documents_discovered": 2, "documents_extracted": 2, "documents_failed": 0, "pages_crawled": 2},
        "jobs": [
            {"id": "0b7f9a36-4c55-4a4f-9d65-6f7f0f0c8b11", "filename": "a.html", "status": "completed"},
            {"id": "7A1E2B0C-3D4E-4F50-8A6B-7C8D9E0F1A2B", "filename": "b.html", "status": "completed"},
        ],
    }
    body: dict[str, Any] = GetJobResponseVariant1.from_dict(data).to_dict()
    return body


CRAWL_ID = uuid.UUID("88c157c9-fd77-4b44-a4cc-5446507dce8b")

#: (id, body builder, the typed class, the handler type, the key's identity)
BODIES: list[Any] = [
    pytest.param(
        lambda: job_event(
            "job.completed", "5F0C6A2E-1B3D-4C5E-8F9A-0B1C2D3E4F5A", results=WebhookEventResults.from_dict(RESULT)
        ),
        WebhookEvent,
        "job.completed",
        "5f0c6a2e-1b3d-4c5e-8f9a-0b1c2d3e4f5a",
        id="job-completed-inline-object",
    ),
    pytest.param(
        lambda: job_event("job.completed", "e509f0f6-18d1-49c3-abe2-3714a2d60cec"),
        WebhookEvent,
        "job.completed",
        "e509f0f6-18d1-49c3-abe2-3714a2d60cec",
        id="job-completed-no-results",
    ),
    pytest.param(
        lambda: job_event(
            "job.failed",
            "fe859ed4-dc78-418a-83c0-8c252a2cfea1",
            error=WebhookEventError(code="EXTRACTION_ERROR", message="The PDF is encrypted"),
        ),
        WebhookEvent,
        "job.failed",
        "fe859ed4-dc78-418a-83c0-8c252a2cfea1",
        id="job-failed",
    ),
    pytest.param(lambda: job_event("job.completed", ULID), WebhookEvent, "job.completed", ULID, id="rag-job-ulid"),
    pytest.param(
        lambda: crawl_event("crawl.completed", "completed", CRAWL_ID),
        CrawlWebhookEvent,
        "crawl.completed",
        str(CRAWL_ID),
        id="crawl-completed",
    ),
    pytest.param(
        lambda: crawl_event("crawl.completed", "partial_success", CRAWL_ID),
        CrawlWebhookEvent,
        "crawl.completed",
        str(CRAWL_ID),
        id="crawl-partial-success",
    ),
    pytest.param(
        lambda: crawl_event(
            "crawl.failed", "failed", CRAWL_ID, error=WebhookEventError(code="SEED_UNREACHABLE", message="DNS")
        ),
        CrawlWebhookEvent,
        "crawl.failed",
        str(CRAWL_ID),
        id="crawl-failed",
    ),
    pytest.param(
        lambda: auto_tune_event("auto_tune.completed", "completed", best_score=0.93),
        AutoTuneWebhookEvent,
        "auto_tune.completed",
        "01JDQ9A1B2C3D4E5F6G7H8J9K0",
        id="auto-tune-completed",
    ),
    pytest.param(
        lambda: auto_tune_event("auto_tune.failed", "failed", best_score=None),
        AutoTuneWebhookEvent,
        "auto_tune.failed",
        "01JDQ9A1B2C3D4E5F6G7H8J9K0",
        id="auto-tune-failed",
    ),
    pytest.param(
        lambda: extraction_document(
            "completed",
            result={"content": "x", "mime_type": "application/pdf", "metadata": {}, "tables": []},
            completed_at="2027-01-15T08:00:00Z",
            webhook_delivery={"attempt_count": 2, "status": "delivered"},
        ),
        JobDocument,
        "job.completed",
        None,
        id="extraction-document-completed",
    ),
    pytest.param(
        lambda: extraction_document(
            "failed",
            error="The PDF is encrypted",
            webhook_delivery={"attempt_count": 5, "status": "failed", "last_error": "HTTP 503 from receiver"},
        ),
        JobDocument,
        "job.failed",
        None,
        id="extraction-document-failed-webhook-failed",
    ),
    pytest.param(
        lambda: crawl_document(CRAWL_ID, "partial_success"),
        CrawlJobDocument,
        "crawl.completed",
        str(CRAWL_ID),
        id="crawl-document",
    ),
]


async def _twice_async(receiver: Receiver, delivery: tuple[bytes, dict[str, str]]) -> tuple[Any, Any]:
    return await receiver.handle_async(*delivery), await receiver.handle_async(*delivery)


def deliver(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """Signed as the service signs: ``t=…,v1=…`` over ``"<t>." + body``."""
    return signed_delivery(SECRET, json.dumps(body).encode(), scheme="t-v1", signed_at=NOW)


@pytest.mark.parametrize(("build", "kind", "event_type", "identity"), BODIES)
def test_every_body_the_vendor_sdk_builds_verifies_into_its_family(
    build: Callable[[], dict[str, Any]], kind: type, event_type: str, identity: str | None
) -> None:
    body = build()
    event = Verifier(SECRET, clock=FrozenClock(NOW)).verify(*deliver(body))
    assert type(event) is kind
    assert event.type == event_type
    assert event.job_id == (identity if identity is not None else body["id"])
    assert event.raw == body


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize(("build", "kind", "event_type", "identity"), BODIES)
def test_every_body_the_vendor_sdk_builds_sent_twice_is_handled_once(
    build: Callable[[], dict[str, Any]], kind: type, event_type: str, identity: str | None, path: str
) -> None:
    receiver = Receiver(SECRET, clock=FrozenClock(NOW))
    handled: list[Event] = []
    receiver.on(event_type)(handled.append)
    delivery = deliver(build())
    if path == "sync":
        first, second = receiver.handle(*delivery), receiver.handle(*delivery)
    else:
        first, second = asyncio.run(_twice_async(receiver, delivery))
    assert (first.status_code, first.reason) == (200, "processed")
    assert (second.status_code, second.reason) == (200, "duplicate")
    assert [type(event) for event in handled] == [kind]


def test_an_inline_result_object_is_read_and_not_fetched() -> None:
    body = job_event(
        "job.completed", "5f0c6a2e-1b3d-4c5e-8f9a-0b1c2d3e4f5a", results=WebhookEventResults.from_dict(RESULT)
    )
    event = Verifier(SECRET, clock=FrozenClock(NOW)).verify(*deliver(body))
    assert isinstance(event, WebhookEvent)
    assert event.has_inline_results
    assert not event.must_fetch_results
    assert event.results == RESULT
    assert event.result is not None
    assert (event.result.content, event.result.mime_type, event.result.metadata) == (
        RESULT["content"],
        "text/plain",
        {"title": "Invoice"},
    )


def test_a_crawl_and_an_auto_tune_event_carry_their_fields() -> None:
    crawl = Verifier(SECRET, clock=FrozenClock(NOW)).verify(
        *deliver(crawl_event("crawl.failed", "failed", CRAWL_ID, error=WebhookEventError(code="SEED", message="DNS")))
    )
    assert isinstance(crawl, CrawlWebhookEvent)
    assert (crawl.crawl_job_id, crawl.status, crawl.timestamp) == (str(CRAWL_ID), "failed", WHEN)
    assert crawl.progress is not None
    assert (crawl.progress.documents_extracted, crawl.progress.pages_crawled) == (11, 12)
    assert crawl.error is not None
    assert (crawl.error.code, crawl.error.message) == ("SEED", "DNS")
    tuned = Verifier(SECRET, clock=FrozenClock(NOW)).verify(
        *deliver(auto_tune_event("auto_tune.completed", "completed", best_score=0.93))
    )
    assert isinstance(tuned, AutoTuneWebhookEvent)
    assert (tuned.project_id, tuned.trials_completed, tuned.trials_total, tuned.best_score) == (
        "d18afeed-67af-414a-8340-e409da360a66",
        24,
        24,
        0.93,
    )


def test_a_job_document_is_read_with_the_fields_the_api_sends_now() -> None:
    body = extraction_document(
        "failed",
        error="The PDF is encrypted",
        completed_at="2027-01-15T08:00:03Z",
        webhook_delivery={"attempt_count": 5, "status": "failed", "last_error": "HTTP 503 from receiver"},
        parent_crawl_job_id=str(CRAWL_ID),
        source_url="https://example.com/docs/a",
        cached=False,
        child_job_ids=["A1B2C3D4-0000-4000-8000-000000000001"],
        pages_extracted=3,
        tables_extracted=1,
        images_extracted=0,
        processing_time_ms=1840,
    )
    event = Verifier(SECRET, clock=FrozenClock(NOW)).verify(*deliver(body))
    assert isinstance(event, JobDocument)
    assert (event.job_type, event.mime_type, event.error, event.error_message) == (
        "extraction",
        "application/pdf",
        "The PDF is encrypted",
        "The PDF is encrypted",
    )
    assert event.completed_at == datetime(2027, 1, 15, 8, 0, 3, tzinfo=UTC)
    assert event.webhook_delivery == WebhookDelivery(
        attempt_count=5, status="failed", last_error="HTTP 503 from receiver"
    )
    assert (event.parent_crawl_job_id, event.source_url, event.cached) == (
        str(CRAWL_ID),
        "https://example.com/docs/a",
        False,
    )
    assert event.child_job_ids == ("a1b2c3d4-0000-4000-8000-000000000001",)
    assert (event.pages_extracted, event.tables_extracted, event.images_extracted) == (3, 1, 0)
    assert event.result is None  # absent until the job is done


@pytest.mark.parametrize("status", ["awaiting_upload", "pending", "processing"])
def test_an_unfinished_job_document_has_no_result(status: str) -> None:
    event = Verifier(SECRET, clock=FrozenClock(NOW)).verify(*deliver(extraction_document(status)))
    assert isinstance(event, JobDocument)
    assert (event.status, event.result, event.type) == (status, None, f"job.{status}")


@pytest.mark.parametrize("webhook_first", [True, False], ids=["webhook-then-document", "document-then-webhook"])
def test_a_crawl_webhook_and_its_crawl_job_document_are_one_job(webhook_first: bool) -> None:
    receiver = Receiver(SECRET, clock=FrozenClock(NOW))
    handled: list[Event] = []
    receiver.on("crawl.completed")(handled.append)
    shapes = [
        deliver(crawl_event("crawl.completed", "partial_success", CRAWL_ID)),
        deliver(crawl_document(CRAWL_ID, "completed")),
    ]
    if not webhook_first:
        shapes.reverse()
    outcomes = [receiver.handle(*delivery) for delivery in shapes]
    assert [outcome.reason for outcome in outcomes] == ["processed", "duplicate"]
    assert len(handled) == 1
    crawl = Verifier(SECRET, clock=FrozenClock(NOW)).verify(*shapes[1 if webhook_first else 0])
    assert isinstance(crawl, CrawlJobDocument)
    assert crawl.job_ids == ("0b7f9a36-4c55-4a4f-9d65-6f7f0f0c8b11", "7a1e2b0c-3d4e-4f50-8a6b-7c8d9e0f1a2b")


def test_the_parsed_fields_agree_with_the_sdk_reading_the_same_body() -> None:
    body = job_event("job.completed", ULID, results=WebhookEventResults.from_dict(RESULT))
    ours = Verifier(SECRET, clock=FrozenClock(NOW)).verify(*deliver(body))
    theirs = SdkWebhookEvent.from_dict(json.loads(json.dumps(body)))
    assert isinstance(ours, WebhookEvent)
    assert (ours.type, ours.event_id, ours.job_id, ours.timestamp) == (
        theirs.event,
        str(theirs.event_id),
        theirs.job_id,
        theirs.timestamp,
    )


@pytest.mark.parametrize("status", sorted(KREUZBERG_CLOUD_STATUSES))
def test_every_job_document_kreuzberg_cloud_sdk_models_is_a_job_document(status: str) -> None:
    # kreuzberg-cloud-sdk 0.3.1's JobResponse: the older shape, no job_type, a null result.
    body = KreuzbergCloudJobResponse(
        created_at=WHEN - timedelta(minutes=1), filename="a.pdf", id=uuid.uuid4(), status=status, result=None
    ).to_dict()
    event = Verifier(SECRET, clock=FrozenClock(NOW)).verify(*deliver(body))
    assert isinstance(event, JobDocument)
    assert (event.job_id, event.status, event.result, event.job_type) == (body["id"], status, None, None)
    assert event.type == ("job.completed" if status == "partial_success" else f"job.{status}")
