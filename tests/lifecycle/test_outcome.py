"""What a delivery ends in (``kreuzberg_webhooks.lifecycle.outcome``): the answers, the report, the one log line."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from http import HTTPStatus

import pytest

from kreuzberg_webhooks import DeliveryReport, Outcome, parse_event
from kreuzberg_webhooks.exceptions import DeliveryInFlight, StoreUnavailable
from kreuzberg_webhooks.lifecycle.outcome import (
    Observer,
    Timings,
    application_answer,
    application_answered,
    conclude,
    event_label,
    succeeded,
)
from kreuzberg_webhooks.testing import job_event_payload

EVENT = parse_event(job_event_payload(now=1_800_000_000))


@pytest.mark.parametrize(
    ("build", "status", "reason", "duplicate_header"),
    [
        (Outcome.processed, 200, "processed", False),
        (Outcome.queued, 202, "queued", False),
        (Outcome.already_processed, 200, "duplicate", True),
    ],
)
def test_the_success_answers_carry_their_status_a_json_body_and_the_event(
    build: object, status: int, reason: str, duplicate_header: bool
) -> None:
    outcome = build(EVENT)  # type: ignore[operator]
    assert (outcome.status_code, outcome.reason, outcome.event) == (status, reason, EVENT)
    assert json.loads(outcome.body) == {"status": reason}
    assert ("x-kreuzberg-duplicate", "true") in outcome.headers if duplicate_header else len(outcome.headers) == 1
    assert outcome.ok
    assert outcome.duplicate is duplicate_header
    # Equal by the answer it sends: the cause (never sent) is no part of it.
    fields = (outcome.status_code, outcome.reason, outcome.headers, outcome.body, outcome.event)
    assert outcome == Outcome(*fields, error=RuntimeError("not sent"))
    assert outcome != Outcome(*fields[:4])


def test_an_error_answer_says_its_reason_and_never_the_cause() -> None:
    cause = RuntimeError("secret detail of the handler")
    outcome = Outcome.from_error(DeliveryInFlight(event_id="e", retry_after=7), EVENT, cause=cause)
    assert (outcome.status_code, outcome.reason) == (429, "in_flight")
    assert ("retry-after", "7") in outcome.headers
    assert outcome.error is cause
    assert b"secret detail" not in outcome.body


def test_conclude_tells_each_observer_once_and_returns_the_outcome() -> None:
    reports: list[DeliveryReport] = []
    timings = Timings()
    timings.add("verify", 0.5)
    timings.add("store", 0.25)
    timings.add("store", 0.25)
    outcome = Outcome.processed(EVENT)
    assert conclude(outcome, "process", [reports.append], timings, via="inbox", scope="proj") is outcome
    (report,) = reports
    assert (report.status_code, report.reason, report.mode, report.via, report.scope) == (
        200,
        "processed",
        "process",
        "inbox",
        "proj",
    )
    assert (report.event_id, report.job_id, report.event_type) == (EVENT.event_id, EVENT.job_id, EVENT.type)
    assert (report.verify_seconds, report.store_seconds, report.handler_seconds) == (0.5, 0.5, 0.0)
    assert report.started_at == timings.started_at
    assert report.total_seconds >= 0


def test_an_observer_that_raises_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[DeliveryReport] = []

    def broken(report: DeliveryReport) -> None:
        raise ValueError("observer bug")

    outcome = Outcome.processed(EVENT)
    assert conclude(outcome, "endpoint", [broken, seen.append]) is outcome
    assert len(seen) == 1
    assert "a delivery observer raised" in caplog.text


@pytest.mark.parametrize(
    ("outcome", "kwargs", "level", "text"),
    [
        (Outcome.processed(EVENT), {}, logging.INFO, "webhook delivery processed (status=200"),
        (Outcome.from_error(DeliveryInFlight(retry_after=1), EVENT), {}, logging.WARNING, "rejected: in_flight"),
        (
            Outcome.from_error(StoreUnavailable(), EVENT),
            {"store_error": "ConnectionError"},
            logging.ERROR,
            "replay store unavailable; delivery answered 503",
        ),
        (application_answer(204, "processed", EVENT), {}, logging.INFO, "processed (status=204"),
    ],
)
def test_conclude_writes_one_log_line_at_the_level_of_the_answer(
    caplog: pytest.LogCaptureFixture, outcome: Outcome, kwargs: dict[str, str], level: int, text: str
) -> None:
    with caplog.at_level(logging.DEBUG, "kreuzberg_webhooks"):
        conclude(outcome, "endpoint", (), **kwargs)  # type: ignore[arg-type]
    (record,) = caplog.records
    assert record.levelno == level
    assert text in record.getMessage()
    assert event_label(EVENT) in record.getMessage()


@pytest.mark.parametrize(("status", "reason"), [(204, "processed"), (404, "released")])
@pytest.mark.parametrize("log_level", [logging.DEBUG, logging.WARNING, logging.ERROR])
@pytest.mark.parametrize("observed", [True, False])
def test_the_application_s_own_answer_is_logged_and_reported_as_concluding_it_would(
    caplog: pytest.LogCaptureFixture, status: int, reason: str, log_level: int, observed: bool
) -> None:
    def run(settle: Callable[[list[Observer]], object]) -> tuple[list[tuple[int, str]], list[DeliveryReport]]:
        reports: list[DeliveryReport] = []
        caplog.clear()
        with caplog.at_level(log_level, "kreuzberg_webhooks"):
            settle([reports.append] if observed else [])
        lines = [(record.levelno, record.getMessage()) for record in caplog.records]
        return lines, [dataclasses.replace(report, total_seconds=0.0) for report in reports]

    timings = Timings()
    answered = run(lambda observers: application_answered(status, reason, EVENT, observers, timings, "project"))
    concluded = run(
        lambda observers: conclude(
            application_answer(status, reason, EVENT), "guard", observers, timings, scope="project"
        )
    )
    assert answered == concluded
    assert len(answered[1]) == observed


def test_the_log_names_an_event_by_its_id_else_by_job_and_type() -> None:
    assert event_label(None) == "-"
    assert event_label(EVENT) == EVENT.event_id
    document = parse_event({"id": "01JDQ8Z6W1N3K4M5P6Q7R8S9T0", "status": "completed", "job_type": "extraction"})
    assert event_label(document) == f"{document.job_id}/{document.type}"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, True),
        (204, True),
        (HTTPStatus.ACCEPTED, True),
        (299, True),
        (199, False),
        (300, False),
        (500, False),
        (None, False),
        (True, False),
        ("200", False),
    ],
)
def test_a_success_is_a_2xx_status_and_nothing_else(status: object, expected: bool) -> None:
    assert succeeded(status) is expected
