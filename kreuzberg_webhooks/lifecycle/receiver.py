"""The :class:`Receiver`: configuration, the one handler registry, and the entry points adapters call.

Every decision of a delivery — which status answers which situation, when a
claim is taken, completed or released, what is logged — is made once, in the
flows of :mod:`kreuzberg_webhooks.lifecycle.flows`, which are given plain values (the
lease, the retention, the observers) and never see the receiver. The methods
here start a flow, hand it to a driver (:mod:`kreuzberg_webhooks.lifecycle.drivers`, sync
or async) and perform the steps it yields: verify, call the store or the inbox,
run the handlers. ``docs/contract.md`` §4 is the table they implement.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import inspect
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Never, TypeAlias, TypeVar, cast, overload

from ..events import (
    AutoTuneWebhookEvent,
    CrawlJobDocument,
    CrawlWebhookEvent,
    Event,
    EventType,
    JobDocument,
    JobEvent,
    JobStatus,
    UnknownEvent,
    WebhookEvent,
)
from ..exceptions import ConfigurationError, WebhookError
from ..protocol.body import RequestBody
from ..protocol.durations import duration
from ..protocol.headers import header_value
from ..protocol.verify import Secrets, Verified, Verifier
from ..stores.base import AsyncReplayStore, ReplayStore
from ..stores.memory import MemoryStore
from . import flows
from .drivers import AWAIT, run_async, run_coroutine, run_sync
from .exchange import Exchange
from .flows import Delivery, DeliveryStep, Enqueue
from .heartbeat import Heartbeat
from .outcome import Observer, Outcome, Timings

__all__ = [
    "CATCH_ALL",
    "DEFAULT_GUARD_RENEWAL",
    "DEFAULT_LEASE",
    "EVENT_TYPES",
    "UNKNOWN",
    "AutoTuneEventType",
    "CrawlEventType",
    "Delivery",
    "Handler",
    "JobEventType",
    "Observer",
    "Outcome",
    "Receiver",
]

#: Register a handler for every event, of every family, with ``@receiver.on()`` or
#: ``@receiver.on("*")``: the one catch-all, which also sees :class:`UnknownEvent`.
CATCH_ALL = "*"
#: Register a handler for the signed events of families this version does not know
#: (:class:`~kreuzberg_webhooks.UnknownEvent`) with ``@receiver.on("unknown")``.
UNKNOWN = "unknown"
#: How long a claim holds before another request may take the event over.
#: Longer than the sender's 30 s time-out, so a slow handler is not run twice
#: by the next retry (5 s later); shorter than the 5-minute step of the retry
#: schedule, so the event of a worker that died mid-handler is processed then.
#: While the event's handlers run (guard mode: the application's view, for at
#: most :data:`DEFAULT_GUARD_RENEWAL`), the claim is renewed every third of it
#: (``lifecycle/heartbeat.py``): it bounds how long a *dead* process's claim
#: holds, not how long a handler may run.
DEFAULT_LEASE = 120.0
#: The longest guard mode renews a claim (:meth:`Receiver.begin` to :meth:`Receiver.settle`):
#: one hour, or the lease if that is longer. An adapter settles every delivery it began, so
#: this bounds only the renewal of a :class:`Delivery` that something lost, which otherwise
#: would be renewed for as long as the process lives.
DEFAULT_GUARD_RENEWAL = 3600.0
#: ``job.partial_success`` is not an event type of its own (a partial success is
#: a ``job.completed``, ``docs/contract.md`` §2); handlers registered for it run
#: for the completed events whose status is ``partial_success``, before the
#: ``job.completed`` ones see them too.
PARTIAL_SUCCESS = "job.partial_success"
# The plain strings the enum members equal: compared on every delivery.
_JOB_COMPLETED = EventType.JOB_COMPLETED.value
_PARTIAL_SUCCESS = JobStatus.PARTIAL_SUCCESS.value
#: Everything :meth:`Receiver.on` accepts.
EVENT_TYPES: tuple[str, ...] = (*(str(t) for t in EventType), PARTIAL_SUCCESS, UNKNOWN, CATCH_ALL)

#: The handler types of the job family: their handlers take a :class:`JobEvent`, a
#: :class:`WebhookEvent` or a :class:`JobDocument`.
JobEventType: TypeAlias = Literal[
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.partial_success",
    EventType.JOB_COMPLETED,
    EventType.JOB_FAILED,
    EventType.JOB_CANCELLED,
]
#: The handler types of the crawl family: a :class:`CrawlWebhookEvent` or a :class:`CrawlJobDocument`.
CrawlEventType: TypeAlias = Literal[
    "crawl.completed",
    "crawl.failed",
    "crawl.cancelled",
    EventType.CRAWL_COMPLETED,
    EventType.CRAWL_FAILED,
    EventType.CRAWL_CANCELLED,
]
#: The handler types of the auto-tune family: an :class:`AutoTuneWebhookEvent`.
AutoTuneEventType: TypeAlias = Literal[
    "auto_tune.completed", "auto_tune.failed", EventType.AUTO_TUNE_COMPLETED, EventType.AUTO_TUNE_FAILED
]

Handler: TypeAlias = Callable[[Event], Any]
#: An event's handlers, whether any of them runs in a thread on the async path, and whether
#: all of them are plain functions (none is a coroutine function).
_Entry: TypeAlias = tuple[tuple[Handler, ...], bool, bool]
H = TypeVar("H", bound=Handler)
# What on() hands back for each family: the handler, whose parameter may be any of the
# family's shapes (a handler for "job.completed" may take a JobEvent only).
_JobE = TypeVar("_JobE", bound=JobEvent | JobDocument | WebhookEvent)
_CrawlE = TypeVar("_CrawlE", bound=CrawlWebhookEvent | CrawlJobDocument)
_AnyE = TypeVar("_AnyE", bound=Event)
_R = TypeVar("_R")
_AutoTuneH = TypeVar("_AutoTuneH", bound=Callable[[AutoTuneWebhookEvent], Any])
_UnknownH = TypeVar("_UnknownH", bound=Callable[[UnknownEvent], Any])


def check_event_type(event_type: object) -> str:
    """Return *event_type* if a handler registered for it can ever run; else raise :class:`ConfigurationError`."""
    if isinstance(event_type, str) and event_type in EVENT_TYPES:
        return event_type
    guess = difflib.get_close_matches(str(event_type), EVENT_TYPES, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    raise ConfigurationError(
        f"no event of type {event_type!r} is ever delivered{hint}; expected one of {', '.join(EVENT_TYPES)}"
    )


class Receiver:
    """Owns the delivery lifecycle, the handler registry and the observers.

    :param secrets: passed to the :class:`Verifier` (or give *verifier*).
    :param verifier: a ready :class:`Verifier`; then *verifier_options* must be empty.
    :param store: a replay store, sync or async. Default: a :class:`MemoryStore`
        (correct for one process only).
    :param lease: seconds a claim holds before a retry may take over an event
        whose processing never finished (the worker died). While the event's
        handlers run, the claim is renewed every third of the lease, if the
        store can (``renew``: every store of this package), so a handler may
        run longer. Guard mode's claim is renewed too, from :meth:`begin` to
        :meth:`settle`, for at most *guard_renewal*.
    :param retention: seconds a processed event is remembered. Default: the
        longest window the verifier enforces; shorter is refused, since a
        replay inside the window would then be processed again.
    :param guard_renewal: the most seconds guard mode renews a claim while
        the application's view runs: a :class:`Delivery` not settled by then
        (one an adapter lost) is no longer renewed, with a WARNING naming its
        key, and its claim runs out within a lease after that. Default: one
        hour (:data:`DEFAULT_GUARD_RENEWAL`), or the lease if that is longer.
        A value given must be a finite number of seconds no shorter than the
        lease (a view that ends within the lease needs no renewal), else
        :class:`ConfigurationError`.
    :param inbox: an inbox writer: deliveries are written to it durably and
        answered ``202 queued``; a worker runs the handlers later
        (``docs/contract.md`` §4b).
    :param on_outcome: an observer called once per delivery with its
        :class:`DeliveryReport` (more with :meth:`add_observer`).
    :param verifier_options: keyword options of :class:`Verifier`.
    """

    def __init__(
        self,
        secrets: Secrets | None = None,
        *,
        verifier: Verifier | None = None,
        store: ReplayStore | AsyncReplayStore | None = None,
        lease: float = DEFAULT_LEASE,
        retention: float | None = None,
        inbox: Any = None,
        on_outcome: Observer | None = None,
        guard_renewal: float | None = None,
        **verifier_options: Any,
    ) -> None:
        if verifier is None:
            verifier = Verifier(secrets, **verifier_options)
        elif secrets is not None or verifier_options:
            raise ConfigurationError("pass either a verifier or the secrets and verifier options, not both")
        self.lease = duration(lease, "lease")
        # One key per (scope, job, type) whatever the shape, so every key is kept as long as
        # the longest window: a job document may replay a job a small event already closed.
        span = verifier.max_span
        if retention is None:
            retention = span
        elif isinstance(retention, (int, float)) and not retention >= span:  # also refuses NaN
            raise ConfigurationError(
                f"retention ({retention:g} s) is shorter than the replay window ({span:g} s): "
                "a replayed delivery could be processed twice"
            )
        self.retention = duration(retention, "retention")
        if guard_renewal is None:
            guard_renewal = max(DEFAULT_GUARD_RENEWAL, self.lease)
        elif isinstance(guard_renewal, (int, float)) and guard_renewal < self.lease:
            raise ConfigurationError(
                f"guard_renewal ({guard_renewal:g} s) is shorter than the lease ({self.lease:g} s): "
                "a view that ends within the lease needs no renewal"
            )
        self.guard_renewal = duration(guard_renewal, "guard_renewal")
        if inbox is not None and not callable(getattr(inbox, "enqueue", None)):
            raise ConfigurationError("inbox must have an enqueue(entry) method (see kreuzberg_webhooks.inbox)")
        self.verifier = verifier
        self.store = MemoryStore() if store is None else store
        self.inbox = inbox
        self.observers: list[Observer] = []
        if on_outcome is not None:
            self.add_observer(on_outcome)
        self._handlers: dict[str, list[Handler]] = {}
        # The ids of the registered handlers that are coroutine functions (looked
        # up on every async delivery; a handler object need not be hashable).
        self._coroutines: set[int] = set()
        self._handlers_by_kind: dict[str, _Entry] = {}

    # -- the handler registry ------------------------------------------------

    @overload
    def on(self, event_type: JobEventType) -> Callable[[Callable[[_JobE], _R]], Callable[[_JobE], _R]]: ...  # type: ignore[overload-overlap]
    @overload
    def on(self, event_type: CrawlEventType) -> Callable[[Callable[[_CrawlE], _R]], Callable[[_CrawlE], _R]]: ...  # type: ignore[overload-overlap]
    @overload
    def on(self, event_type: AutoTuneEventType) -> Callable[[_AutoTuneH], _AutoTuneH]: ...  # type: ignore[overload-overlap]
    @overload
    def on(self, event_type: Literal["unknown"]) -> Callable[[_UnknownH], _UnknownH]: ...  # type: ignore[overload-overlap]
    @overload
    def on(self, event_type: Literal["*"] = ...) -> Callable[[H], H]: ...  # type: ignore[overload-overlap]
    @overload
    def on(self, event_type: str) -> Callable[[Callable[[_AnyE], _R]], Callable[[_AnyE], _R]]: ...

    def on(self, event_type: str = CATCH_ALL) -> Callable[[Any], Any]:
        """Register a handler for an event type: ``job.completed``, ``job.failed``,
        ``job.cancelled``, ``job.partial_success`` (completed events with a partial
        result), ``crawl.completed``, ``crawl.failed``, ``crawl.cancelled``,
        ``auto_tune.completed``, ``auto_tune.failed``, ``unknown`` (signed events of a
        family this version does not know), or for every event with no argument
        (``"*"``, which sees unknown events too).

        Handlers take the typed event; they may be plain functions or coroutine
        functions, and may be typed for the family's shape they expect (a
        ``job.completed`` handler may take a :class:`JobEvent` only, and type-check).
        Handlers for the type run before catch-alls. A type that is never
        delivered (a typo) is refused here, not discovered in production.
        """
        check_event_type(event_type)

        def register(handler: Callable[[Never], Any]) -> Callable[[Never], Any]:
            self.add_handler(event_type, handler)
            return handler

        return register

    def add_handler(self, event_type: str, handler: Callable[[Never], Any]) -> None:
        """Register *handler* for *event_type* (``"*"`` for every event)."""
        check_event_type(event_type)
        if not callable(handler):
            raise ConfigurationError("a handler must be callable")
        self._handlers.setdefault(event_type, []).append(cast("Handler", handler))
        if inspect.iscoroutinefunction(handler):
            self._coroutines.add(id(handler))
        self._handlers_by_kind.clear()

    def add_observer(self, observer: Observer) -> None:
        """Call *observer* once per delivery with its :class:`DeliveryReport`; it must not raise."""
        if not callable(observer):
            raise ConfigurationError("an observer must be callable")
        self.observers.append(observer)

    def handlers_for(self, event: Event) -> list[Handler]:
        """The handlers that run for *event*, in order."""
        return list(self._lookup(event)[0])

    def _lookup(self, event: Event) -> _Entry:
        """*event*'s handlers, whether any of them runs in a thread on the async path, and
        whether all of them do (none is a coroutine function).

        Looked up on every delivery, so kept per registration they come from (the
        event's type, ``job.partial_success`` or ``unknown``) until a handler is added.
        """
        kind = event.type
        if type(event) is UnknownEvent:  # a family this version does not know: its handlers are "unknown"'s
            kind = UNKNOWN
        elif kind == _JOB_COMPLETED and getattr(event, "status", None) == _PARTIAL_SUCCESS:
            kind = PARTIAL_SUCCESS  # of the job family only (a crawl's is a crawl.completed)
        entry = self._handlers_by_kind.get(kind)
        if entry is None:
            handlers = (
                *(
                    (*self._handlers.get(PARTIAL_SUCCESS, ()), *self._handlers.get(_JOB_COMPLETED, ()))
                    if kind == PARTIAL_SUCCESS
                    else self._handlers.get(kind, ())
                ),
                *self._handlers.get(CATCH_ALL, ()),
            )
            plain = [id(handler) not in self._coroutines for handler in handlers]
            entry = handlers, any(plain), all(plain)
            self._handlers_by_kind[kind] = entry
        return entry

    #: Whether a subclass overrides :meth:`dispatch` / :meth:`dispatch_async` (set per class).
    _own_dispatch = False
    _own_dispatch_async = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._own_dispatch = cls.dispatch is not Receiver.dispatch
        cls._own_dispatch_async = cls.dispatch_async is not Receiver.dispatch_async

    def dispatch(self, event: Event) -> None:
        """Run *event*'s handlers here, in order; a coroutine handler is run to completion.

        Every sync run of the handlers goes through it (also an async caller's delivery run
        in a worker thread), every run on the event loop through :meth:`dispatch_async`: a
        subclass may override them to wrap the handlers (a transaction, a span), calling
        ``super()``'s to run them."""
        for handler in self._lookup(event)[0]:
            result = handler(event)
            if result is not None and inspect.isawaitable(result):  # most handlers return None
                run_coroutine(result)

    def _run_handlers(
        self, event: Event, key: str, token: str, run_awaitable: Callable[[Awaitable[Any]], Any] = run_coroutine
    ) -> None:
        """The ``handlers`` step of the sync path: :meth:`dispatch`, the claim renewed meanwhile
        (a store that cannot renew: the handlers must end within the lease)."""
        heartbeat = self._heartbeat
        if heartbeat is not None:
            heartbeat.hold(key, token, self.lease)
        try:
            if self._own_dispatch:  # a subclass wraps the handlers (a transaction, a span)
                self.dispatch(event)
                return
            for handler in self._lookup(event)[0]:
                result = handler(event)
                if result is not None and inspect.isawaitable(result):  # most handlers return None
                    run_awaitable(result)
        finally:
            if heartbeat is not None:
                heartbeat.drop(key, token)

    async def dispatch_async(self, event: Event) -> None:
        """Run *event*'s handlers on the loop; sync handlers run in a worker thread."""
        for handler in self._lookup(event)[0]:
            if id(handler) in self._coroutines:
                await handler(event)
                continue
            result = await asyncio.to_thread(handler, event)
            if inspect.isawaitable(result):
                await result

    # -- the entry points adapters call ------------------------------------------

    def exchange(self, method: str, headers: Mapping[str, str]) -> Exchange:
        """Start a request at the webhook path: see :class:`~kreuzberg_webhooks.lifecycle.exchange.Exchange`."""
        # Without an inbox nothing needs a streamed body's bytes once it is verified: freed as it is decoded.
        keep = self.inbox is not None
        return Exchange(method, headers, self.verifier.max_body_size, self.observers, self.verifier, keep)

    def handle(self, body: RequestBody, headers: Mapping[str, str]) -> Outcome:
        """Process one delivery synchronously and return the answer to send."""
        verifier, inbox, observers = self.verifier, self.inbox, self.observers
        # require_sync at every delivery (the store, inbox or verifier may have been replaced), called
        # only when something could be async: with no inbox, a sync store and resolver there is nothing to refuse.
        if inbox is not None or self._async_store or verifier.is_async:
            self.require_sync()
        timings = Timings() if observers else None
        try:
            if timings is None:  # nobody observes: nothing to time
                event, scope = verifier.verify_scoped(body, headers)
            else:
                event, scope = self._verify(body, headers, timings)
        except WebhookError as error:
            return flows.refused(error, "endpoint" if inbox is None else "inbox", observers, timings)
        flow = flows.deliver(
            event, scope, body, headers, inbox is not None, self.lease, self.retention, observers, timings
        )
        return run_sync(flow, self._performers, timings)

    async def handle_async(self, body: RequestBody, headers: Mapping[str, str]) -> Outcome:
        """Process one delivery on an event loop; sync handlers run in a worker thread."""
        timings = Timings() if self.observers else None
        try:
            if self.verifier.is_async:  # an async secret resolver is awaited
                event, scope = await self._verify_async(body, headers, timings)
            else:  # one coroutine less per request
                event, scope = self._verify(body, headers, timings)
        except WebhookError as error:
            return flows.refused(error, "endpoint" if self.inbox is None else "inbox", self.observers, timings)
        flow = flows.deliver(
            event, scope, body, headers, self.inbox is not None, self.lease, self.retention, self.observers, timings
        )
        return await run_async(flow, self._perform_async, timings, None, self._perform_now)

    def process(self, event: Event, *, scope: str = "", via: str = "webhook") -> Outcome:
        """Run the handlers of a *trusted* event exactly once (the inbox worker, the reconciler).

        No signature or window check: the caller vouches for the event. The
        claim is keyed like a delivery's (``kreuzberg_webhooks.protocol.keys``), so an
        event that also arrives by webhook runs its handlers once in all. Needs
        a sync store only (:meth:`require_sync_store`): a trusted event is neither
        verified nor enqueued, so the secret resolver and the inbox may be async.
        """
        self.require_sync_store()
        timings = Timings() if self.observers else None
        flow = flows.handle_trusted(event, scope, via, self.lease, self.retention, self.observers, timings)
        return run_sync(flow, self._performers, timings)

    async def process_async(self, event: Event, *, scope: str = "", via: str = "webhook") -> Outcome:
        """The async :meth:`process`.

        With a sync store and handlers that are all plain functions (and one at
        least, or a store that blocks: SQLite, Redis, PostgreSQL), the whole
        delivery — claim, handlers, settlement — runs in one worker thread through
        the sync driver: one hand-off, not one per step and handler. A thread
        cannot be stopped: if the caller is cancelled, that thread still finishes
        the delivery and settles its claim.
        """
        timings = Timings() if self.observers else None
        flow = flows.handle_trusted(event, scope, via, self.lease, self.retention, self.observers, timings)
        handlers, _, plain = self._lookup(event)
        if plain and not self._async_store and (handlers or self._blocking_store):
            performers = self._performers_in_thread(asyncio.get_running_loop())
            return await asyncio.to_thread(run_sync, flow, performers, timings)
        return await run_async(flow, self._perform_async, timings, None, self._perform_now)

    # -- guard mode: the application's own view is the handler -----------------

    def begin(self, body: bytes, headers: Mapping[str, str]) -> Delivery | Outcome:
        """Verify and claim a delivery for code the adapter runs itself.

        Returns a :class:`Delivery` when this request owns the event, or the
        :class:`Outcome` to send at once (an error, a duplicate, in flight).
        The delivery's claim is renewed every third of the lease until it is
        settled (:meth:`settle`), for at most :attr:`guard_renewal` seconds.
        """
        self.require_sync()
        timings = Timings() if self.observers else None
        try:
            event, scope = self._verify(body, headers, timings)
        except WebhookError as error:
            return flows.refused(error, "guard", self.observers, timings)
        began = run_sync(flows.begin(event, scope, self.lease, self.observers, timings), self._performers, timings)
        heartbeat = self._heartbeat
        if heartbeat is not None and type(began) is Delivery:  # renewed until settle, or the limit
            heartbeat.hold_for(began.key, began.token, self.lease, self.guard_renewal)
        return began

    async def begin_async(self, body: bytes, headers: Mapping[str, str]) -> Delivery | Outcome:
        """The async :meth:`begin`."""
        timings = Timings() if self.observers else None
        try:
            if self.verifier.is_async:  # an async secret resolver is awaited
                event, scope = await self._verify_async(body, headers, timings)
            else:  # one coroutine less per guarded request
                event, scope = self._verify(body, headers, timings)
        except WebhookError as error:
            return flows.refused(error, "guard", self.observers, timings)
        flow = flows.begin(event, scope, self.lease, self.observers, timings)
        began = await run_async(flow, self._perform_async, timings, None, self._perform_now)
        heartbeat = self._heartbeat
        if heartbeat is not None and type(began) is Delivery:  # an async store's claim is renewed on this loop
            loop = asyncio.get_running_loop() if self._async_store else None
            heartbeat.hold_for(began.key, began.token, self.lease, self.guard_renewal, loop)
        return began

    def settle(
        self,
        delivery: Delivery,
        status: int | None,
        error: BaseException | None = None,
        *,
        cancelled: bool = False,
    ) -> Outcome | None:
        """Settle a :class:`Delivery` by how the application's code ended.

        A 2xx marks the event done; another status, an exception or no answer
        releases the claim (the sender retries and the retry is processed);
        *cancelled* keeps the claim until its lease expires. Whichever it is, the
        claim is no longer renewed from here on. Returns the answer to send when
        the application sent none, else ``None``. Needs a sync store only
        (:meth:`require_sync_store`): settling neither verifies nor enqueues.
        """
        heartbeat = self._heartbeat
        if heartbeat is not None:
            heartbeat.drop(delivery.key, delivery.token)
        self.require_sync_store()
        flow = flows.settle(delivery, status, error, cancelled, self.retention, self.observers)
        return run_sync(flow, self._performers, delivery.timings)

    async def settle_async(
        self,
        delivery: Delivery,
        status: int | None,
        error: BaseException | None = None,
        *,
        cancelled: bool = False,
    ) -> Outcome | None:
        """The async :meth:`settle`."""
        heartbeat = self._heartbeat
        if heartbeat is not None:
            heartbeat.drop(delivery.key, delivery.token)
        flow = flows.settle(delivery, status, error, cancelled, self.retention, self.observers)
        return await run_async(flow, self._perform_async, delivery.timings, None, self._perform_now)

    def finish(self, delivery: Delivery, status_code: int) -> None:
        """Deprecated: ``settle(delivery, status_code)``, the one name for settling a delivery."""
        warnings.warn("Receiver.finish is deprecated: use Receiver.settle", DeprecationWarning, stacklevel=2)
        self.settle(delivery, status_code)

    async def finish_async(self, delivery: Delivery, status_code: int) -> None:
        """Deprecated: ``settle_async(delivery, status_code)``."""
        warnings.warn(
            "Receiver.finish_async is deprecated: use Receiver.settle_async", DeprecationWarning, stacklevel=2
        )
        await self.settle_async(delivery, status_code)

    # -- verifying, and performing the flows' steps ----------------------------------
    # A flow starts from a verified delivery: verifying is no step of it, so a delivery
    # costs no round trip through the driver for it. The sync path performs a step with
    # the callable its name picks in ``_performers`` (set with the store); the async path
    # dispatches step type by step type, since how it awaits depends on the step.

    def _verify(self, body: RequestBody, headers: Mapping[str, str], timings: Timings | None) -> Verified:
        if timings is None:
            return self.verifier.verify_scoped(body, headers)
        begun = time.perf_counter()
        try:
            return self.verifier.verify_scoped(body, headers)
        finally:
            timings.verify += time.perf_counter() - begun

    async def _verify_async(self, body: RequestBody, headers: Mapping[str, str], timings: Timings | None) -> Verified:
        # With an async secret resolver only: a sync one is verified inline (_verify), no coroutine.
        begun = 0.0 if timings is None else time.perf_counter()
        try:
            return await self.verifier.verify_scoped_async(body, headers)
        finally:
            if timings is not None:
                timings.verify += time.perf_counter() - begun

    def _performers_in_thread(self, loop: asyncio.AbstractEventLoop) -> dict[str, Callable[..., Any]]:
        """:attr:`_performers` for a flow an async caller runs in a worker thread: an awaitable
        a plain handler returns is awaited on the caller's *loop*, as :meth:`dispatch_async` does."""

        def on_loop(awaitable: Awaitable[Any]) -> Any:
            return asyncio.run_coroutine_threadsafe(_awaited(awaitable), loop).result()

        return {**self._performers, "handlers": functools.partial(self._run_handlers, run_awaitable=on_loop)}

    def _enqueue(self, step: Enqueue) -> Any:
        return self.inbox.enqueue(self._inbox_entry(step))

    def _perform_now(self, step: DeliveryStep) -> Any:
        # A call of a store that never blocks (the in-memory one) is made on the loop, at
        # once: no coroutine, no await. Every other step is awaited (drivers.AWAIT).
        if self._inline_store:
            if step[0] == "claim":
                return self._store.claim(step[1], step[2])
            if step[0] == "complete":
                return self._store.complete(step[1], step[2], step[3])
            if step[0] == "release":
                return self._store.release(step[1], step[2])
        return AWAIT

    async def _perform_async(self, step: DeliveryStep) -> Any:
        if step[0] == "handlers":
            event, key, token = step[1], step[2], step[3]
            handlers, threaded, _ = self._lookup(event)
            heartbeat = self._heartbeat
            if heartbeat is not None:  # an async store's claim is renewed on this loop
                heartbeat.hold(key, token, self.lease, asyncio.get_running_loop() if self._async_store else None)
            if threaded or self._own_dispatch_async:
                # A thread cannot be stopped: the handlers get a task of their own (the
                # driver lets a cancelled request leave it to finish, and settle, alone);
                # so do a subclass's dispatch_async, which may start threads of its own.
                work = asyncio.ensure_future(self.dispatch_async(event))
                if heartbeat is not None:
                    work.add_done_callback(lambda _: heartbeat.drop(key, token))
                return work
            # Coroutine functions only, awaited here (no dispatch_async coroutine): cancelled with
            # the request (the claim is then left to its lease).
            try:
                for handler in handlers:
                    await handler(event)
            finally:
                if heartbeat is not None:
                    heartbeat.drop(key, token)
            return None
        if step[0] == "enqueue":
            entry, enqueue = self._inbox_entry(step[1]), self.inbox.enqueue
            if inspect.iscoroutinefunction(enqueue):
                return await enqueue(entry)
            if getattr(self.inbox, "nonblocking", False):
                return enqueue(entry)
            return await asyncio.to_thread(enqueue, entry)
        if step[0] == "sleep":
            return await asyncio.sleep(step[1])
        call = getattr(self._store, step[0])  # claim, complete, release (a nonblocking store's: _perform_now)
        if self._async_store:
            return await call(*step[1:])
        return await asyncio.to_thread(call, *step[1:])

    def _inbox_entry(self, step: Enqueue) -> Any:
        """What the inbox keeps of a verified delivery: the body and the headers that verify it again."""
        from ..inbox.base import InboxEntry  # the inbox is optional: imported when it is used

        event, headers = step.event, step.headers
        wanted = (self.verifier.header.lower(), "x-idempotency-key")
        kept = tuple((name, value) for name in wanted if (value := header_value(headers, name)) is not None)
        return InboxEntry(
            key=step.key,
            scope=step.scope,
            event_id=event.event_id,
            event_type=event.type,
            job_id=event.job_id or "",  # "" for an unknown family's event: keyed by its event_id
            body=step.body if type(step.body) is bytes else step.body.bytes(),  # type: ignore[union-attr]
            headers=kept,
            received_at=step.received_at,
        )

    @property
    def store(self) -> ReplayStore | AsyncReplayStore:
        """The replay store."""
        return self._store

    @store.setter
    def store(self, store: ReplayStore | AsyncReplayStore) -> None:
        self._store = store
        self._async_store = inspect.iscoroutinefunction(getattr(store, "claim", None))
        # A sync store that never blocks (the in-memory one) is called on the loop, no thread.
        self._inline_store = not self._async_store and bool(getattr(store, "nonblocking", False))
        # A sync store that blocks: an async caller's trusted event runs in one thread (process_async).
        self._blocking_store = not self._async_store and not self._inline_store
        # Renews the claims of the events whose handlers run, if the store can (heartbeat.py).
        renew = getattr(store, "renew", None)
        self._heartbeat = Heartbeat(renew) if callable(renew) else None
        # What performs each step of a flow on the sync path (drivers.run_sync), by the step's name.
        self._performers: dict[str, Callable[..., Any]] = {
            "claim": store.claim,
            "complete": store.complete,
            "release": store.release,
            "handlers": self._run_handlers,
            "enqueue": self._enqueue,
            "sleep": time.sleep,
        }

    def require_sync(self) -> None:
        """Raise :class:`ConfigurationError` unless the sync entry points can work: a sync store,
        inbox and secret resolver.

        Sync adapters (WSGI, Flask) call it when they are set up, so an async
        store is refused at start-up rather than answered 500 per delivery.
        """
        if self.verifier.is_async:
            raise ConfigurationError("the secret resolver is a coroutine function: use handle_async (an ASGI app)")
        self.require_sync_store()
        if self.inbox is not None and inspect.iscoroutinefunction(self.inbox.enqueue):
            raise ConfigurationError("this receiver's inbox is async: use handle_async")

    def require_sync_store(self) -> None:
        """Raise :class:`ConfigurationError` unless the store is sync: all :meth:`process` needs.

        A trusted event is neither verified nor enqueued, so a receiver whose
        secret resolver or inbox is async may still process one synchronously
        (an inbox worker's or a reconciler's thread); :meth:`require_sync` checks
        what the other sync entry points need as well.
        """
        if self._async_store:
            raise ConfigurationError(
                "this receiver's store is async: use handle_async, begin_async, settle_async or process_async"
            )


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    """A coroutine awaiting *awaitable* (what ``asyncio.run_coroutine_threadsafe`` takes)."""
    return await awaitable
