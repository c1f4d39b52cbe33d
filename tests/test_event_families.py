"""Every family the service sends, forward compatibility, one case for statuses and one bound per field.

``docs/contract.md`` §2 (the families, unknown events), §4c (keys and scope) and §4d (the bounds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import (
    MAX_EVENT_ID_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    MAX_JOB_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_SCOPE_LENGTH,
    MAX_STATUS_LENGTH,
    ConfigurationError,
    CrawlJobDocument,
    CrawlWebhookEvent,
    Event,
    JobDocument,
    JobEvent,
    Receiver,
    UnknownEvent,
    Verifier,
    WebhookEvent,
    parse_event,
)
from kreuzberg_webhooks.testing import (
    FrozenClock,
    job_document_payload,
    job_event_payload,
    signed_delivery,
    webhook_event_payload,
)

SECRET = "event-families-test-secret-0123456789abcdef"
OTHER = "another-project-secret-0123456789abcdef0"
NOW = 1_800_000_000
JOB = "5f0c6a2e-1b3d-4c5e-8f9a-0b1c2d3e4f5a"
PROJECT = "d18afeed-67af-414a-8340-e409da360a66"
RFC3339 = "2027-01-15T08:00:00+00:00"


def unknown_event(**overrides: Any) -> dict[str, Any]:
    body = {
        "event": "dataset.published",
        "event_id": "0c7e1d4a-3b8f-4c2a-9e51-6a2d7f9b3c10",
        "dataset_id": "ds_17",
        "timestamp": RFC3339,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def receiver(**options: Any) -> Receiver:
    return Receiver(SECRET, clock=FrozenClock(NOW), **options)


def send(rx: Receiver, payload: dict[str, Any], secret: str = SECRET) -> Any:
    return rx.handle(*signed_delivery(secret, json.dumps(payload).encode(), scheme="t-v1", signed_at=NOW))


# -- forward compatibility: an event this version does not know ---------------------------------------


def test_an_unknown_signed_event_is_answered_2xx_and_handled_once_by_the_catch_all() -> None:
    rx = receiver()
    every: list[Event] = []
    unknown: list[Event] = []
    completed: list[Event] = []
    rx.on()(every.append)
    rx.on("unknown")(unknown.append)
    rx.on("job.completed")(completed.append)
    first, second = send(rx, unknown_event()), send(rx, unknown_event())
    assert (first.status_code, first.reason) == (200, "processed")
    assert (second.status_code, second.reason) == (200, "duplicate")
    assert [type(event) for event in every] == [UnknownEvent]
    assert unknown == every
    assert completed == []
    (event,) = every
    assert isinstance(event, UnknownEvent)
    assert (event.type, event.event_id, event.job_id) == ("dataset.published", unknown_event()["event_id"], None)
    assert event.raw["dataset_id"] == "ds_17"
    assert event.dedup_key == f"|{event.event_id}|dataset.published"


def test_unknown_events_are_deduplicated_by_their_event_id() -> None:
    rx = receiver()
    seen: list[Event] = []
    rx.on()(seen.append)
    for event_id in ("e-1", "e-2", "e-1"):
        send(rx, unknown_event(event_id=event_id))
    assert [event.event_id for event in seen] == ["e-1", "e-2"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"timestamp": None}, id="no-timestamp"),
        pytest.param({"timestamp": "whenever"}, id="unreadable-timestamp"),
        pytest.param({"timestamp": NOW}, id="unix-seconds"),
        pytest.param({"event": "RAG.Index.Ready"}, id="any-case"),
        pytest.param(
            {"event": "job_batch.completed", "job_id": 7, "project_id": PROJECT}, id="a-new-family-with-odd-fields"
        ),
        pytest.param({"event": "created", "job_id": JOB}, id="an-event-field-on-no-known-shape"),
    ],
)
def test_an_unknown_event_with_an_event_id_is_never_refused(overrides: dict[str, Any]) -> None:
    outcome = send(receiver(), unknown_event(**overrides))
    assert (outcome.status_code, outcome.reason) == (200, "processed")


def test_a_stale_unknown_event_is_refused_like_any_stale_event() -> None:
    outcome = send(receiver(), unknown_event(timestamp=NOW - 3 * 24 * 3600))
    assert (outcome.status_code, outcome.reason) == (400, "stale_timestamp")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"event": "dataset.published", "dataset_id": "ds_17"}, id="unknown-event-without-an-event-id"),
        pytest.param({"hello": "world"}, id="no-event-no-id"),
        pytest.param({"event": "crawl.completed", "timestamp": RFC3339}, id="a-known-family-without-its-identity"),
    ],
)
def test_a_signed_body_with_no_identity_at_all_is_still_refused(body: dict[str, Any]) -> None:
    outcome = send(receiver(), body)
    assert outcome.status_code == 400


def test_an_unknown_event_is_kept_in_inbox_mode_and_run_once_by_the_worker(tmp_path: Path) -> None:
    from kreuzberg_webhooks.inbox.sqlite import SQLiteInbox
    from kreuzberg_webhooks.inbox.worker import InboxWorker

    clock = FrozenClock(NOW)
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    rx = Receiver(SECRET, clock=clock, inbox=inbox)
    seen: list[Event] = []
    rx.on()(seen.append)
    body = unknown_event(event="x" * 200 + ".done")
    assert [send(rx, body).status_code for _ in range(2)] == [202, 200]
    record = inbox.get(body["event_id"])
    assert record is not None
    assert (record.entry.job_id, record.entry.event_id) == ("", body["event_id"])
    assert len(record.entry.event_type) <= MAX_EVENT_TYPE_LENGTH
    assert InboxWorker(rx, clock=clock).run_once() == 1
    assert [type(event) for event in seen] == [UnknownEvent]


# -- the families register like the job types ----------------------------------------------------------


@pytest.mark.parametrize(
    "event_type",
    ["crawl.completed", "crawl.failed", "crawl.cancelled", "auto_tune.completed", "auto_tune.failed", "unknown"],
)
def test_every_family_type_registers_with_on(event_type: str) -> None:
    rx = receiver()
    rx.on(event_type)(print)
    assert rx.handlers_for  # registered without a ConfigurationError


def test_a_typo_of_a_family_type_is_still_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"crawl\.completed"):
        receiver().on("crawl.complete")


def test_a_crawl_partial_success_is_not_a_job_partial_success() -> None:
    rx = receiver()
    partial: list[Event] = []
    crawled: list[Event] = []
    rx.on("job.partial_success")(partial.append)
    rx.on("crawl.completed")(crawled.append)
    body = {
        "event": "crawl.completed",
        "event_id": "c-1",
        "crawl_job_id": JOB,
        "status": "partial_success",
        "timestamp": RFC3339,
    }
    assert send(rx, body).status_code == 200
    assert partial == []
    assert [type(event) for event in crawled] == [CrawlWebhookEvent]


# -- one case for statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(job_event_payload(now=NOW, job_id=JOB, status="COMPLETED"), id="small-event"),
        pytest.param(job_document_payload(now=NOW, id=JOB, status="COMPLETED"), id="job-document"),
        pytest.param(webhook_event_payload(now=NOW, job_id=JOB, event="JOB.COMPLETED"), id="webhook-event"),
    ],
)
def test_an_upper_case_status_is_a_completed_job_in_every_shape(payload: dict[str, Any]) -> None:
    rx = receiver()
    completed: list[Event] = []
    rx.on("job.completed")(completed.append)
    body, headers = signed_delivery(SECRET, payload, signed_at=NOW)
    assert rx.handle(body, headers).reason == "processed"
    (event,) = completed
    assert event.type == "job.completed"
    assert getattr(event, "status", "completed") == "completed"
    assert event.dedup_key == f"|{JOB}|job.completed"


def test_the_service_record_of_a_webhook_is_read_in_lower_case() -> None:
    event = parse_event(
        job_document_payload(status="FAILED", webhook_delivery={"attempt_count": 3, "status": "FAILED"})
    )
    assert isinstance(event, JobDocument)
    assert event.status == "failed"
    assert event.webhook_delivery is not None
    assert event.webhook_delivery.status == "failed"


# -- one bound per field ---------------------------------------------------------------------------------


def test_the_bounds_are_published_and_the_key_holds_them() -> None:
    assert (MAX_EVENT_ID_LENGTH, MAX_JOB_ID_LENGTH, MAX_SCOPE_LENGTH, MAX_STATUS_LENGTH) == (255, 128, 128, 64)
    assert len("auto_tune.") + MAX_STATUS_LENGTH <= MAX_EVENT_TYPE_LENGTH
    assert (
        MAX_SCOPE_LENGTH + 1 + max(MAX_EVENT_ID_LENGTH, MAX_JOB_ID_LENGTH) + 1 + MAX_EVENT_TYPE_LENGTH == MAX_KEY_LENGTH
    )


def test_two_long_ids_that_differ_only_at_the_end_stay_two_events() -> None:
    first = parse_event(job_event_payload(now=NOW, job_id="j" * 300 + "1"))
    second = parse_event(job_event_payload(now=NOW, job_id="j" * 300 + "2"))
    assert first.job_id != second.job_id
    assert first.job_id == parse_event(job_event_payload(now=NOW, job_id="j" * 300 + "1")).job_id


# -- the scope with a secret resolver --------------------------------------------------------------------


def _project_secrets(project: str | None) -> Any:
    # Asked for a project: that project's secrets; asked for none (a body that names
    # none): every project's, each under its project id.
    table = {PROJECT: SECRET, "0b7f9a36-4c55-4a4f-9d65-6f7f0f0c8b11": OTHER}
    if project is None:
        return table
    return table.get(project.lower())


@pytest.mark.parametrize(
    "order", [(0, 1, 2), (1, 2, 0), (2, 0, 1)], ids=["event-first", "inline-first", "document-first"]
)
def test_with_a_resolver_one_job_is_handled_once_whichever_shape_arrives(order: tuple[int, ...]) -> None:
    rx = Receiver(_project_secrets, clock=FrozenClock(NOW))
    completed: list[Event] = []
    rx.on("job.completed")(completed.append)
    shapes = [
        signed_delivery(SECRET, job_event_payload(now=NOW, job_id=JOB, project_id=PROJECT.upper()), signed_at=NOW),
        signed_delivery(SECRET, webhook_event_payload(now=NOW, job_id=JOB), signed_at=NOW),
        signed_delivery(SECRET, job_document_payload(now=NOW, id=JOB), signed_at=NOW),
    ]
    reasons = [rx.handle(*shapes[i]).reason for i in order]
    assert reasons == ["processed", "duplicate", "duplicate"]
    assert len(completed) == 1
    scopes = {Verifier(_project_secrets, clock=FrozenClock(NOW)).verify_scoped(*shape).scope for shape in shapes}
    assert scopes == {PROJECT}


def test_with_a_resolver_another_project_signing_the_same_job_is_another_delivery() -> None:
    rx = Receiver(_project_secrets, clock=FrozenClock(NOW))
    completed: list[Event] = []
    rx.on("job.completed")(completed.append)
    mine = signed_delivery(SECRET, webhook_event_payload(now=NOW, job_id=JOB), signed_at=NOW)
    theirs = signed_delivery(OTHER, webhook_event_payload(now=NOW, job_id=JOB), signed_at=NOW)
    assert [rx.handle(*mine).reason, rx.handle(*theirs).reason] == ["processed", "processed"]
    assert len(completed) == 2


# -- a job document's time -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["created_at", "completed_at"])
def test_a_numeric_document_time_bounds_a_replay_like_an_iso_one(field: str) -> None:
    verifier = Verifier(SECRET, clock=FrozenClock(NOW))
    old = job_document_payload(now=NOW, created_at=None)
    old[field] = NOW - 30 * 24 * 3600
    fresh = job_document_payload(now=NOW, created_at=None)
    fresh[field] = NOW - 60
    assert isinstance(verifier.verify(*signed_delivery(SECRET, fresh)), JobDocument)
    outcome = receiver().handle(*signed_delivery(SECRET, old))
    assert (outcome.status_code, outcome.reason) == (400, "stale_timestamp")


def test_a_crawl_document_reads_a_numeric_created_at_too() -> None:
    event = parse_event({"id": JOB, "status": "completed", "job_type": "crawl", "created_at": NOW})
    assert isinstance(event, CrawlJobDocument)
    assert event.signed_time is not None
    assert event.signed_time.timestamp() == NOW


def test_a_document_without_a_usable_time_is_accepted_and_deduplicated() -> None:
    rx = receiver()
    seen: list[Event] = []
    rx.on()(seen.append)
    body = job_document_payload(now=NOW, created_at="sometime")
    assert [rx.handle(*signed_delivery(SECRET, body)).reason for _ in range(2)] == ["processed", "duplicate"]
    assert len(seen) == 1


def test_the_job_event_still_parses_without_a_uuid_job_id() -> None:
    event = parse_event(job_event_payload(now=NOW, job_id="01JDQ8Z6W1N3K4M5P6Q7R8S9T0"))
    assert isinstance(event, JobEvent)
    assert event.job_id == "01JDQ8Z6W1N3K4M5P6Q7R8S9T0"
    inline = parse_event(webhook_event_payload(now=NOW, job_id="01jdq8z6w1n3k4m5p6q7r8s9t0"))
    assert isinstance(inline, WebhookEvent)
    assert inline.job_id == "01jdq8z6w1n3k4m5p6q7r8s9t0"  # kept as sent


def test_a_resolver_answering_plain_secrets_for_no_project_is_warned_about_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    verifier = Verifier(lambda project: SECRET, clock=FrozenClock(NOW))
    delivery = signed_delivery(SECRET, webhook_event_payload(now=NOW), signed_at=NOW)
    for _ in range(3):
        assert verifier.verify_scoped(*delivery).scope == ""
    warned = [record for record in caplog.records if "answer a mapping" in record.getMessage()]
    assert len(warned) == 1
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"event": "job.completed", "job_id": 42, "timestamp": RFC3339}, id="job-id-a-number"),
        pytest.param({"event": "job.failed", "timestamp": RFC3339}, id="job-without-job-id"),
        pytest.param({"event": "crawl.completed", "timestamp": RFC3339}, id="crawl-without-its-id"),
        pytest.param({"event": "auto_tune.failed", "auto_tune_job_id": "", "timestamp": RFC3339}, id="empty-tune-id"),
        pytest.param({"event": "job.completed", "job_id": JOB, "timestamp": "yesterday"}, id="unreadable-time"),
    ],
)
def test_a_known_family_event_that_cannot_be_read_is_kept_by_its_event_id(
    body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    rx = receiver()
    every: list[Event] = []
    typed: list[Event] = []
    rx.on()(every.append)
    rx.on(body["event"])(typed.append)
    body = {**body, "event_id": "kept-1"}
    assert [send(rx, body).reason for _ in range(2)] == ["processed", "duplicate"]
    assert [type(event) for event in every] == [UnknownEvent]
    assert typed == []  # handlers typed for the family never see what it could not read
    assert "cannot read" in caplog.text


def test_a_job_the_reconciler_reads_in_upper_case_is_the_job_its_webhook_closed() -> None:
    from kreuzberg_webhooks.events import parse_job_document

    rx = receiver()
    completed: list[Event] = []
    rx.on("job.completed")(completed.append)
    assert send(rx, webhook_event_payload(now=NOW, job_id=JOB)).reason == "processed"
    fetched = parse_job_document(job_document_payload(now=NOW, id=JOB.upper(), status="COMPLETED"))
    assert rx.process(fetched, via="reconcile").reason == "duplicate"
    assert len(completed) == 1


def test_the_job_type_decides_the_document_whatever_its_case() -> None:
    crawl = parse_event({"id": JOB, "status": "CRAWLING", "job_type": "CRAWL"})
    extraction = parse_event({"id": JOB, "status": "completed", "job_type": "extraction", "jobs": []})
    assert isinstance(crawl, CrawlJobDocument)
    assert (crawl.job_type, crawl.status, crawl.type) == ("crawl", "crawling", "crawl.crawling")
    assert isinstance(extraction, JobDocument)  # the discriminator wins over the shape
