"""What one delivery ends in: the answer to send (:class:`Outcome`), what happened
(:class:`DeliveryReport`), and :func:`conclude`, which writes the delivery's one log line and
tells the observers.

Nothing here knows the :class:`~kreuzberg_webhooks.Receiver`: the flows
(:mod:`kreuzberg_webhooks.lifecycle.flows`) and the :class:`~kreuzberg_webhooks.lifecycle.exchange.Exchange`
pass the observers and the timings in as plain values.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeGuard

from ..events import Event
from ..exceptions import DeliveryInFlight, MethodNotAllowed, WebhookError

__all__ = [
    "DeliveryMode",
    "DeliveryReport",
    "Observer",
    "Outcome",
    "Timings",
    "application_answer",
    "application_answered",
    "conclude",
    "event_label",
    "report",
    "succeeded",
]

logger = logging.getLogger("kreuzberg_webhooks")

_JSON = ("content-type", "application/json")

#: How a delivery was handled: answered by the receiver's handlers (``endpoint``), by the
#: application's own view (``guard``), written to the inbox (``inbox``), or a trusted event run
#: by :meth:`Receiver.process` (``process``: the inbox worker, the reconciler).
DeliveryMode: TypeAlias = Literal["endpoint", "guard", "inbox", "process"]


def succeeded(status: object) -> TypeGuard[int]:
    """Whether *status* is a 2xx: the answer after which the sender never retries, and the one
    status of the application's own code that marks its delivery done (guard mode, and a Django
    view's ``handle_event`` run by the inbox worker); anything else releases the claim."""
    return isinstance(status, int) and 200 <= status < 300


class Outcome:
    """The answer to one delivery, ready for an adapter to send.

    A plain class, not a frozen dataclass: one is built for every delivery, and a
    frozen dataclass stores each field through ``object.__setattr__``. Equal when
    everything but :attr:`error` is equal; not hashable.
    """

    __slots__ = ("body", "error", "event", "headers", "reason", "status_code")

    def __init__(
        self,
        status_code: int,
        reason: str,
        headers: tuple[tuple[str, str], ...],
        body: bytes,
        event: Event | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.status_code = status_code
        #: ``processed``, ``queued``, ``duplicate``, or the error's reason code.
        self.reason = reason
        self.headers = headers
        self.body = body
        self.event = event
        #: The handler's exception, for a ``handler_error`` (never sent: the inbox worker keeps it).
        self.error = error

    def __repr__(self) -> str:
        return (
            f"Outcome(status_code={self.status_code!r}, reason={self.reason!r}, headers={self.headers!r}, "
            f"body={self.body!r}, event={self.event!r})"
        )

    def __eq__(self, other: object) -> bool:
        if type(other) is not Outcome:
            return NotImplemented
        return (self.status_code, self.reason, self.headers, self.body, self.event) == (
            other.status_code,
            other.reason,
            other.headers,
            other.body,
            other.event,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable: equal outcomes need not stay equal

    @property
    def ok(self) -> bool:
        """Whether the answer is 2xx (the sender will not retry)."""
        return succeeded(self.status_code)

    @property
    def duplicate(self) -> bool:
        """Whether the event had already been processed (or queued)."""
        return self.reason == "duplicate"

    @classmethod
    def processed(cls, event: Event) -> Outcome:
        """200: the handlers ran."""
        return cls(200, "processed", _PLAIN_HEADERS, b'{"status":"processed"}', event)

    @classmethod
    def queued(cls, event: Event) -> Outcome:
        """202: written durably to the inbox; the handlers run later (``docs/contract.md`` §4b)."""
        return cls(202, "queued", _PLAIN_HEADERS, b'{"status":"queued"}', event)

    @classmethod
    def already_processed(cls, event: Event) -> Outcome:
        """200, marked duplicate: acknowledged, never redone."""
        return cls(200, "duplicate", _DUPLICATE_HEADERS, b'{"status":"duplicate"}', event)

    @classmethod
    def from_error(
        cls, error: WebhookError, event: Event | None = None, *, cause: BaseException | None = None
    ) -> Outcome:
        """The answer for *error*: its status and a small JSON body with the reason code.

        *cause* is what went wrong underneath (the handler's exception), kept on
        :attr:`error` for the code that drives the lifecycle, never sent."""
        headers: tuple[tuple[str, str], ...] = (_JSON,)
        if isinstance(error, DeliveryInFlight):
            headers += (("retry-after", str(error.retry_after)),)
        elif isinstance(error, MethodNotAllowed):
            headers += (("allow", "POST"),)
        body = json.dumps({"error": error.reason, "detail": error.detail}, separators=(",", ":"))
        return cls(error.status_code, error.reason, headers, body.encode(), event, cause)


_PLAIN_HEADERS = (_JSON,)
_DUPLICATE_HEADERS = (_JSON, ("x-kreuzberg-duplicate", "true"))


def application_answer(status_code: int, reason: str, event: Event) -> Outcome:
    """What the application's own view answered (guard mode): its status, for the log and the report."""
    return Outcome(status_code, reason, (), b"", event)


def application_answered(
    status_code: int, reason: str, event: Event, observers: Sequence[Observer], timings: Timings | None, scope: str
) -> None:
    """:func:`conclude` a guarded delivery by what the application's own view answered.

    The same log line and report as ``conclude(application_answer(...), "guard", ...)``;
    when no observer listens and the line's level is off (the usual 2xx), nothing is
    built at all.
    """
    if observers or logger.isEnabledFor(logging.INFO if status_code < 300 else logging.WARNING):
        conclude(application_answer(status_code, reason, event), "guard", observers, timings, scope=scope)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery came to, for observers (metrics, tracing, audit logs).

    It never holds the body, a secret, a signature or an API key: only the
    answer, the event's identity and the time each phase took.
    """

    status_code: int
    reason: str
    duplicate: bool
    mode: DeliveryMode
    #: ``webhook``, ``inbox``, ``reconcile`` …: which path brought the event.
    via: str
    #: Who signed it (``kreuzberg_webhooks.protocol.keys``): ``""`` with static secrets, else the project.
    scope: str
    event_type: str | None
    event_id: str | None
    job_id: str | None
    #: Unix time the delivery started.
    started_at: float
    verify_seconds: float
    store_seconds: float
    handler_seconds: float
    total_seconds: float

    @property
    def ok(self) -> bool:
        """Whether the answer was 2xx."""
        return succeeded(self.status_code)


#: Called once per delivery with its :class:`DeliveryReport`.
Observer: TypeAlias = Callable[[DeliveryReport], None]


class Timings:
    """Where one delivery's time went, for its :class:`DeliveryReport`.

    Kept only when someone observes the deliveries: the drivers add each step's
    seconds to its phase (``verify``, ``store`` or ``handlers``).
    """

    __slots__ = ("handlers", "start", "started_at", "store", "verify")

    def __init__(self) -> None:
        #: Unix time the delivery started.
        self.started_at = time.time()
        #: ``time.perf_counter()`` when it started.
        self.start = time.perf_counter()
        self.verify = 0.0
        self.store = 0.0
        self.handlers = 0.0

    def add(self, phase: Literal["verify", "store", "handlers"], seconds: float) -> None:
        """Count *seconds* more in *phase*."""
        setattr(self, phase, getattr(self, phase) + seconds)


def event_label(event: Event | None) -> str:
    """How the log names *event*: its ``event_id``, else ``job_id/type``, else ``-``."""
    if event is None:
        return "-"
    return event.event_id or f"{event.job_id}/{event.type}"


def conclude(
    outcome: Outcome,
    mode: DeliveryMode,
    observers: Sequence[Observer],
    timings: Timings | None = None,
    *,
    via: str = "webhook",
    scope: str = "",
    store_error: str | None = None,
    handler_error: BaseException | None = None,
) -> Outcome:
    """Write the delivery's one log line, tell the *observers*, and return *outcome*."""
    if store_error is not None:
        logger.error(
            "replay store unavailable; delivery answered 503 (event_id=%s): %s", event_label(outcome.event), store_error
        )
    elif handler_error is not None:
        logger.error(
            "webhook handler raised; claim released (event_id=%s)",
            event_label(outcome.event),
            exc_info=(type(handler_error), handler_error, handler_error.__traceback__),
        )
    elif outcome.status_code < 300:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "webhook delivery %s (status=%d, event_id=%s)",
                outcome.reason,
                outcome.status_code,
                event_label(outcome.event),
            )
    else:
        logger.warning(
            "webhook delivery rejected: %s (status=%d, event_id=%s)",
            outcome.reason,
            outcome.status_code,
            event_label(outcome.event),
        )
    if observers:
        report(observers, outcome.status_code, outcome.reason, outcome.event, timings, mode, via, scope)
    return outcome


def report(
    observers: Sequence[Observer],
    status: int,
    reason: str,
    event: Event | None,
    timings: Timings | None,
    mode: DeliveryMode,
    via: str,
    scope: str,
) -> None:
    """Tell each observer what the delivery came to; an observer that raises changes nothing."""
    if not observers:
        return
    if timings is None:  # the observer was added while the delivery ran
        timings = Timings()
    delivery_report = DeliveryReport(
        status_code=status,
        reason=reason,
        duplicate=reason == "duplicate",
        mode=mode,
        via=via,
        scope=scope,
        event_type=None if event is None else event.type,
        event_id=None if event is None else event.event_id,
        job_id=None if event is None else event.job_id,
        started_at=timings.started_at,
        verify_seconds=timings.verify,
        store_seconds=timings.store,
        handler_seconds=timings.handlers,
        total_seconds=time.perf_counter() - timings.start,
    )
    for observer in observers:
        try:
            observer(delivery_report)
        except Exception:
            logger.exception("a delivery observer raised; the answer is unchanged")
