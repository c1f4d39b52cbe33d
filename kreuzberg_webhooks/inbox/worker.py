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
application (:mod:`kreuzberg_webhooks.inbox.asgi` ties one to an ASGI lifespan) — or hand the work to
a task queue (:mod:`kreuzberg_webhooks.inbox.celery`, :mod:`kreuzberg_webhooks.inbox.rq`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import inspect
import logging
import math
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..events import Event, parse_event
from ..exceptions import ConfigurationError, StoreUnavailable, WebhookError
from ..lifecycle.heartbeat import Heartbeat
from ..protocol.decoding import decode_json
from ..protocol.durations import duration
from .base import DEFAULT_LEASE, AsyncInbox, DeliveryState, Inbox, InboxClaim, InboxRecord, RetryPolicy

if TYPE_CHECKING:
    from ..lifecycle.receiver import Receiver

__all__ = ["DeliveryFailure", "FailureHook", "InboxWorker"]

logger = logging.getLogger("kreuzberg_webhooks")

#: Seconds a stopping worker waits for the deliveries it is processing (see ``shutdown_grace``).
DEFAULT_SHUTDOWN_GRACE = 30.0
#: Seconds to wait before each new try of a settlement the inbox refused (then, while the
#: lease holds, every last one of them).
SETTLE_RETRY_DELAYS = (0.1, 0.5, 2.0)
_REMEMBERED = 10_000
#: The most seconds the worker waits, before each delivery, while requests of its process wait
#: for their acknowledgement's commit (an inbox that can tell: ``acknowledging()``, SQLite's).
GIVE_WAY = 0.1
_GIVE_WAY_POLL = 0.002


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
    :param shutdown_grace: seconds :meth:`stop` and :meth:`stop_async` (an ASGI
        ``lifespan.shutdown``, a SIGTERM) wait for the deliveries being processed to
        finish and be settled; one still running after it comes back after its lease.
    :param clock: wall-clock unix time (the inbox's own clock should agree).

    While a handler runs, the worker renews its claim every third of the lease
    (a heartbeat: ``inbox.renew``; one thread per worker, the kind the receiver
    keeps for its replay store's claims, renews every claim it holds; an async
    inbox's on the event loop it was made on), so a handler may take longer
    than the lease and only a dead worker's claim runs out (``Receiver.process``
    renews the event's claim in the replay store alike). A delivery whose
    handlers ran but whose settlement the inbox refused is settled again, with
    a backoff, for as long as its lease holds; if the inbox is still down, this
    worker remembers the delivery as finished and settles it without running it
    again when it claims it next.
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
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
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
        lease = duration(lease, "lease")
        if type(batch) is not int or batch < 1:
            raise ConfigurationError("batch must be a positive whole number")
        poll_interval = duration(poll_interval, "poll_interval")
        shutdown_grace = duration(shutdown_grace, "shutdown_grace", allow_zero=True)
        self.receiver = receiver
        self.inbox = inbox
        self.policy = policy if policy is not None else RetryPolicy()
        self.lease = float(lease)
        self.batch = batch
        self.poll_interval = float(poll_interval)
        self.on_failure = _hooks(on_failure)
        self.on_dead = _hooks(on_dead)
        self.shutdown_grace = float(shutdown_grace)
        self._clock = clock
        # Deliveries whose handlers ran but whose "done" the inbox would not take: a later
        # claim of one is settled without running it again (bounded, oldest forgotten first).
        self._finished: dict[str, None] = {}
        self._stopping = False
        self._outer_stop: threading.Event | None = None
        self._deferred = False  # started in a gunicorn master: the thread starts in its workers
        self._async_inbox = inspect.iscoroutinefunction(getattr(inbox, "claim_due", None))
        acknowledging = getattr(inbox, "acknowledging", None)
        self._acknowledging: Callable[[], bool] | None = (
            acknowledging if callable(acknowledging) and not inspect.iscoroutinefunction(acknowledging) else None
        )
        self._thread: threading.Thread | None = None
        self._busy = threading.Lock()
        # One heartbeat for every claim this worker holds, the one the receiver uses for its
        # replay store's claims: its thread starts with the first claim, and a fork() waits for
        # its renewal (lifecycle/heartbeat.py); an async inbox's claims are renewed on the event
        # loop they were made on. A batch's finished deliveries keep their heartbeat until the
        # batch is marked done.
        renew = getattr(inbox, "renew", None)
        self._async_renew = inspect.iscoroutinefunction(renew)
        self._beats = (
            Heartbeat(renew, claim="inbox lease", lost=_LOST, thread="kreuzberg-inbox-heartbeat")
            if callable(renew)
            else None
        )
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

    def _already_finished(self, claim: InboxClaim) -> _Decision | None:
        if claim.key not in self._finished:
            return None
        logger.warning("inbox delivery's handlers already ran here; settling it as done (key=%s)", claim.key)
        return _Decision(DeliveryState.DONE)

    def _run(self, claim: InboxClaim) -> _Decision:
        event = self._unrunnable(claim)
        if isinstance(event, _Decision):
            return event
        try:
            outcome = self.receiver.process(event, scope=claim.record.entry.scope, via="inbox")
        except Exception as error:
            return self._crashed(claim, error)
        return self._decide(claim, outcome.reason, outcome, outcome.error)

    async def _run_async(self, claim: InboxClaim) -> _Decision:
        event = self._unrunnable(claim)
        if isinstance(event, _Decision):
            return event
        try:
            outcome = await self.receiver.process_async(event, scope=claim.record.entry.scope, via="inbox")
        except Exception as error:
            return self._crashed(claim, error)
        return self._decide(claim, outcome.reason, outcome, outcome.error)

    def process(self, claim: InboxClaim) -> DeliveryState:
        """Run one claimed delivery's handlers and settle it; returns its new state."""
        return self._process(claim, None)

    def _process(self, claim: InboxClaim, finished: list[_Finished] | None) -> DeliveryState:
        """:meth:`process`; a delivery that is done joins *finished* (heartbeat still running)
        instead, to be marked done with the rest of its batch (:meth:`_complete_all`)."""
        heartbeat = self._heartbeat(claim)
        later = False
        try:
            decision = self._already_finished(claim) or self._run(claim)
            if finished is not None and decision == _DONE:
                finished.append(_Finished(claim, heartbeat))
                later = True
            else:
                self._settle(claim, decision)
        finally:
            if not later:
                heartbeat()
        return decision.state

    def _give_way(self) -> None:
        """Wait (up to ``GIVE_WAY``) while requests of this process wait for their acknowledgement:
        in one process the handlers and the requests share one interpreter lock, and the
        handlers can run a moment later while a sender waits for each answer."""
        acknowledging = self._acknowledging
        if acknowledging is None:
            return
        deadline = time.monotonic() + GIVE_WAY
        while acknowledging() and time.monotonic() < deadline:
            time.sleep(_GIVE_WAY_POLL)

    async def _give_way_async(self) -> None:
        """The async :meth:`_give_way`."""
        acknowledging = self._acknowledging
        if acknowledging is None:
            return
        deadline = time.monotonic() + GIVE_WAY
        while acknowledging() and time.monotonic() < deadline:
            await asyncio.sleep(_GIVE_WAY_POLL)

    def _batched(self) -> list[_Finished] | None:
        """A list for a batch's finished deliveries when the inbox marks many done in one write."""
        return [] if callable(getattr(self.inbox, "complete_many", None)) else None

    def _complete_all(self, finished: list[_Finished] | None) -> None:
        """Mark a batch's finished deliveries done in one write; one by one (with the retries
        of :meth:`_settle`) if the inbox refuses it."""
        if not finished:
            return
        try:
            held = cast(Any, self.inbox).complete_many([(done.claim.key, done.claim.token) for done in finished])
        except Exception as error:
            logger.warning("inbox refused to mark %d deliveries done; one at a time: %s", len(finished), error)
            for done in finished:
                try:
                    self._settle(done.claim, _DONE)
                finally:
                    done.stop()
            return
        self._settled_together(finished, held)

    def _settled_together(self, finished: list[_Finished], held: Sequence[bool]) -> None:
        for done, holds in zip(finished, held, strict=True):
            done.stop()
            self._finished.pop(done.claim.key, None)
            if not holds:
                logger.warning("inbox lease lost before settling (key=%s); raise the worker's lease", done.claim.key)

    def _heartbeat(self, claim: InboxClaim) -> Callable[[], None]:
        """Renew *claim*'s lease every third of it until the returned function is called
        (the worker's one heartbeat thread renews every claim it holds)."""
        beats = self._beats
        if beats is None or self._async_renew:  # an async inbox's: on its loop (_heartbeat_async)
            return _nothing
        key, token = claim.key, claim.token
        beats.hold(key, token, self.lease)
        return functools.partial(beats.drop, key, token)

    def _settle(self, claim: InboxClaim, decision: _Decision) -> None:
        for delay in (*SETTLE_RETRY_DELAYS, None):
            try:
                self._settle_once(claim, decision)
            except Exception as error:
                if not self._settle_again(claim, decision, delay, error):
                    return
                time.sleep(delay or 0.0)
            else:
                self._finished.pop(claim.key, None)
                return

    def _settle_again(self, claim: InboxClaim, decision: _Decision, delay: float | None, error: Exception) -> bool:
        """Whether to try a refused settlement again after *delay*; else remember a finished one."""
        if delay is not None and self._clock() + delay < (claim.record.lease_expires_at or 0.0) + self._renewed():
            logger.warning("inbox refused to settle %s; trying again in %.1f s: %s", claim.key, delay, error)
            return True
        logger.error("inbox refused to settle %s; it comes back after its lease: %s", claim.key, error)
        if decision.state is DeliveryState.DONE:
            self._finished[claim.key] = None
            while len(self._finished) > _REMEMBERED:
                self._finished.pop(next(iter(self._finished), ""), None)
        return False

    def _renewed(self) -> float:
        # With a heartbeat the lease is renewed for as long as the settlement is tried.
        return math.inf if callable(getattr(self.inbox, "renew", None)) else 0.0

    def _settle_once(self, claim: InboxClaim, decision: _Decision) -> None:
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
        return await self._process_async(claim, None)

    async def _process_async(self, claim: InboxClaim, finished: list[_Finished] | None) -> DeliveryState:
        """The async :meth:`_process`."""
        heartbeat = self._heartbeat_async(claim)
        later = False
        try:
            decision = self._already_finished(claim) or await self._run_async(claim)
            if finished is not None and decision == _DONE:
                finished.append(_Finished(claim, heartbeat))
                later = True
            else:
                await self._settle_async(claim, decision)
        finally:
            if not later:
                heartbeat()
        return decision.state

    async def _complete_all_async(self, finished: list[_Finished] | None) -> None:
        """The async :meth:`_complete_all`."""
        if not finished:
            return
        pairs = [(done.claim.key, done.claim.token) for done in finished]
        many = cast(Any, self.inbox).complete_many
        try:
            held = await many(pairs) if self._async_inbox else await asyncio.to_thread(many, pairs)
        except Exception as error:
            logger.warning("inbox refused to mark %d deliveries done; one at a time: %s", len(finished), error)
            for done in finished:
                try:
                    await self._settle_async(done.claim, _DONE)
                finally:
                    done.stop()
            return
        self._settled_together(finished, held)

    def _heartbeat_async(self, claim: InboxClaim) -> Callable[[], None]:
        """:meth:`_heartbeat` on the event loop: an async inbox's claim is held with the running
        loop, and the worker's heartbeat thread has it renewed there."""
        beats = self._beats
        if beats is None or not self._async_renew:
            return self._heartbeat(claim)
        key, token = claim.key, claim.token
        beats.hold(key, token, self.lease, asyncio.get_running_loop())
        return functools.partial(beats.drop, key, token)

    async def _settle_async(self, claim: InboxClaim, decision: _Decision) -> None:
        for delay in (*SETTLE_RETRY_DELAYS, None):
            try:
                await self._settle_once_async(claim, decision)
            except Exception as error:
                if not self._settle_again(claim, decision, delay, error):
                    return
                await asyncio.sleep(delay or 0.0)
            else:
                self._finished.pop(claim.key, None)
                return

    async def _settle_once_async(self, claim: InboxClaim, decision: _Decision) -> None:
        if not self._async_inbox:
            await asyncio.to_thread(self._settle_once, claim, decision)
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
        """Claim up to ``batch`` due deliveries and process them; how many were claimed.

        Once the worker is stopping, the claimed deliveries not yet started are given back.
        """
        if self._async_inbox:
            raise ConfigurationError("this worker's inbox is async: use run_once_async or start_async")
        if inspect.iscoroutinefunction(getattr(self.receiver.store, "claim", None)):
            raise ConfigurationError("the receiver's replay store is async: use run_once_async or start_async")
        inbox = cast(Inbox, self.inbox)
        # _busy is held around each step, so a fork() can wait for a moment when this
        # thread holds no database lock (see _before_fork).
        with self._busy:
            claims = inbox.claim_due(self.lease, self.batch)
        finished = self._batched()
        try:
            for claim in claims:
                if not self._halting():
                    self._give_way()
                with self._busy:
                    if self._halting():
                        inbox.release(claim.key, claim.token, self._clock())
                    else:
                        self._process(claim, finished)
        finally:
            with self._busy:
                self._complete_all(finished)
        return len(claims)

    def _halting(self) -> bool:
        # Only while run() or run_async() is stopping: drain() after a stop still processes.
        outer = self._outer_stop
        return self._stopping or (outer is not None and outer.is_set())

    async def run_once_async(self) -> int:
        """The async :meth:`run_once`: the inbox's own coroutines, or a sync inbox in a thread."""
        if self._async_inbox:
            claims = await cast(AsyncInbox, self.inbox).claim_due(self.lease, self.batch)
        else:
            claims = await asyncio.to_thread(cast(Inbox, self.inbox).claim_due, self.lease, self.batch)
        finished = self._batched()
        try:
            for claim in claims:
                if not self._stopping:
                    await self._give_way_async()
                if not self._stopping:
                    await self._process_async(claim, finished)
                elif self._async_inbox:
                    await cast(AsyncInbox, self.inbox).release(claim.key, claim.token, self._clock())
                else:
                    await asyncio.to_thread(cast(Inbox, self.inbox).release, claim.key, claim.token, self._clock())
        finally:
            await self._complete_all_async(finished)
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
        self._outer_stop = stop
        try:
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
        finally:
            self._outer_stop = None
            if self._beats is not None:
                self._beats.stop(join=True)  # no renewal left half-written by a stopped worker

    def start(self) -> None:
        """Run the worker in a daemon thread (for WSGI apps); idempotent.

        The thread follows the application into forked processes (a thread does
        not survive ``fork()``): each child starts its own. Under ``gunicorn
        --preload`` the master imports the application before forking its
        workers: there the thread is not started at all, so only the worker
        processes claim and run deliveries. At interpreter exit the thread is
        stopped after its current delivery.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        if self._async_inbox or inspect.iscoroutinefunction(getattr(self.receiver.store, "claim", None)):
            raise ConfigurationError("an async inbox or replay store runs in a task: use start_async")
        if self not in _threaded:
            _threaded.add(self)
            atexit.register(self.stop, 5.0)
        self._stop.clear()
        if _preloading_in_gunicorn_master():
            logger.info("gunicorn --preload: the inbox worker starts in each worker process, not in the master")
            self._deferred = True
            return
        self._thread = threading.Thread(target=self.run, name="kreuzberg-inbox-worker", daemon=True)
        self._thread.start()

    def init_app(self, app: Any) -> None:
        """Flask: run the worker thread for *app* (``worker.init_app(app)``), found again in
        ``app.extensions["kreuzberg_webhooks_inbox"]``; it follows gunicorn's forks."""
        app.extensions["kreuzberg_webhooks_inbox"] = self
        self.start()

    def _restart_in_child(self) -> None:
        # The parent's thread did not come along, and its locks were copied in whatever state.
        self._busy = threading.Lock()
        if (self._thread is None and not self._deferred) or self._stop.is_set():
            return
        self._deferred = False
        self._thread = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, and wait up to *timeout* seconds (default ``shutdown_grace``) for the
        delivery being processed to finish and be settled (one still running after that comes
        back after its lease); the claimed ones not yet started are given back."""
        if timeout is None:
            timeout = self.shutdown_grace
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
        while not self._stopping:
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
            if claimed < self.batch and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.poll_interval)
                wake.clear()
        if self._beats is not None:
            self._beats.stop(join=False)  # the event loop does not wait for a write

    async def start_async(self) -> None:
        """Run the worker as a task on the running loop (for ASGI apps); idempotent."""
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self.run_async(), name="kreuzberg-inbox-worker")

    async def stop_async(self) -> None:
        """Stop claiming, let the deliveries being processed finish and be settled (for up to
        ``shutdown_grace`` seconds), then end the task. The claimed deliveries not yet started
        are given back; one still running after the grace comes back after its lease."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if self._async_wake is not None:
            self._async_wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.shutdown_grace)
        except TimeoutError:
            logger.warning(
                "inbox worker stopped after a grace of %.0f s with a handler still running; "
                "its delivery comes back after its lease",
                self.shutdown_grace,
            )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            self._stopping = False

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
# between two steps, and each child starts a fresh thread. (Every heartbeat's own fork hooks,
# in lifecycle/heartbeat.py, wait for its renewal and give the child one without the
# parent's claims.)

_threaded: weakref.WeakSet[InboxWorker] = weakref.WeakSet()
_held: list[threading.Lock] = []


def _preloading_in_gunicorn_master() -> bool:
    """Whether gunicorn's master is importing the application (``--preload``) on this stack.

    The master calls the application's loader from ``Arbiter.setup``; a worker process
    loads it (or inherits it) under ``Arbiter.spawn_worker``.
    """
    if "gunicorn.arbiter" not in sys.modules:
        return False
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_filename.endswith(os.path.join("gunicorn", "arbiter.py")):
            if code.co_name == "spawn_worker":
                return False
            if code.co_name == "setup":
                return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _before_fork() -> None:
    for worker in list(_threaded):
        if worker._thread is not None and worker._thread.is_alive() and worker._busy.acquire(timeout=worker.lease):
            _held.append(worker._busy)


def _after_fork_in_parent() -> None:
    while _held:
        _held.pop().release()


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


_DONE = _Decision(DeliveryState.DONE)
#: What a lost inbox lease's log line says may follow.
_LOST = "another worker may claim the delivery"


@dataclass(frozen=True, slots=True)
class _Finished:
    """A delivery of the batch whose handlers are over, waiting to be marked done with the rest."""

    claim: InboxClaim
    #: stops its heartbeat
    stop: Callable[[], None]


def _nothing() -> None:
    return None


def _hooks(value: FailureHook | Sequence[FailureHook]) -> tuple[FailureHook, ...]:
    hooks = (value,) if callable(value) else tuple(value)
    for hook in hooks:
        if not callable(hook):
            raise ConfigurationError("a failure hook must be callable")
    return hooks
