"""What one delivery ends in: the answer to send (:class:`Outcome`) and what happened (:class:`DeliveryReport`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from ._hot import slot_setter
from .events import Event
from .exceptions import DeliveryInFlight, MethodNotAllowed, WebhookError

__all__ = ["DeliveryReport", "Mode", "Outcome", "application_answer"]

_JSON = ("content-type", "application/json")

#: How a delivery was handled: answered by the receiver's handlers, by the
#: application's own view (guard), written to the inbox, or a trusted event
#: processed by :meth:`Receiver.process` (the inbox worker, the reconciler).
Mode: TypeAlias = Literal["endpoint", "guard", "inbox", "process"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one delivery, ready for an adapter to send."""

    status_code: int
    #: ``processed``, ``queued``, ``duplicate``, or the error's reason code.
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    event: Event | None = None
    #: The handler's exception, for a ``handler_error`` (never sent: the inbox worker keeps it).
    error: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """Whether the answer is 2xx (the sender will not retry)."""
        return 200 <= self.status_code < 300

    @property
    def duplicate(self) -> bool:
        """Whether the event had already been processed (or queued)."""
        return self.reason == "duplicate"

    @classmethod
    def processed(cls, event: Event) -> Outcome:
        """200: the handlers ran."""
        return _build(200, "processed", _PROCESSED_HEADERS, b'{"status":"processed"}', event)

    @classmethod
    def queued(cls, event: Event) -> Outcome:
        """202: written durably to the inbox; the handlers run later (``docs/contract.md`` §4b)."""
        return _build(202, "queued", _PROCESSED_HEADERS, b'{"status":"queued"}', event)

    @classmethod
    def already_processed(cls, event: Event) -> Outcome:
        """200, marked duplicate: acknowledged, never redone."""
        return _build(200, "duplicate", _DUPLICATE_HEADERS, b'{"status":"duplicate"}', event)

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


_PROCESSED_HEADERS = (_JSON,)
_DUPLICATE_HEADERS = (_JSON, ("x-kreuzberg-duplicate", "true"))
_set_status_code = slot_setter(Outcome, "status_code")
_set_reason = slot_setter(Outcome, "reason")
_set_headers = slot_setter(Outcome, "headers")
_set_body = slot_setter(Outcome, "body")
_set_event = slot_setter(Outcome, "event")
_set_error = slot_setter(Outcome, "error")


def _build(status_code: int, reason: str, headers: tuple[tuple[str, str], ...], body: bytes, event: Event) -> Outcome:
    """``Outcome(...)`` through its slots (``_hot.slot_setter``): every delivery ends in one, and the
    frozen dataclass's ``__init__`` costs as much as a memory-store claim."""
    outcome = Outcome.__new__(Outcome)
    _set_status_code(outcome, status_code)
    _set_reason(outcome, reason)
    _set_headers(outcome, headers)
    _set_body(outcome, body)
    _set_event(outcome, event)
    _set_error(outcome, None)
    return outcome


def application_answer(status_code: int, reason: str, event: Event) -> Outcome:
    """What the application's own view answered (guard mode): its status, for the log and the report."""
    return _build(status_code, reason, (), b"", event)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery came to, for observers (metrics, tracing, audit logs).

    It never holds the body, a secret, a signature or an API key: only the
    answer, the event's identity and the time each phase took.
    """

    status_code: int
    reason: str
    duplicate: bool
    mode: Mode
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
        return 200 <= self.status_code < 300
