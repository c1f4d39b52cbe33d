"""OpenTelemetry for webhook deliveries: a span per delivery and a few metrics.

Needs only the OpenTelemetry API (``pip install "kreuzberg-webhooks[otel]"``);
the application chooses the SDK, the exporters and the providers::

    from kreuzberg_webhooks.otel import OpenTelemetryObserver

    receiver.add_observer(OpenTelemetryObserver())

Each delivery the receiver answers (and each event it processes for the inbox
or the reconciler) becomes one span, ``kreuzberg_webhooks.delivery``, timed
with the delivery's own start and end, and updates three instruments:

* ``kreuzberg_webhooks.deliveries`` — a counter, by reason, status code,
  event type, mode and path (``via``);
* ``kreuzberg_webhooks.delivery.duration`` — a histogram of the whole
  delivery, in seconds;
* ``kreuzberg_webhooks.handler.duration`` — a histogram of the handlers'
  time, in seconds, for deliveries whose handlers ran.

An inbox worker's attempts go through ``Receiver.process``, so each one is a
span and a count too (``via="inbox"``). :meth:`OpenTelemetryObserver.observe_inbox`
adds a gauge of the inbox itself, ``kreuzberg_webhooks.inbox.deliveries``: how
many deliveries are queued, running, done and dead. A reconciled job is a span
and a count too (``via="reconcile"``); :meth:`OpenTelemetryObserver.observe_reconciler`
adds a span per pass, ``kreuzberg_webhooks.reconcile``, and the counter
``kreuzberg_webhooks.reconcile.jobs`` by outcome.

Spans and metrics carry the answer and the event's identity only: never the
body, a secret, a signature or an API key. Event and job ids go on spans, never
on metric labels, so the metrics keep a bounded number of series.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from . import __version__
from .lifecycle.outcome import DeliveryReport

try:
    from opentelemetry import metrics, trace
except ModuleNotFoundError as exc:  # pragma: no cover - exercised without the extra installed
    raise ImportError(
        "opentelemetry-api is not installed; kreuzberg_webhooks.otel needs it. "
        'Install it with: pip install "kreuzberg-webhooks[otel]"',
        name="opentelemetry",
    ) from exc

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.util.types import AttributeValue

    from .inbox.base import Inbox

__all__ = ["DELIVERY_SPAN", "RECONCILE_SPAN", "OpenTelemetryObserver"]

#: The name of the span recorded for each delivery.
DELIVERY_SPAN = "kreuzberg_webhooks.delivery"
#: The name of the span recorded for each reconcile pass.
RECONCILE_SPAN = "kreuzberg_webhooks.reconcile"

_NAME = "kreuzberg_webhooks"
logger = logging.getLogger("kreuzberg_webhooks")
# The answers given after the handlers ran (a duplicate, a refusal or a queued delivery runs none).
_HANDLERS_RAN = frozenset({"processed", "handler_error"})


class OpenTelemetryObserver:
    """A delivery observer that records an OpenTelemetry span and metrics per delivery.

    Pass it to ``Receiver(on_outcome=...)`` or ``receiver.add_observer(...)``.
    The span is started in the current context, so under an instrumented web
    framework it is a child of the request's span.

    :param tracer_provider: the provider to take the tracer from (default: the
        global one, set by the application's OpenTelemetry setup).
    :param meter_provider: the provider to take the meter from (default: the global one).
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_NAME, __version__, tracer_provider=tracer_provider)
        self._meter = meter = metrics.get_meter(_NAME, __version__, meter_provider=meter_provider)
        self._inboxes: list[tuple[str, Inbox]] = []
        self._reconciled = meter.create_counter(
            "kreuzberg_webhooks.reconcile.jobs",
            unit="{job}",
            description="Tracked jobs a reconcile pass checked, by outcome.",
        )
        self._deliveries = meter.create_counter(
            "kreuzberg_webhooks.deliveries",
            unit="{delivery}",
            description="Webhook deliveries answered, by reason and status code.",
        )
        self._delivery_duration = meter.create_histogram(
            "kreuzberg_webhooks.delivery.duration",
            unit="s",
            description="Time from the start of a delivery to its answer.",
        )
        self._handler_duration = meter.create_histogram(
            "kreuzberg_webhooks.handler.duration",
            unit="s",
            description="Time the handlers of one delivery took, for deliveries whose handlers ran.",
        )

    def __call__(self, report: DeliveryReport) -> None:
        """Record *report*: one span, one count, the durations."""
        labels = _labels(report)
        start = int(report.started_at * 1e9)
        end = start + int(report.total_seconds * 1e9)
        span = self._tracer.start_span(
            DELIVERY_SPAN,
            # "process": a worker or the reconciler ran a trusted event; every other mode answers a request.
            kind=trace.SpanKind.CONSUMER if report.mode == "process" else trace.SpanKind.SERVER,
            start_time=start,
            attributes={**labels, **_span_attributes(report)},
        )
        if report.status_code >= 500:
            # A 5xx asks the sender to retry: the delivery failed. 4xx are the sender's (or a forger's) error.
            span.set_status(trace.Status(trace.StatusCode.ERROR, report.reason))
        span.end(end_time=end)
        self._deliveries.add(1, labels)
        self._delivery_duration.record(report.total_seconds, labels)
        if report.reason in _HANDLERS_RAN:
            self._handler_duration.record(report.handler_seconds, labels)

    def observe_inbox(self, inbox: Inbox, *, name: str = "default") -> None:
        """Report *inbox*'s deliveries per state as the gauge ``kreuzberg_webhooks.inbox.deliveries``.

        Read with ``inbox.counts()`` each time the metrics are collected (a
        sync inbox: the SQLite, PostgreSQL, Redis or Django one). *name* tells
        several inboxes apart (label ``kreuzberg_webhooks.inbox``).
        """
        if not callable(getattr(inbox, "counts", None)):
            raise TypeError("observe_inbox needs an inbox with a counts() method")
        if not self._inboxes:
            self._meter.create_observable_gauge(
                "kreuzberg_webhooks.inbox.deliveries",
                callbacks=[self._observe_inboxes],
                unit="{delivery}",
                description="Deliveries in the inbox, by state: queued (the depth), running, done, dead.",
            )
        self._inboxes.append((name, inbox))

    def _observe_inboxes(self, options: CallbackOptions) -> Iterable[Observation]:
        observations: list[Observation] = []
        for name, inbox in self._inboxes:
            try:
                counts: dict[Any, int] = inbox.counts()
            except Exception as error:
                # An unreachable inbox reports nothing this time; the receiver answers 503 meanwhile.
                logger.warning("inbox %r could not be counted for metrics: %s", name, type(error).__name__)
                continue
            for state, count in counts.items():
                labels = {"kreuzberg_webhooks.inbox": name, "kreuzberg_webhooks.inbox.state": str(state)}
                observations.append(metrics.Observation(count, labels))
        return observations

    def observe_reconciler(self, reconciler: Any) -> None:
        """Record each pass of *reconciler* (a ``Reconciler`` or ``AsyncReconciler``) as a span.

        Its ``run_once`` is wrapped in place, so passes run by ``start()``, by the
        CLI or by your own scheduler are all recorded: the span
        ``kreuzberg_webhooks.reconcile`` with the pass's figures, and the counter
        ``kreuzberg_webhooks.reconcile.jobs`` by ``kreuzberg_webhooks.outcome``
        (``processed``, ``duplicate``, ``pending``, ``retried``, ``failed``).
        With the ``AsyncReconciler`` the delivery spans of the jobs a pass
        dispatches are its children.
        """
        run_once = reconciler.run_once
        if inspect.iscoroutinefunction(run_once):
            reconciler.run_once = self._traced_async(run_once)
        else:
            reconciler.run_once = self._traced(run_once)

    def _traced(self, run_once: Callable[[], Any]) -> Callable[[], Any]:
        @functools.wraps(run_once)
        def traced() -> Any:
            with self._tracer.start_as_current_span(RECONCILE_SPAN, kind=trace.SpanKind.INTERNAL) as span:
                report = run_once()
                self._record_pass(span, report)
            return report

        return traced

    def _traced_async(self, run_once: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        @functools.wraps(run_once)
        async def traced() -> Any:
            with self._tracer.start_as_current_span(RECONCILE_SPAN, kind=trace.SpanKind.INTERNAL) as span:
                report = await run_once()
                self._record_pass(span, report)
            return report

        return traced

    def _record_pass(self, span: trace.Span, report: Any) -> None:
        outcomes = {
            "processed": len(report.processed),
            "duplicate": report.duplicates,
            "pending": report.pending,
            "retried": report.retried,
            "failed": len(report.failed),
        }
        span.set_attributes(
            {
                "kreuzberg_webhooks.reconcile.checked": report.checked,
                "kreuzberg_webhooks.reconcile.children": report.children,
                **{f"kreuzberg_webhooks.reconcile.{name}": count for name, count in outcomes.items()},
            }
        )
        if report.failed:
            # A job the API answered permanently about (404 purged, 400): someone should look.
            span.set_status(trace.Status(trace.StatusCode.ERROR, "jobs failed permanently"))
        for outcome, count in outcomes.items():
            if count:
                self._reconciled.add(count, {"kreuzberg_webhooks.outcome": outcome})


def _labels(report: DeliveryReport) -> dict[str, AttributeValue]:
    """Metric labels: few values each, nothing identifying one delivery."""
    labels: dict[str, AttributeValue] = {
        "http.response.status_code": report.status_code,
        "kreuzberg_webhooks.reason": report.reason,
        "kreuzberg_webhooks.mode": report.mode,
        "kreuzberg_webhooks.via": report.via,
    }
    if report.event_type is not None:
        labels["kreuzberg_webhooks.event_type"] = report.event_type
    return labels


def _span_attributes(report: DeliveryReport) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "kreuzberg_webhooks.duplicate": report.duplicate,
        "kreuzberg_webhooks.verify.duration": report.verify_seconds,
        "kreuzberg_webhooks.store.duration": report.store_seconds,
        "kreuzberg_webhooks.handler.duration": report.handler_seconds,
    }
    if report.event_id is not None:
        attributes["kreuzberg_webhooks.event_id"] = report.event_id
    if report.job_id is not None:
        attributes["kreuzberg_webhooks.job_id"] = report.job_id
    return attributes
