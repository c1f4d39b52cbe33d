"""The inbox worker: claims due deliveries, runs their handlers once, settles them.

One delivery's life in the worker::

    claim (a lease) → parse the stored body → receiver.process(event, scope=…, via="inbox")
        processed / duplicate   → done
        handler_error           → failed: queued again after the policy's delay, or dead
        in_flight               → given back until the other owner's lease ends (not an attempt)
        store_unavailable       → given back after the first retry delay (not an attempt)

``Receiver.process`` claims the event's delivery key in the receiver's replay
store, so a delivery that also arrived by another path (a second receiver, the
reconciler) still runs its handlers once. A worker killed mid-handler holds
its claim until the lease ends; then any worker takes it again.

Run it embedded — :meth:`InboxWorker.start` (a thread, for WSGI apps) or
:meth:`InboxWorker.start_async` (a task, for ASGI apps), both stopped with the
application (see :mod:`kreuzberg_webhooks.inbox.embed`) — or hand the work to
a task queue (:mod:`kreuzberg_webhooks.inbox.celery`, :mod:`kreuzberg_webhooks.inbox.rq`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import logging
import math
import os
import threading
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..decoding import decode_json
from ..events import Event, parse_event
from ..exceptions import ConfigurationError, StoreUnavailable, WebhookError
from .base import DEFAULT_LEASE, AsyncInbox, DeliveryState, Inbox, InboxClaim, InboxRecord, RetryPolicy

if TYPE_CHECKING:
    from ..receiver import Receiver

__all__ = ["DeliveryFailure", "FailureHook", "InboxWorker"]

logger = logging.getLogger("kreuzberg_webhooks")


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """One failed attempt, as the failure and dead-letter hooks see it."""

    #: The delivery as it was claimed for this attempt (``attempts`` counts it).
    record: InboxRecord
    #: One line: the exception's type and message.
    error: str
    #: When it will be tried again; ``None`` when it went dead.
    retry_at: float | None

    @property
    def dead(self) -> bool:
        """Whether the delivery was given up (parked as dead)."""
        return self.retry_at is None


#: A callable told about a failed attempt (``on_failure``) or a delivery that went dead (``on_dead``).
FailureHook = Callable[[DeliveryFailure], object]


def _describe(error: BaseException) -> str:
    lines = traceback.format_exception_only(type(error), error)
    return (lines[-1] if lines else type(error).__name__).strip()


def _retry_after(outcome: Any, default: float) -> float:
    for name, value in getattr(outcome, "headers", ()):
        if name.lower() == "retry-after":
            with contextlib.suppress(ValueError):
                return max(float(value), 0.1)
    return default


class InboxWorker:
    """Processes the deliveries an inbox holds, each exactly once.

    :param receiver: the receiver whose handlers run and whose replay store
        keeps them exactly once (``Receiver.process``).
    :param inbox: the inbox to read; default ``receiver.inbox``.
    :param policy: when a failed delivery is retried and when it goes dead.
    :param lease: seconds a claimed delivery is held; a worker killed in the
        middle gives it back after this. Longer than your slowest handler.
        Default: the receiver's own lease, which holds the event's claim in the
        replay store just as long.
    :param batch: deliveries claimed at once.
    :param poll_interval: seconds between looks at an empty inbox.
    :param on_failure: called with a :class:`DeliveryFailure` after every failed attempt.
    :param on_dead: called with a :class:`DeliveryFailure` when a delivery goes dead.
    :param clock: wall-clock unix time (the inbox's own clock should agree).
    """

    def __init__(
        self,
        receiver: Receiver,
        inbox: Inbox | AsyncInbox | None = None,
        *,
        policy: RetryPolicy | None = None,
        lease: float | None = None,
        batch: int = 10,
        poll_interval: float = 0.5,
        on_failure: FailureHook | Sequence[FailureHook] = (),
        on_dead: FailureHook | Sequence[FailureHook] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if inbox is None:
            inbox = getattr(receiver, "inbox", None)
            if inbox is None:
                raise ConfigurationError("InboxWorker needs an inbox: pass inbox=, or give the receiver one")
        for operation in ("claim_due", "claim", "complete", "fail", "release"):
            if not callable(getattr(inbox, operation, None)):
                raise ConfigurationError(f"the inbox has no {operation}() method: it cannot feed a worker")
        if lease is None:
            lease = float(getattr(receiver, "lease", DEFAULT_LEASE))
        if not (isinstance(lease, int | float) and math.isfinite(lease) and lease > 0):
            raise ConfigurationError("lease must be a positive, finite number of seconds")
        if type(batch) is not int or batch < 1:
            raise ConfigurationError("batch must be a positive whole number")
        if not (isinstance(poll_interval, int | float) and math.isfinite(poll_interval) and poll_interval > 0):
            raise ConfigurationError("poll_interval must be a positive, finite number of seconds")
        self.receiver = receiver
        self.inbox = inbox
        self.policy = policy if policy is not None else RetryPolicy()
        self.lease = float(lease)
        self.batch = batch
        self.poll_interval = float(poll_interval)
        self.on_failure = _hooks(on_failure)
        self.on_dead = _hooks(on_dead)
        self._clock = clock
        self._async_inbox = inspect.iscoroutinefunction(getattr(inbox, "claim_due", None))
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._async_wake: asyncio.Event | None = None

    # -- one delivery ---------------------------------------------------------------

    def _event(self, claim: InboxClaim) -> Event | str:
        """The stored delivery's event, or why it cannot be read (which no retry can fix)."""
        try:
            data = decode_json(claim.record.entry.body)
            if not isinstance(data, dict):
                return "the stored body is not a JSON object"
            return parse_event(data)
        except WebhookError as error:
            return f"the stored body cannot be parsed: {error.reason}: {error.detail}"

    def _decide(self, claim: InboxClaim, reason: str, outcome: Any, error: BaseException | None) -> _Decision:
        now = self._clock()
        if reason in ("processed", "duplicate"):
            return _Decision(DeliveryState.DONE)
        if reason == "in_flight":
            return _Decision(DeliveryState.QUEUED, release_at=now + _retry_after(outcome, self.lease))
        if reason == "store_unavailable":
            return _Decision(DeliveryState.QUEUED, release_at=now + self.policy.first_delay)
        description = _describe(error) if error is not None else f"handlers failed ({reason})"
        record = claim.record
        retry_at = self.policy.next_attempt(record.attempts, record.entry.received_at, now)
        failure = DeliveryFailure(record, description, retry_at)
        return _Decision(DeliveryState.DEAD if retry_at is None else DeliveryState.QUEUED, failure=failure)

    def _unrunnable(self, claim: InboxClaim) -> Event | _Decision:
        """The event to run, or the decision for a delivery that must not run at all."""
        limit = self.policy.max_attempts
        if limit is not None and claim.record.attempts > limit:
            # Claimed more often than it may be attempted: its workers died each time
            # (a handler that crashes the process). Running it again would kill another.
            error = f"gave up after {claim.record.attempts - 1} attempts whose workers never settled them"
            return _Decision(DeliveryState.DEAD, failure=DeliveryFailure(claim.record, error, None))
        event = self._event(claim)
        if isinstance(event, str):
            return _Decision(DeliveryState.DEAD, failure=DeliveryFailure(claim.record, event, None))
        return event

    def _crashed(self, claim: InboxClaim, error: Exception) -> _Decision:
        # receiver.process itself raised (it answers handler errors with an outcome): count
        # it as a failed attempt rather than leave the delivery leased until its lease ends.
        logger.exception("inbox worker could not process %s", claim.key)
        return self._decide(claim, "handler_error", None, error)

    def process(self, claim: InboxClaim) -> DeliveryState:
        """Run one claimed delivery's handlers and settle it; returns its new state."""
        event = self._unrunnable(claim)
        if isinstance(event, _Decision):
            decision = event
        else:
            try:
                outcome = self.receiver.process(event, scope=claim.record.entry.scope, via="inbox")
                decision = self._decide(claim, outcome.reason, outcome, outcome.error)
            except Exception as error:
                decision = self._crashed(claim, error)
        self._settle(claim, decision)
        return decision.state

    def _settle(self, claim: InboxClaim, decision: _Decision) -> None:
        inbox = cast(Inbox, self.inbox)
        if decision.failure is not None:
            failure = decision.failure
            held = inbox.fail(claim.key, claim.token, failure.error, failure.retry_at)
            self._tell(failure, held)
        elif decision.release_at is not None:
            held = inbox.release(claim.key, claim.token, decision.release_at)
        else:
            held = inbox.complete(claim.key, claim.token)
        if not held:
            # The lease ran out mid-handler and another worker took the delivery:
            # its settlement wins. The replay store kept the handlers to one run.
            logger.warning("inbox lease lost before settling (key=%s); raise the worker's lease", claim.key)

    async def process_async(self, claim: InboxClaim) -> DeliveryState:
        """The async :meth:`process` (``Receiver.process_async``)."""
        event = self._unrunnable(claim)
        if isinstance(event, _Decision):
            decision = event
        else:
            try:
                outcome = await self.receiver.process_async(event, scope=claim.record.entry.scope, via="inbox")
                decision = self._decide(claim, outcome.reason, outcome, outcome.error)
            except Exception as error:
                decision = self._crashed(claim, error)
        await self._settle_async(claim, decision)
        return decision.state

    async def _settle_async(self, claim: InboxClaim, decision: _Decision) -> None:
        if not self._async_inbox:
            await asyncio.to_thread(self._settle, claim, decision)
            return
        inbox = cast(AsyncInbox, self.inbox)
        if decision.failure is not None:
            failure = decision.failure
            held = await inbox.fail(claim.key, claim.token, failure.error, failure.retry_at)
            self._tell(failure, held)
        elif decision.release_at is not None:
            held = await inbox.release(claim.key, claim.token, decision.release_at)
        else:
            held = await inbox.complete(claim.key, claim.token)
        if not held:
            logger.warning("inbox lease lost before settling (key=%s); raise the worker's lease", claim.key)

    def _tell(self, failure: DeliveryFailure, held: bool) -> None:
        if not held:
            return
        if failure.dead:
            logger.error(
                "inbox delivery dead after %d attempts (key=%s, event_id=%s): %s",
                failure.record.attempts,
                failure.record.key,
                failure.record.event_id,
                failure.error,
            )
        else:
            logger.warning(
                "inbox delivery failed, attempt %d; retrying in %.0f s (key=%s): %s",
                failure.record.attempts,
                (failure.retry_at or 0) - self._clock(),
                failure.record.key,
                failure.error,
            )
        for hook in (*self.on_failure, *(self.on_dead if failure.dead else ())):
            try:
                hook(failure)
            except Exception:
                logger.exception("an inbox failure hook raised; the delivery's state is unchanged")

    # -- many deliveries ---------------------------------------------------------------

    def run_once(self) -> int:
        """Claim up to ``batch`` due deliveries and process them; how many were claimed."""
        if self._async_inbox:
            raise ConfigurationError("this worker's inbox is async: use run_once_async or start_async")
        if inspect.iscoroutinefunction(getattr(self.receiver.store, "claim", None)):
            raise ConfigurationError("the receiver's replay store is async: use run_once_async or start_async")
        inbox = cast(Inbox, self.inbox)
        # _busy is held around each step, so a fork() can wait for a moment when this
        # thread holds no database lock (see _before_fork).
        with self._busy:
            claims = inbox.claim_due(self.lease, self.batch)
        for claim in claims:
            with self._busy:
                self.process(claim)
        return len(claims)

    async def run_once_async(self) -> int:
        """The async :meth:`run_once`: the inbox's own coroutines, or a sync inbox in a thread."""
        if self._async_inbox:
            claims = await cast(AsyncInbox, self.inbox).claim_due(self.lease, self.batch)
        else:
            claims = await asyncio.to_thread(cast(Inbox, self.inbox).claim_due, self.lease, self.batch)
        for claim in claims:
            await self.process_async(claim)
        return len(claims)

    def drain(self, *, max_rounds: int = 10_000) -> int:
        """Process until nothing is due; how many deliveries were claimed."""
        total = 0
        for _ in range(max_rounds):
            claimed = self.run_once()
            total += claimed
            if claimed == 0:
                break
        return total

    # -- embedded: a thread ---------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Process deliveries until *stop* (default: :meth:`stop`) is set."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                claimed = self.run_once()
            except StoreUnavailable as error:
                logger.warning("inbox unavailable; the worker waits: %s", error)
                claimed = 0
            except Exception:
                logger.exception("inbox worker error; it carries on")
                claimed = 0
            if claimed < self.batch:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    def start(self) -> None:
        """Run the worker in a daemon thread (for WSGI apps); idempotent.

        The thread follows the application into forked processes (gunicorn
        ``--preload`` imports the app before forking its workers, and a thread
        does not survive ``fork()``): each child starts its own. At interpreter
        exit the thread is stopped after its current delivery.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        if self._async_inbox or inspect.iscoroutinefunction(getattr(self.receiver.store, "claim", None)):
            raise ConfigurationError("an async inbox or replay store runs in a task: use start_async")
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="kreuzberg-inbox-worker", daemon=True)
        self._thread.start()
        if self not in _threaded:
            _threaded.add(self)
            atexit.register(self.stop, 5.0)

    def init_app(self, app: Any) -> None:
        """Flask: run the worker thread for *app* (``worker.init_app(app)``), found again in
        ``app.extensions["kreuzberg_webhooks_inbox"]``; it follows gunicorn's forks."""
        app.extensions["kreuzberg_webhooks_inbox"] = self
        self.start()

    def _restart_in_child(self) -> None:
        # The parent's thread did not come along, and its locks were copied in whatever state.
        self._busy = threading.Lock()
        if self._thread is None or self._stop.is_set():
            return
        self._thread = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after the delivery it is processing (an unfinished one comes
        back after its lease)."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def wake(self) -> None:
        """Look at the inbox now rather than after the poll interval."""
        self._wake.set()
        loop_wake = self._async_wake
        if loop_wake is not None:
            loop_wake.set()

    @property
    def running(self) -> bool:
        """Whether the worker's thread or task is running."""
        return (self._thread is not None and self._thread.is_alive()) or (
            self._task is not None and not self._task.done()
        )

    @contextlib.contextmanager
    def running_thread(self) -> Iterator[InboxWorker]:
        """``with worker.running_thread():`` — started on entry, stopped on exit."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    # -- embedded: an asyncio task -------------------------------------------------------

    async def run_async(self) -> None:
        """Process deliveries on this event loop until cancelled or :meth:`stop_async`."""
        self._async_wake = wake = asyncio.Event()
        while True:
            try:
                claimed = await self.run_once_async()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as error:
                logger.warning("inbox unavailable; the worker waits: %s", error)
                claimed = 0
            except Exception:
                logger.exception("inbox worker error; it carries on")
                claimed = 0
            if claimed < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_interval)
                wake.clear()

    async def start_async(self) -> None:
        """Run the worker as a task on the running loop (for ASGI apps); idempotent."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self.run_async(), name="kreuzberg-inbox-worker")

    async def stop_async(self) -> None:
        """Cancel the task; a delivery it was processing comes back after its lease."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @contextlib.asynccontextmanager
    async def running_task(self) -> AsyncIterator[InboxWorker]:
        """``async with worker.running_task():`` — started on entry, stopped on exit."""
        await self.start_async()
        try:
            yield self
        finally:
            await self.stop_async()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """A Starlette/FastAPI ``lifespan``: ``FastAPI(lifespan=worker.lifespan)``."""
        async with self.running_task():
            yield  # no lifespan state: Starlette would merge a yielded value into it


# -- fork(): a thread does not survive it, and must not be mid-transaction during it ----------
#
# gunicorn --preload imports the app (and starts the worker thread) in the master, then
# forks. A child that inherits a SQLite library state in which another thread held a lock
# finds the database "locked" for good. So each fork waits until every worker thread is
# between two steps, and each child starts a fresh thread.

_threaded: weakref.WeakSet[InboxWorker] = weakref.WeakSet()
_held: list[InboxWorker] = []


def _before_fork() -> None:
    for worker in list(_threaded):
        if worker._thread is not None and worker._thread.is_alive() and worker._busy.acquire(timeout=worker.lease):
            _held.append(worker)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop()._busy.release()


def _after_fork_in_child() -> None:
    _held.clear()
    for worker in list(_threaded):
        worker._restart_in_child()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)


@dataclass(frozen=True, slots=True)
class _Decision:
    state: DeliveryState
    release_at: float | None = None
    failure: DeliveryFailure | None = None


def _hooks(value: FailureHook | Sequence[FailureHook]) -> tuple[FailureHook, ...]:
    hooks = (value,) if callable(value) else tuple(value)
    for hook in hooks:
        if not callable(hook):
            raise ConfigurationError("a failure hook must be callable")
    return hooks
