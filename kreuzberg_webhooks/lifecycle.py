"""The delivery lifecycle, written once: verify → claim → handlers → complete or release.

Each flow below is a generator that *decides* and yields the I/O it needs as a
step (:class:`Verify`, :class:`StoreOp`, :class:`Enqueue`, :class:`Dispatch`);
a driver performs the step and sends the result back, or throws the error in.
:func:`run_sync` and :func:`run_async` are the only two drivers, so a rule
changed here changes for every adapter and for both sync and async callers
(the shape of httpx's ``Auth.auth_flow``).

Every flow ends in :func:`conclude`, which writes the one log line of the
delivery and tells the receiver's observers (a :class:`DeliveryReport`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast

from .events import Event
from .exceptions import DeliveryInFlight, HandlerFailed, StoreUnavailable, WebhookError
from .outcome import DeliveryReport, Mode, Outcome, application_answer
from .protocol.keys import delivery_key
from .stores.base import Claim, ClaimState

if TYPE_CHECKING:
    from .receiver import Receiver

__all__ = [
    "Delivery",
    "Dispatch",
    "Enqueue",
    "Flow",
    "StoreOp",
    "Verify",
    "begin",
    "deliver",
    "process",
    "run_async",
    "run_sync",
    "settle",
]

logger = logging.getLogger("kreuzberg_webhooks")

T = TypeVar("T")


# -- the steps a flow yields ---------------------------------------------------

# Where a step's time goes in the delivery's report (an index into _Trace.spent).
# Steps are plain slotted dataclasses, not frozen ones: one is built per store
# call and lives for one yield, and a frozen __init__ costs twice as much.
_VERIFY, _STORE, _HANDLER = 0, 1, 2


class _Trace:
    """What a delivery's :class:`DeliveryReport` is made of: who signed it, and where its time
    went (the drivers add each step's time)."""

    __slots__ = ("scope", "spent", "start", "started_at")

    def __init__(self, scope: str = "") -> None:
        self.scope = scope
        self.started_at = time.time()
        self.start = time.perf_counter()
        #: Seconds spent verifying, in the store (or inbox), in the handlers.
        self.spent = [0.0, 0.0, 0.0]


@dataclass(slots=True, eq=False)
class Verify:
    """Verify a delivery; the driver sends back a ``Verified`` or throws the :class:`WebhookError`."""

    body: bytes
    headers: Mapping[str, str]
    trace: _Trace
    phase = _VERIFY


@dataclass(slots=True, eq=False)
class StoreOp:
    """Call the replay store: ``claim``, ``complete`` or ``release`` with *args*, after
    *delay* seconds (a retry's backoff)."""

    name: Literal["claim", "complete", "release"]
    args: tuple[Any, ...]
    trace: _Trace
    delay: float = 0.0
    phase = _STORE


#: Seconds to wait before each new try of a ``complete`` the store refused (a short outage
#: at mark-done must not leave a handled event to run again once its lease ends).
COMPLETE_RETRY_DELAYS = (0.05, 0.25, 1.0)


@dataclass(slots=True, eq=False)
class Enqueue:
    """Write a verified delivery to the inbox; the driver sends back whether it was new."""

    entry: Any
    trace: _Trace
    phase = _STORE


@dataclass(slots=True, eq=False)
class Dispatch:
    """Run the handlers registered for *event*."""

    event: Event
    trace: _Trace
    phase = _HANDLER


Step: TypeAlias = Verify | StoreOp | Enqueue | Dispatch
Flow: TypeAlias = Generator[Step, Any, T]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified delivery whose event this request has claimed (guard mode).

    Returned by :meth:`Receiver.begin`; settle it with :meth:`Receiver.finish`
    (or :meth:`Receiver.settle`) once the application's code has run.
    """

    event: Event
    key: str
    token: str
    scope: str = ""
    _trace: _Trace = field(default_factory=_Trace, compare=False, repr=False)


# -- the flows ------------------------------------------------------------------


def deliver(rx: Receiver, body: bytes, headers: Mapping[str, str]) -> Flow[Outcome]:
    """Endpoint (or inbox) mode: one delivery from its bytes to the answer."""
    trace = _Trace()
    mode: Mode = "endpoint" if rx.inbox is None else "inbox"
    try:
        verified = yield Verify(body, headers, trace)
    except WebhookError as error:
        return conclude(rx, Outcome.from_error(error), trace, mode)
    event: Event = verified.event
    trace.scope = verified.scope
    key = delivery_key(event, verified.scope)
    if rx.inbox is not None:
        entry = rx.inbox_entry(event, key, verified.scope, body, headers, trace.started_at)
        try:
            new = yield Enqueue(entry, trace)
        except Exception as error:
            return conclude(rx, _store_error(event), trace, mode, store_error=_store_detail(error))
        return conclude(rx, Outcome.queued(event) if new else Outcome.already_processed(event), trace, mode)
    return (yield from _claim_and_run(rx, event, key, trace, "endpoint", "webhook"))


def process(rx: Receiver, event: Event, scope: str, via: str) -> Flow[Outcome]:
    """A trusted event (from the inbox, from the jobs API): claim, run the handlers, settle."""
    return (yield from _claim_and_run(rx, event, delivery_key(event, scope), _Trace(scope), "process", via))


def _claim_and_run(rx: Receiver, event: Event, key: str, trace: _Trace, mode: Mode, via: str) -> Flow[Outcome]:
    try:
        claim: Claim = yield StoreOp("claim", (key, rx.lease), trace)
    except Exception as error:
        return conclude(rx, _store_error(event), trace, mode, via, store_error=_store_detail(error))
    if claim.state is not ClaimState.NEW:
        return conclude(rx, _refused(event, claim), trace, mode, via)
    token = claim.token or ""
    try:
        yield Dispatch(event, trace)
    except Exception as error:
        yield from _release(rx, event, key, token, trace)
        outcome = Outcome.from_error(HandlerFailed(event_id=event.event_id), event, cause=error)
        return conclude(rx, outcome, trace, mode, via, handler_error=error)
    yield from _complete(rx, event, key, token, trace, "mark an event done")
    return conclude(rx, Outcome.processed(event), trace, mode, via)


def begin(rx: Receiver, body: bytes, headers: Mapping[str, str]) -> Flow[Delivery | Outcome]:
    """Guard mode, first half: verify and claim for code the adapter runs itself."""
    trace = _Trace()
    try:
        verified = yield Verify(body, headers, trace)
    except WebhookError as error:
        return conclude(rx, Outcome.from_error(error), trace, "guard")
    event: Event = verified.event
    trace.scope = verified.scope
    key = delivery_key(event, verified.scope)
    try:
        claim: Claim = yield StoreOp("claim", (key, rx.lease), trace)
    except Exception as error:
        return conclude(rx, _store_error(event), trace, "guard", store_error=_store_detail(error))
    if claim.state is not ClaimState.NEW:
        return conclude(rx, _refused(event, claim), trace, "guard")
    return Delivery(event, key, claim.token or "", verified.scope, trace)


def settle(
    rx: Receiver,
    delivery: Delivery,
    status: int | None,
    error: BaseException | None = None,
    *,
    cancelled: bool = False,
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
    event, trace = delivery.event, delivery._trace
    if rx.observers:  # the application's code: what is left of the time since the delivery began
        spent = trace.spent
        spent[_HANDLER] = time.perf_counter() - trace.start - spent[_VERIFY] - spent[_STORE]
    if cancelled:
        logger.warning("webhook request cancelled; claim kept until its lease expires (event_id=%s)", _event_id(event))
        _report(rx, 499, "cancelled", event, trace, "guard", "webhook")
        return None
    if error is None and status is not None and 200 <= status < 300:
        yield from _complete(rx, event, delivery.key, delivery.token, trace, "settle a delivery")
        conclude(rx, application_answer(status, "processed", event), trace, "guard")
        return None
    yield from _release(rx, event, delivery.key, delivery.token, trace, "settle a delivery")
    if error is None and status is not None:
        # The application answered, just not 2xx: its answer stands, and the retry will be processed.
        conclude(rx, application_answer(status, "released", event), trace, "guard")
        return None
    failure = error if error is not None else RuntimeError("the application sent no response")
    outcome = Outcome.from_error(HandlerFailed(event_id=event.event_id), event, cause=failure)
    return conclude(rx, outcome, trace, "guard", handler_error=failure)


def _complete(rx: Receiver, event: Event, key: str, token: str, trace: _Trace, action: str) -> Flow[None]:
    """Mark the event done, tried again after each of :data:`COMPLETE_RETRY_DELAYS`."""
    delays = (0.0, *COMPLETE_RETRY_DELAYS)
    for tries, delay in enumerate(delays, 1):
        try:
            yield StoreOp("complete", (key, token, rx.retention), trace, delay)
            return
        except Exception:
            if tries == len(delays):
                _settle_error(event, action)
            else:
                logger.warning("replay store failed to %s; trying again (event_id=%s)", action, _event_id(event))


def _release(
    rx: Receiver, event: Event, key: str, token: str, trace: _Trace, action: str = "release a claim"
) -> Flow[None]:
    try:
        yield StoreOp("release", (key, token), trace)
    except Exception:
        _settle_error(event, action)


# -- decisions ------------------------------------------------------------------


def _event_id(event: Event | None) -> str:
    if event is None:
        return "-"
    return event.event_id or f"{event.job_id}/{event.type}"


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
    logger.exception("replay store failed to %s (event_id=%s)", action, _event_id(event))


def conclude(
    rx: Receiver,
    outcome: Outcome,
    trace: _Trace,
    mode: Mode,
    via: str = "webhook",
    *,
    store_error: str | None = None,
    handler_error: BaseException | None = None,
) -> Outcome:
    """Write the delivery's one log line, tell the observers, and return *outcome*."""
    if store_error is not None:
        logger.error(
            "replay store unavailable; delivery answered 503 (event_id=%s): %s", _event_id(outcome.event), store_error
        )
    elif handler_error is not None:
        logger.error(
            "webhook handler raised; claim released (event_id=%s)",
            _event_id(outcome.event),
            exc_info=(type(handler_error), handler_error, handler_error.__traceback__),
        )
    elif outcome.status_code < 300:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "webhook delivery %s (status=%d, event_id=%s)",
                outcome.reason,
                outcome.status_code,
                _event_id(outcome.event),
            )
    else:
        logger.warning(
            "webhook delivery rejected: %s (status=%d, event_id=%s)",
            outcome.reason,
            outcome.status_code,
            _event_id(outcome.event),
        )
    _report(rx, outcome.status_code, outcome.reason, outcome.event, trace, mode, via)
    return outcome


def _report(rx: Receiver, status: int, reason: str, event: Event | None, trace: _Trace, mode: Mode, via: str) -> None:
    if not rx.observers:
        return
    report = DeliveryReport(
        status_code=status,
        reason=reason,
        duplicate=reason == "duplicate",
        mode=mode,
        via=via,
        scope=trace.scope,
        event_type=None if event is None else event.type,
        event_id=None if event is None else event.event_id,
        job_id=None if event is None else event.job_id,
        started_at=trace.started_at,
        verify_seconds=trace.spent[_VERIFY],
        store_seconds=trace.spent[_STORE],
        handler_seconds=trace.spent[_HANDLER],
        total_seconds=time.perf_counter() - trace.start,
    )
    for observer in rx.observers:
        try:
            observer(report)
        except Exception:
            logger.exception("a delivery observer raised; the answer is unchanged")


# -- the two drivers --------------------------------------------------------------


def run_sync(rx: Receiver, flow: Flow[T]) -> T:
    """Drive *flow* in this thread: the store, the inbox and the handlers are called directly."""
    value: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value = error = None
        begun = time.perf_counter() if rx.observers else 0.0  # timed only for someone to read
        try:
            value = _perform_sync(rx, step)
        except Exception as failure:
            error = failure
        if begun:
            step.trace.spent[step.phase] += time.perf_counter() - begun


def _perform_sync(rx: Receiver, step: Step) -> Any:
    if isinstance(step, StoreOp):
        if step.delay:
            time.sleep(step.delay)
        return getattr(rx.store, step.name)(*step.args)
    if isinstance(step, Verify):
        return rx.verifier.verify_scoped(step.body, step.headers)
    if isinstance(step, Enqueue):
        return rx.inbox.enqueue(step.entry)
    rx.dispatch(step.event)
    return None


def run_async(rx: Receiver, flow: Flow[T]) -> Coroutine[Any, Any, T]:
    """Drive *flow* on an event loop: async stores and handlers are awaited, blocking ones run in a thread.

    The handlers run in a task of their own. If the request is cancelled while
    they run (a timeout, a client gone, a server shutting down), they are not
    interrupted: the flow goes on in the background and settles the claim when
    they end, so no claim is released while code of its delivery still runs.
    """
    return _drive_async(rx, flow, None)  # the driver's own coroutine: one frame fewer per delivery


async def _drive_async(rx: Receiver, flow: Flow[T], error: Exception | None) -> T:
    # The common steps are performed right here, not in a helper coroutine: on the
    # event loop an extra await per step costs as much as a memory-store claim.
    value: Any = None
    while True:
        try:
            step = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value = error = None
        begun = time.perf_counter() if rx.observers else 0.0  # timed only for someone to read
        try:
            if type(step) is StoreOp:
                if step.delay:
                    await asyncio.sleep(step.delay)
                method = getattr(rx._store, step.name)
                if rx._inline_store:
                    value = method(*step.args)
                elif rx._async_store:
                    value = await method(*step.args)
                else:
                    value = await asyncio.to_thread(method, *step.args)
            elif type(step) is Verify:
                verifier = rx.verifier
                if verifier.is_async:  # an async secret resolver is awaited
                    value = await verifier.verify_scoped_async(step.body, step.headers)
                else:
                    value = verifier.verify_scoped(step.body, step.headers)
            elif type(step) is Dispatch:
                handlers, threaded = rx._table(step.event)
                if threaded:
                    # A thread cannot be stopped: the handlers get a task of their own,
                    # which a cancelled request leaves to finish (and settle) alone.
                    running = asyncio.ensure_future(rx.dispatch_async(step.event))
                    try:
                        await asyncio.shield(running)
                    except asyncio.CancelledError:
                        _detach(_continue_after(rx, flow, running))
                        raise
                elif handlers:
                    # Coroutines only: cancelled with the request, so no code of it runs
                    # on (the claim is then left to its lease).
                    await rx.dispatch_async(step.event)
            else:
                value = await _enqueue_async(rx, cast(Enqueue, step))
        except Exception as failure:
            error = failure
        if begun:
            step.trace.spent[step.phase] += time.perf_counter() - begun


async def _continue_after(rx: Receiver, flow: Flow[Any], handlers: asyncio.Future[None]) -> None:
    """The rest of a cancelled request's flow, once its handlers have ended."""
    error: Exception | None = None
    try:
        await handlers
    except Exception as failure:
        error = failure
    await _drive_async(rx, flow, error)


async def _enqueue_async(rx: Receiver, step: Enqueue) -> Any:
    enqueue = rx.inbox.enqueue
    if inspect.iscoroutinefunction(enqueue):
        return await enqueue(step.entry)
    if getattr(rx.inbox, "nonblocking", False):
        return enqueue(step.entry)
    return await asyncio.to_thread(enqueue, step.entry)


_background: set[asyncio.Task[None]] = set()


def _detach(coroutine: Coroutine[Any, Any, None]) -> None:
    # Keep a reference, or the task could be collected before it settles.
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


# -- running handlers ----------------------------------------------------------------


def run_coroutine(awaitable: Awaitable[T]) -> T:
    """Run *awaitable* to completion from sync code.

    With no event loop in this thread, ``asyncio.run``; with one (sync code
    called from a coroutine, a Jupyter kernel), on a fresh loop in another
    thread, since this thread's loop cannot be re-entered. Either way the
    handler runs: a running loop is never a reason to answer 500.
    """

    async def main() -> T:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kreuzberg-webhooks") as pool:
        return pool.submit(asyncio.run, main()).result()
