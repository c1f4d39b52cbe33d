"""OpenTelemetry: a span and metrics per delivery, read back through the SDK's in-memory exporter and reader."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kreuzberg_webhooks import Event, Receiver, parse_event
from kreuzberg_webhooks.lifecycle.outcome import DeliveryReport
from kreuzberg_webhooks.otel import DELIVERY_SPAN, OpenTelemetryObserver
from kreuzberg_webhooks.testing import job_document_payload, job_event_payload, signed_delivery

SECRET = "otel-test-secret-0123456789abcdef0123456789"
ERROR_TEXT = "OCR timeout on page 7"  # only in the body: must never reach a span or a label


@dataclass
class Telemetry:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    reports: list[DeliveryReport]
    receiver: Receiver
    observer: OpenTelemetryObserver

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        if data is None:  # nothing recorded at all
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    reports: list[DeliveryReport] = []
    receiver = Receiver(SECRET, on_outcome=reports.append)
    observer = OpenTelemetryObserver(tracer_provider=tracer_provider, meter_provider=meter_provider)
    receiver.add_observer(observer)
    yield Telemetry(spans, reader, reports, receiver, observer)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def run_a_mix_of_deliveries(telemetry: Telemetry) -> list[tuple[bytes, dict[str, str]]]:
    """processed, duplicate, forged (401), a failing handler (500), a job document, one reconciled event."""
    receiver = telemetry.receiver

    @receiver.on("job.failed")
    def fail(event: Event) -> None:
        raise RuntimeError("the handler's own failure")

    valid = signed_delivery(SECRET)
    failing = signed_delivery(SECRET, status="failed", error_message=ERROR_TEXT)
    document = signed_delivery(SECRET, job_document_payload(metadata={"customer": "secret-customer-name"}))
    forged = signed_delivery("not-the-secret-0123456789abcdef0123456789")
    assert receiver.handle(*valid).reason == "processed"
    assert receiver.handle(*valid).reason == "duplicate"
    assert receiver.handle(*forged).reason == "signature_mismatch"
    assert receiver.handle(*failing).reason == "handler_error"
    assert receiver.handle(*document).reason == "processed"
    event = parse_event(job_event_payload(status="cancelled"))  # as a reconciler would bring it
    assert receiver.process(event, via="reconcile").reason == "processed"
    return [valid, failing, document, forged]


def test_one_span_per_delivery_timed_by_the_report(telemetry: Telemetry) -> None:
    run_a_mix_of_deliveries(telemetry)
    spans = telemetry.finished()
    assert len(spans) == len(telemetry.reports) == 6
    for span, report in zip(spans, telemetry.reports, strict=True):
        assert span.name == DELIVERY_SPAN
        assert span.start_time == int(report.started_at * 1e9)
        assert span.end_time == span.start_time + int(report.total_seconds * 1e9)
        assert span.attributes is not None
        assert span.attributes["kreuzberg_webhooks.reason"] == report.reason
        assert span.attributes["http.response.status_code"] == report.status_code
        assert span.attributes["kreuzberg_webhooks.duplicate"] is report.duplicate
        assert span.attributes["kreuzberg_webhooks.via"] == report.via
        assert span.attributes.get("kreuzberg_webhooks.event_id") == report.event_id
        assert span.attributes.get("kreuzberg_webhooks.job_id") == report.job_id
    assert [span.attributes["kreuzberg_webhooks.reason"] for span in spans if span.attributes] == [
        "processed",
        "duplicate",
        "signature_mismatch",
        "handler_error",
        "processed",
        "processed",
    ]
    # Only a 5xx (the sender will retry) marks the span as failed; a forged delivery is not our error.
    assert [span.status.status_code for span in spans] == [
        StatusCode.UNSET,
        StatusCode.UNSET,
        StatusCode.UNSET,
        StatusCode.ERROR,
        StatusCode.UNSET,
        StatusCode.UNSET,
    ]
    assert [span.kind for span in spans][-1] == SpanKind.CONSUMER  # processed outside a request
    assert {span.kind for span in spans[:-1]} == {SpanKind.SERVER}


def test_deliveries_are_counted_by_reason_and_status(telemetry: Telemetry) -> None:
    run_a_mix_of_deliveries(telemetry)
    counts = {
        (point.attributes["kreuzberg_webhooks.reason"], point.attributes["http.response.status_code"]): point.value
        for point in telemetry.points("kreuzberg_webhooks.deliveries")
        if point.attributes["kreuzberg_webhooks.via"] == "webhook"
    }
    assert counts == {
        ("processed", 200): 2,
        ("duplicate", 200): 1,
        ("signature_mismatch", 401): 1,
        ("handler_error", 500): 1,
    }
    reconciled = [
        point
        for point in telemetry.points("kreuzberg_webhooks.deliveries")
        if point.attributes["kreuzberg_webhooks.via"] == "reconcile"
    ]
    assert [point.value for point in reconciled] == [1]


def test_handler_duration_is_recorded_only_when_handlers_ran(telemetry: Telemetry) -> None:
    run_a_mix_of_deliveries(telemetry)
    histograms = telemetry.points("kreuzberg_webhooks.handler.duration")
    assert sum(point.count for point in histograms) == 4  # processed x2, handler_error, reconciled
    ran = [report for report in telemetry.reports if report.reason in ("processed", "handler_error")]
    assert sum(point.sum for point in histograms) == pytest.approx(sum(report.handler_seconds for report in ran))
    totals = telemetry.points("kreuzberg_webhooks.delivery.duration")
    assert sum(point.count for point in totals) == 6


def test_no_body_secret_or_signature_in_any_attribute_or_label(telemetry: Telemetry) -> None:
    deliveries = run_a_mix_of_deliveries(telemetry)
    forbidden = [SECRET, ERROR_TEXT, "secret-customer-name", "Invoice total", "not-the-secret"]
    for body, headers in deliveries:
        forbidden += [body.decode(), headers["X-Webhook-Signature"], headers["X-Webhook-Signature"][7:]]
    values = [str(value) for span in telemetry.finished() for value in (span.attributes or {}).values()]
    values += [str(span.status.description) for span in telemetry.finished()]
    labels: list[dict[str, Any]] = []
    for name in ("kreuzberg_webhooks.deliveries", "kreuzberg_webhooks.delivery.duration"):
        labels += [dict(point.attributes) for point in telemetry.points(name)]
    values += [str(value) for label in labels for value in label.values()]
    assert values
    for value in values:
        for secret in forbidden:
            assert secret not in value
    # Labels stay low-cardinality: no per-delivery identifiers.
    assert all(
        "kreuzberg_webhooks.event_id" not in label and "kreuzberg_webhooks.job_id" not in label for label in labels
    )


def test_the_module_names_the_extra_when_opentelemetry_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "kreuzberg_webhooks.otel")
    with pytest.raises(ImportError, match=r"kreuzberg-webhooks\[otel\]"):
        importlib.import_module("kreuzberg_webhooks.otel")


def gauge(telemetry: Telemetry) -> dict[str, int]:
    return {
        point.attributes["kreuzberg_webhooks.inbox.state"]: point.value
        for point in telemetry.points("kreuzberg_webhooks.inbox.deliveries")
    }


def test_the_inbox_gauge_reports_depth_and_dead_count(telemetry: Telemetry, tmp_path: Any) -> None:
    from kreuzberg_webhooks.inbox import RetryPolicy, SQLiteInbox
    from kreuzberg_webhooks.inbox.worker import InboxWorker

    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    receiver = Receiver(SECRET, inbox=inbox, on_outcome=telemetry.observer)
    telemetry.observer.observe_inbox(inbox)

    @receiver.on("job.failed")
    def fail(event: Event) -> None:
        raise RuntimeError("the handler's own failure")

    for status in ("completed", "completed", "cancelled", "failed"):
        assert receiver.handle(*signed_delivery(SECRET, status=status)).status_code == 202
    assert gauge(telemetry) == {"queued": 4, "running": 0, "done": 0, "dead": 0}
    # Answering a request in inbox mode is a server span; the worker's attempts below are consumer spans.
    assert {span.kind for span in telemetry.finished()} == {SpanKind.SERVER}

    InboxWorker(receiver, policy=RetryPolicy(max_attempts=1)).drain()
    assert gauge(telemetry) == {"queued": 0, "running": 0, "done": 3, "dead": 1}
    # Each attempt the worker made is a delivery span of its own, counted with via="inbox".
    attempts = [
        span
        for span in telemetry.finished()
        if span.attributes and span.attributes["kreuzberg_webhooks.via"] == "inbox"
    ]
    assert {span.kind for span in attempts} == {SpanKind.CONSUMER}
    assert sorted(str(span.attributes["kreuzberg_webhooks.reason"]) for span in attempts if span.attributes) == [
        "handler_error",
        "processed",
        "processed",
        "processed",
    ]


def test_an_unreachable_inbox_reports_nothing_instead_of_failing_the_collection(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    class Down:
        def counts(self) -> dict[str, int]:
            raise ConnectionError("postgresql://user:password@db/inbox is down")

    telemetry.observer.observe_inbox(Down(), name="down")  # type: ignore[arg-type]
    assert telemetry.points("kreuzberg_webhooks.inbox.deliveries") == []
    assert "could not be counted" in caplog.text
    assert "password" not in caplog.text  # the error's text may hold a connection URL


@pytest.mark.slow
def test_each_reconcile_pass_is_a_span_and_its_jobs_are_counted_by_outcome(telemetry: Telemetry) -> None:
    from kreuzberg_webhooks.cloud import Backoff, JobsClient, MemoryTracker, Reconciler
    from kreuzberg_webhooks.emulator import Emulator
    from kreuzberg_webhooks.otel import RECONCILE_SPAN

    key = "otel-reconcile-key-0123456789"
    handled: list[str] = []
    telemetry.receiver.on()(lambda event: handled.append(str(event.job_id)))
    with (
        Emulator(key, job_delay=0) as cloud,
        JobsClient(key, cloud.base_url, backoff=Backoff(initial=0.02, cap=0.2)) as client,
    ):
        reconciler = Reconciler(telemetry.receiver, client, MemoryTracker(), grace=0.01)
        telemetry.observer.observe_reconciler(reconciler)
        job_ids = [job_id for name in ("a.txt", "b.txt", "c.txt") for job_id in cloud.submit([(name, b"text")])]
        reconciler.track(job_ids, delay=0)
        report = reconciler.run_once()
    assert sorted(handled) == sorted(job_ids)
    (span,) = [span for span in telemetry.finished() if span.name == RECONCILE_SPAN]
    assert span.attributes is not None
    assert span.attributes["kreuzberg_webhooks.reconcile.checked"] == report.checked == 3
    assert span.attributes["kreuzberg_webhooks.reconcile.processed"] == 3
    counts = {
        point.attributes["kreuzberg_webhooks.outcome"]: point.value
        for point in telemetry.points("kreuzberg_webhooks.reconcile.jobs")
    }
    assert counts == {"processed": 3}
    # Each reconciled job is a delivery span and count of its own, and no attribute holds the API key.
    reconciled = [
        span for span in telemetry.finished() if (span.attributes or {}).get("kreuzberg_webhooks.via") == "reconcile"
    ]
    assert len(reconciled) == 3
    assert all(key not in str(value) for span in telemetry.finished() for value in (span.attributes or {}).values())


@pytest.mark.slow
def test_an_async_reconcile_pass_is_the_parent_of_the_deliveries_it_dispatches(telemetry: Telemetry) -> None:
    import asyncio

    from kreuzberg_webhooks.cloud import AsyncJobsClient, AsyncReconciler, Backoff, MemoryTracker
    from kreuzberg_webhooks.emulator import Emulator
    from kreuzberg_webhooks.otel import RECONCILE_SPAN

    key = "otel-reconcile-key-0123456789"
    with Emulator(key, job_delay=0) as cloud:
        job_ids = [job_id for name in ("a.txt", "b.txt") for job_id in cloud.submit([(name, b"text")])]

        async def one_pass() -> Any:
            async with AsyncJobsClient(key, cloud.base_url, backoff=Backoff(initial=0.02, cap=0.2)) as client:
                reconciler = AsyncReconciler(telemetry.receiver, client, MemoryTracker(), grace=0.01)
                telemetry.observer.observe_reconciler(reconciler)
                await reconciler.track(job_ids, delay=0)
                return await reconciler.run_once()

        report = asyncio.run(one_pass())
    assert len(report.processed) == 2
    (parent,) = [span for span in telemetry.finished() if span.name == RECONCILE_SPAN]
    children = [span for span in telemetry.finished() if span.name == DELIVERY_SPAN]
    assert len(children) == 2
    assert all(span.parent is not None and span.parent.span_id == parent.context.span_id for span in children)
