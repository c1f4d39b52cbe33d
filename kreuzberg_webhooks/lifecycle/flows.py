"""The delivery lifecycle, written once: claim → handlers → complete or release.

A delivery is verified first, by whoever starts its flow (the receiver: with an
``async`` secret resolver, verifying is awaited); a flow starts from the
verified event, and :func:`refused` answers one that failed. Each flow below is
a generator that *decides* and yields the I/O it needs as a step (a tuple:
``("claim", key, lease)``, ``("handlers", event)`` …); whoever drives it
performs the step and sends the result back, or throws the error in
(:mod:`kreuzberg_webhooks.lifecycle.drivers`, with the receiver performing the
steps). The flows take plain values — the lease, the retention, whether there is
an inbox, the observers — and never see the receiver, so a rule changed here
changes for every adapter and for both sync and async callers (the shape of
httpx's ``Auth.auth_flow`` and of :mod:`kreuzberg_webhooks.cloud.policy`).

Every flow ends in :func:`~kreuzberg_webhooks.lifecycle.outcome.conclude`, which writes the
one log line of the delivery and tells the observers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypeVar

from ..events import Event
from ..exceptions import DeliveryInFlight, HandlerFailed, StoreUnavailable, WebhookError
from ..protocol.body import RequestBody
from ..protocol.keys import delivery_key
from ..stores.base import Claim, ClaimState
from .outcome import (
    DeliveryMode,
    Observer,
    Outcome,
    Timings,
    application_answered,
    conclude,
    event_label,
    report,
    succeeded,
)

__all__ = [
    "COMPLETE_RETRY_DELAYS",
    "Delivery",
    "DeliveryStep",
    "Enqueue",
    "Flow",
    "begin",
    "deliver",
    "handle_trusted",
    "phase",
    "refused",
    "settle",
]

logger = logging.getLogger("kreuzberg_webhooks")

T = TypeVar("T")
Phase: TypeAlias = Literal["store", "handlers"]
_NEW = ClaimState.NEW  # read on every delivery: a module global, not an attribute of the enum class


# -- the steps a flow yields ---------------------------------------------------
# A step is a plain tuple whose first item says what to do: three are built for every
# delivery, and a tuple costs less than an instance of a class. What the
# driver sends back:
#   ("claim", key, lease)                 the store's Claim
#   ("complete", key, token, retention)   None
#   ("release", key, token)               None
#   ("sleep", seconds)                    None, after a retry's backoff
#   ("handlers", event, key, token)       None, once the handlers registered for the event ran (the
#                                         claim of *key* by *token* is renewed meanwhile: heartbeat.py)
#   ("enqueue", Enqueue(...))             whether the inbox had not seen the delivery


@dataclass(slots=True, eq=False)
class Enqueue:
    """What an ``enqueue`` step writes to the inbox: a verified delivery."""

    event: Event
    key: str
    scope: str
    body: RequestBody
    headers: Mapping[str, str]
    received_at: float


ClaimStep: TypeAlias = tuple[Literal["claim"], str, float]
CompleteStep: TypeAlias = tuple[Literal["complete"], str, str, float]
ReleaseStep: TypeAlias = tuple[Literal["release"], str, str]
SleepStep: TypeAlias = tuple[Literal["sleep"], float]
HandlersStep: TypeAlias = tuple[Literal["handlers"], Event, str, str]
EnqueueStep: TypeAlias = tuple[Literal["enqueue"], Enqueue]
DeliveryStep: TypeAlias = ClaimStep | CompleteStep | ReleaseStep | SleepStep | HandlersStep | EnqueueStep
Flow: TypeAlias = Generator[DeliveryStep, Any, T]


def phase(step: DeliveryStep) -> Phase:
    """The phase of the delivery's :class:`Timings` a step's time counts in."""
    return "handlers" if step[0] == "handlers" else "store"


#: Seconds to wait before each new try of a ``complete`` the store refused (a short outage
#: at mark-done must not leave a handled event to run again once its lease ends).
COMPLETE_RETRY_DELAYS = (0.05, 0.25, 1.0)


class Delivery:
    """A verified delivery whose event this request has claimed (guard mode).

    Returned by :meth:`Receiver.begin`; settle it with :meth:`Receiver.settle`
    once the application's code has run. A plain class, not a frozen dataclass
    (one is built for every guarded request): equal when everything but
    :attr:`timings` is equal; not hashable.
    """

    __slots__ = ("event", "key", "scope", "timings", "token")

    def __init__(self, event: Event, key: str, token: str, scope: str = "", timings: Timings | None = None) -> None:
        self.event = event
        self.key = key
        self.token = token
        self.scope = scope
        #: Where its time went so far (``None`` when nobody observes the deliveries).
        self.timings = timings

    def __repr__(self) -> str:
        return f"Delivery(event={self.event!r}, key={self.key!r}, token={self.token!r}, scope={self.scope!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Delivery:
            return NotImplemented
        return (self.event, self.key, self.token, self.scope) == (other.event, other.key, other.token, other.scope)

    __hash__ = None  # type: ignore[assignment]  # mutable: equal deliveries need not stay equal


# -- the flows ------------------------------------------------------------------


def refused(error: WebhookError, mode: DeliveryMode, observers: Sequence[Observer], timings: Timings | None) -> Outcome:
    """The answer to a delivery that failed verification: no step, nothing was claimed."""
    return conclude(Outcome.from_error(error), mode, observers, timings)


def deliver(
    event: Event,
    scope: str,
    body: RequestBody,
    headers: Mapping[str, str],
    to_inbox: bool,
    lease: float,
    retention: float,
    observers: Sequence[Observer],
    timings: Timings | None,
) -> Flow[Outcome]:
    """Endpoint (or inbox) mode: one verified delivery, from its event to the answer.

    *scope* says who signed it (``kreuzberg_webhooks.protocol.keys``); *body* and
    *headers* are what the inbox keeps.
    """
    key = delivery_key(event, scope)
    if to_inbox:
        received_at = time.time() if timings is None else timings.started_at
        return _enqueue(event, key, scope, body, headers, received_at, observers, timings)
    return _claim_and_run(event, key, scope, "endpoint", "webhook", lease, retention, observers, timings)


def handle_trusted(
    event: Event,
    scope: str,
    via: str,
    lease: float,
    retention: float,
    observers: Sequence[Observer],
    timings: Timings | None,
) -> Flow[Outcome]:
    """A trusted event (from the inbox, from the jobs API): claim, run the handlers, settle."""
    key = delivery_key(event, scope)
    return _claim_and_run(event, key, scope, "process", via, lease, retention, observers, timings)


def _enqueue(
    event: Event,
    key: str,
    scope: str,
    body: RequestBody,
    headers: Mapping[str, str],
    received_at: float,
    observers: Sequence[Observer],
    timings: Timings | None,
) -> Flow[Outcome]:
    try:
        new = yield ("enqueue", Enqueue(event, key, scope, body, headers, received_at))
    except Exception as error:
        return conclude(_store_error(event), "inbox", observers, timings, scope=scope, store_error=_store_detail(error))
    outcome = Outcome.queued(event) if new else Outcome.already_processed(event)
    return conclude(outcome, "inbox", observers, timings, scope=scope)


def _claim_and_run(
    event: Event,
    key: str,
    scope: str,
    mode: DeliveryMode,
    via: str,
    lease: float,
    retention: float,
    observers: Sequence[Observer],
    timings: Timings | None,
) -> Flow[Outcome]:
    try:
        claim: Claim = yield ("claim", key, lease)
    except Exception as error:
        outcome = _store_error(event)
        return conclude(outcome, mode, observers, timings, via=via, scope=scope, store_error=_store_detail(error))
    if claim.state is not _NEW:
        return conclude(_refused(event, claim), mode, observers, timings, via=via, scope=scope)
    token = claim.token or ""
    try:
        yield ("handlers", event, key, token)
    except Exception as error:
        yield from _release(event, key, token)
        outcome = Outcome.from_error(HandlerFailed(event_id=event.event_id), event, cause=error)
        return conclude(outcome, mode, observers, timings, via=via, scope=scope, handler_error=error)
    try:
        yield ("complete", key, token, retention)
    except Exception:
        yield from _retry_complete(event, key, token, retention, "mark an event done")
    return conclude(Outcome.processed(event), mode, observers, timings, via=via, scope=scope)


def begin(
    event: Event, scope: str, lease: float, observers: Sequence[Observer], timings: Timings | None
) -> Flow[Delivery | Outcome]:
    """Guard mode, first half: claim a verified delivery for code the adapter runs itself."""
    key = delivery_key(event, scope)
    try:
        claim: Claim = yield ("claim", key, lease)
    except Exception as error:
        return conclude(_store_error(event), "guard", observers, timings, scope=scope, store_error=_store_detail(error))
    if claim.state is not _NEW:
        return conclude(_refused(event, claim), "guard", observers, timings, scope=scope)
    return Delivery(event, key, claim.token or "", scope, timings)


def settle(
    delivery: Delivery,
    status: int | None,
    error: BaseException | None,
    cancelled: bool,
    retention: float,
    observers: Sequence[Observer],
) -> Flow[Outcome | None]:
    """Guard mode, second half: settle the claim by how the application's code ended.

    Returns the answer to send when the application sent none (it raised, or
    returned without answering), else ``None``.

    - a 2xx: the event is done;
    - any other status, an exception, or no answer at all: the claim is
      released, so the sender's retry is processed;
    - cancelled (a timeout, the server shutting down): the claim is *kept*
      until its lease expires, since code of this delivery may still be
      running in a thread, and releasing it could run the event twice.
    """
    event, timings, scope = delivery.event, delivery.timings, delivery.scope
    if timings is not None:  # the application's code: what is left of the time since the delivery began
        timings.handlers = time.perf_counter() - timings.start - timings.verify - timings.store
    if cancelled:
        logger.warning(
            "webhook request cancelled; claim kept until its lease expires (event_id=%s)", event_label(event)
        )
        report(observers, 499, "cancelled", event, timings, "guard", "webhook", scope)
        return None
    if error is None and succeeded(status):
        try:
            yield ("complete", delivery.key, delivery.token, retention)
        except Exception:
            yield from _retry_complete(event, delivery.key, delivery.token, retention, "settle a delivery")
        application_answered(status, "processed", event, observers, timings, scope)
        return None
    yield from _release(event, delivery.key, delivery.token, "settle a delivery")
    if error is None and status is not None:
        # The application answered, just not 2xx: its answer stands, and the retry will be processed.
        application_answered(status, "released", event, observers, timings, scope)
        return None
    failure = error if error is not None else RuntimeError("the application sent no response")
    outcome = Outcome.from_error(HandlerFailed(event_id=event.event_id), event, cause=failure)
    return conclude(outcome, "guard", observers, timings, scope=scope, handler_error=failure)


def _retry_complete(event: Event, key: str, token: str, retention: float, action: str) -> Flow[None]:
    """After a ``complete`` the store refused: try again after each of :data:`COMPLETE_RETRY_DELAYS`."""
    for tries, delay in enumerate(COMPLETE_RETRY_DELAYS, 1):
        logger.warning("replay store failed to %s; trying again (event_id=%s)", action, event_label(event))
        yield ("sleep", delay)
        try:
            yield ("complete", key, token, retention)
            return
        except Exception:
            if tries == len(COMPLETE_RETRY_DELAYS):
                _settle_error(event, action)


def _release(event: Event, key: str, token: str, action: str = "release a claim") -> Flow[None]:
    try:
        yield ("release", key, token)
    except Exception:
        _settle_error(event, action)


# -- decisions ------------------------------------------------------------------


def _refused(event: Event, claim: Claim) -> Outcome:
    """The answer to a claim that found the event done or in flight."""
    if claim.state is ClaimState.DONE:
        return Outcome.already_processed(event)
    error = DeliveryInFlight(event_id=event.event_id, retry_after=math.ceil(claim.retry_after))
    return Outcome.from_error(error, event)


def _store_detail(error: BaseException) -> str:
    # A store's own StoreUnavailable says what failed; other exceptions may carry
    # connection URLs with credentials, so only their type is logged.
    return f"StoreUnavailable: {error.detail}" if isinstance(error, StoreUnavailable) else type(error).__name__


def _store_error(event: Event) -> Outcome:
    # The store's own details stay in the log, out of the response.
    return Outcome.from_error(StoreUnavailable(event_id=event.event_id), event)


def _settle_error(event: Event, action: str) -> None:
    # After the handler has run, a store error must not turn into a retry that
    # redoes the work: the lease expires by itself.
    logger.exception("replay store failed to %s (event_id=%s)", action, event_label(event))
