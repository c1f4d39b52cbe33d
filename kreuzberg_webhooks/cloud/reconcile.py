"""Reconciliation: every job the app submitted reaches its handlers, even when its webhook never comes.

The vendor's SDK guide: treat the webhook "as a fast path and still poll or
fetch the job on your own timeout as a fallback for jobs your webhook handler
has not seen close". So the app *tracks* the ids it submits; a webhook closes
a tracked job (the reconciler watches the receiver's delivery reports); a
job still open after the grace period is fetched with one ``GET
/v1/jobs/{id}`` and, when terminal, dispatched through
``receiver.process(event, scope=…, via="reconcile")``.

Exactly once across both paths (``docs/contract.md`` §4c) rests on the replay
store, not on the tracker: ``process`` claims the same key a webhook of the
same job and event type claims (``kreuzberg_webhooks.protocol.keys``), so a job whose
webhook was processed — by any worker, even one whose report the tracker
missed — comes back ``duplicate`` and is only closed. Closing on a webhook
saves the request; it is never what keeps a handler from running twice.
Hence the grace period must be shorter than the store's retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from uuid import UUID

from ..events import CrawlJobDocument, canonical_job_id
from ..exceptions import ConfigurationError
from ..protocol.durations import duration
from ..protocol.schedule import MAX_ATTEMPTS, RETRY_DELAYS, SENDER_TIMEOUT
from .client import AsyncJobsClient, JobsClient
from .errors import InvalidAPIKey, JobNotFound, JobsAPIError, PermanentAPIError
from .policy import Backoff, JobLookup, is_terminal
from .tracking.base import JobTracker, TrackedJob

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_MAX_AGE",
    "DEFAULT_NOT_FOUND_GRACE",
    "AsyncReconciler",
    "ReconcileReport",
    "Reconciler",
    "delivered_via",
]

logger = logging.getLogger("kreuzberg_webhooks.cloud")

#: Past the sender's whole retry schedule (5 s + 30 s + 5 min + 5 min of waits and five
#: 30 s time-outs: 785 s), so a webhook that is merely late is not raced by a fetch.
DEFAULT_GRACE = 900.0
_SCHEDULE = sum(RETRY_DELAYS) + MAX_ATTEMPTS * SENDER_TIMEOUT
#: A tracked job that is not terminal yet is checked again after 30 s, doubling to 10 min.
DEFAULT_RECHECK = Backoff(initial=30.0, cap=600.0)
#: How long a closed job is remembered, so a late ``track()`` does not reopen it.
DEFAULT_CLOSED_RETENTION = 3600.0
#: A tracked job still not terminal a day after it was tracked is reported and no longer polled.
DEFAULT_MAX_AGE = 86400.0
#: A 404 within this many seconds of tracking is the API lagging its own submission: checked again.
DEFAULT_NOT_FOUND_GRACE = 300.0
_TERMINAL_TYPES = frozenset({"job.completed", "job.failed", "job.cancelled"})
#: At most this many jobs a thread of the AsyncReconciler hands to the loop at once.
_MAX_CHUNK = 8
_Fetched: TypeAlias = "tuple[TrackedJob, float, JobLookup | JobsAPIError]"
_Checked: TypeAlias = "_Verdict | _Fetched"

_VIA: contextvars.ContextVar[str] = contextvars.ContextVar("kreuzberg_webhooks_via", default="webhook")


def delivered_via() -> str:
    """Inside a handler: ``"reconcile"`` when the reconciler dispatched the event, else ``"webhook"``."""
    return _VIA.get()


@dataclass(slots=True)
class ReconcileReport:
    """What one pass did."""

    #: Tracked jobs checked (one ``GET /v1/jobs/{id}`` each, plus retries of 429/5xx).
    checked: int = 0
    #: Terminal jobs whose handlers ran in this pass (their webhook never came).
    processed: list[str] = field(default_factory=list)
    #: Terminal jobs a webhook had already processed (closed without running anything).
    duplicates: int = 0
    #: Jobs not terminal yet, checked again later.
    pending: int = 0
    #: Jobs whose fetch or handlers failed transiently, checked again later.
    retried: int = 0
    #: Jobs the API answered permanently about (404 purged, 400): ``(job_id, reason)``; closed.
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: Jobs still not terminal at the age limit, reported and no longer tracked: ``(job_id, reason)``.
    abandoned: list[tuple[str, str]] = field(default_factory=list)
    #: Child jobs of finished crawl jobs, tracked for the next pass.
    children: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for a log or a terminal."""
        return (
            f"checked {self.checked} tracked jobs in {self.seconds:.2f} s: {len(self.processed)} processed, "
            f"{self.duplicates} already processed by webhook, {self.pending} not finished, "
            f"{self.retried} to retry, {len(self.failed)} failed permanently"
            + (f", {len(self.abandoned)} given up after the age limit" if self.abandoned else "")
            + (f", {self.children} crawl children tracked" if self.children else "")
        )


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What to do with one checked entry."""

    entry: TrackedJob
    action: str  # "close" | "reschedule"
    kind: str  # "processed" | "duplicate" | "pending" | "retry" | "failed" | "abandoned"
    next_check: float = 0.0
    reason: str = ""
    children: tuple[str, ...] = ()


class _ReconcilerCommon:
    """Settings and decisions shared by the sync and async reconcilers."""

    def __init__(
        self,
        receiver: Any,
        tracker: JobTracker,
        *,
        scope: str,
        grace: float,
        recheck: Backoff | None,
        lease: float,
        batch_size: int,
        closed_retention: float,
        observe: bool,
        clock: Callable[[], float],
        max_age: float = DEFAULT_MAX_AGE,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
        on_abandoned: Callable[[TrackedJob, str], None] | None = None,
    ) -> None:
        grace = duration(grace, "grace")
        retention = float(getattr(receiver, "retention", math.inf))
        if not grace < retention:
            raise ConfigurationError(
                f"grace ({grace:g} s) must be shorter than the replay store's retention ({retention:g} s): "
                "a job processed by webhook could be forgotten before the reconciler checks it"
            )
        if not (math.isfinite(max_age) and max_age > grace):
            raise ConfigurationError(f"max_age ({max_age:g} s) must be a finite number of seconds above grace")
        not_found_grace = duration(not_found_grace, "not_found_grace", allow_zero=True)
        if grace < _SCHEDULE:
            logger.info("reconcile grace %.0f s is shorter than the sender's retry schedule (%.0f s)", grace, _SCHEDULE)
        if not (lease > 0 and batch_size >= 1 and closed_retention > 0):
            raise ConfigurationError("lease, batch_size and closed_retention must be positive")
        self.receiver = receiver
        self.tracker = tracker
        self.scope = scope
        self.grace = float(grace)
        self.recheck = recheck or DEFAULT_RECHECK
        self.lease = float(lease)
        self.batch_size = int(batch_size)
        self.closed_retention = float(closed_retention)
        self.max_age = float(max_age)
        self.not_found_grace = float(not_found_grace)
        self.on_abandoned = on_abandoned
        self._clock = clock
        if observe:
            receiver.add_observer(self.observe)

    def entries(self, job_ids: Iterable[str | UUID], scope: str | None, delay: float | None) -> list[TrackedJob]:
        now = self._clock()
        check_at = now + (self.grace if delay is None else delay)
        entries = []
        for given in job_ids:
            job_id = canonical_job_id(str(given))
            if job_id is None:
                raise ConfigurationError(f"not a job id: {str(given)[:80]!r}")
            entries.append(TrackedJob(job_id, self.scope if scope is None else scope, now, check_at))
        return entries

    def observe(self, report: Any) -> None:
        """A receiver observer: a terminal event handled (or acknowledged as a duplicate)
        by the webhook path closes its tracked job — only when it was signed in the
        job's own scope, so one tenant cannot close another tenant's job."""
        if (
            report.job_id
            and report.via != "reconcile"
            and report.reason in ("processed", "duplicate")
            and report.event_type in _TERMINAL_TYPES
        ):
            try:
                tracked = self.tracker.get(str(report.job_id))
                if tracked is not None and tracked.scope == report.scope:
                    self.tracker.close([tracked.job_id], self._clock() + self.closed_retention)
            except Exception:  # the reconciler's own check then closes it later
                logger.warning("could not close tracked job %s after its webhook", report.job_id, exc_info=True)

    def verdict_for_document(self, entry: TrackedJob, document: JobLookup, outcome: Any, now: float) -> _Verdict:
        reason = getattr(outcome, "reason", "")
        children = document.job_ids if isinstance(document, CrawlJobDocument) else ()
        if reason == "processed":
            delivery = getattr(document, "webhook_delivery", None)
            if delivery is not None and delivery.delivered:
                attempts = delivery.attempt_count
                logger.warning(
                    "job %s: the service delivered its webhook (%d attempt%s) but this receiver never processed "
                    "it; processed now by reconciliation (a proxy or another app answering 2xx at the webhook URL?)",
                    entry.job_id,
                    attempts,
                    "" if attempts == 1 else "s",
                )
            return _Verdict(entry, "close", "processed", children=children)
        if reason == "duplicate":
            return _Verdict(entry, "close", "duplicate", children=children)
        # in_flight (a webhook is being handled right now), handler_error, store_unavailable
        return self.retry(entry, now, reason or "not processed")

    def dispatch(self, entry: TrackedJob, now: float, document: JobLookup) -> _Verdict:
        """The verdict on a terminal document, its handlers run here through ``receiver.process``."""
        token = _VIA.set("reconcile")
        try:
            outcome = self.receiver.process(document, scope=entry.scope, via="reconcile")
        finally:
            _VIA.reset(token)
        return self.verdict_for_document(entry, document, outcome, now)

    def too_old(self, entry: TrackedJob, now: float, why: str) -> _Verdict | None:
        """Give up on a job tracked more than ``max_age`` ago: it is reported and no longer polled."""
        age = now - entry.tracked_at
        if age < self.max_age:
            return None
        reason = f"{why} {age:.0f} s after it was tracked (max_age {self.max_age:g} s)"
        return _Verdict(entry, "close", "abandoned", reason=reason)

    def pending(self, entry: TrackedJob, now: float, status: str = "not terminal") -> _Verdict:
        old = self.too_old(entry, now, f"still {status}")
        return old or _Verdict(entry, "reschedule", "pending", now + self.recheck.delay(entry.checks))

    def retry(self, entry: TrackedJob, now: float, reason: str) -> _Verdict:
        old = self.too_old(entry, now, f"still failing ({reason})")
        return old or _Verdict(entry, "reschedule", "retry", now + self.recheck.delay(entry.checks), reason)

    def verdict_for_error(self, entry: TrackedJob, error: JobsAPIError, now: float) -> _Verdict:
        if isinstance(error, InvalidAPIKey):
            raise error  # every other job would fail the same way: end the pass
        if isinstance(error, JobNotFound) and now - entry.tracked_at < self.not_found_grace:
            logger.info("tracked job %s: 404 within the not-found grace; checked again later", entry.job_id)
            return self.retry(entry, now, f"{error} (within the not-found grace)")
        if isinstance(error, PermanentAPIError):
            logger.error("tracked job %s: %s; no longer tracked", entry.job_id, error)
            return _Verdict(entry, "close", "failed", reason=str(error))
        logger.warning("tracked job %s: %s; checked again later", entry.job_id, error)
        return self.retry(entry, now, str(error))

    def apply(self, verdicts: Sequence[_Verdict], report: ReconcileReport, now: float) -> None:
        closing = [v.entry.job_id for v in verdicts if v.action == "close"]
        if closing:
            self.tracker.close(closing, now + self.closed_retention)
        later = [
            TrackedJob(e.job_id, e.scope, e.tracked_at, v.next_check, e.checks + 1, e.closed)
            for v in verdicts
            if v.action == "reschedule"
            for e in (v.entry,)
        ]
        if later:
            self.tracker.reschedule(later)
        children = [c for v in verdicts for c in v.children]
        if children:
            # Checked on the next pass: their own webhooks had the crawl's whole run to arrive.
            self.tracker.track([TrackedJob(str(c), v.entry.scope, now, now) for v in verdicts for c in v.children])
        for verdict in verdicts:
            report.checked += 1
            if verdict.kind == "processed":
                report.processed.append(verdict.entry.job_id)
            elif verdict.kind == "duplicate":
                report.duplicates += 1
            elif verdict.kind == "pending":
                report.pending += 1
            elif verdict.kind == "retry":
                report.retried += 1
            elif verdict.kind == "abandoned":
                report.abandoned.append((verdict.entry.job_id, verdict.reason))
                self.abandon(verdict)
            else:
                report.failed.append((verdict.entry.job_id, verdict.reason))
        report.children += len(children)

    def abandon(self, verdict: _Verdict) -> None:
        logger.warning("tracked job %s: %s; no longer tracked", verdict.entry.job_id, verdict.reason)
        if self.on_abandoned is not None:
            try:
                self.on_abandoned(verdict.entry, verdict.reason)
            except Exception:
                logger.exception("on_abandoned failed for tracked job %s", verdict.entry.job_id)


class Reconciler(_ReconcilerCommon):
    """Checks tracked jobs no webhook closed, and dispatches the terminal ones (sync).

    :param receiver: the app's :class:`~kreuzberg_webhooks.Receiver`; its handlers run through
        ``receiver.process`` (its replay store keeps them to once per job and event type).
    :param client: a :class:`~kreuzberg_webhooks.cloud.JobsClient`.
    :param tracker: where tracked jobs live (``open_tracker(url)``).
    :param scope: the dedupe scope of the app's events: ``""`` for a receiver with static secrets,
        the project id for a per-project secret resolver.
    :param grace: seconds after ``track`` before a job is fetched; default past the sender's
        whole retry schedule. Must be shorter than the receiver's retention.
    :param recheck: backoff for jobs not terminal yet (30 s doubling to 10 min).
    :param lease: seconds a pass holds the jobs it took (another reconciler skips them).
    :param concurrency: requests in flight at once.
    :param observe: close tracked jobs when the receiver reports their webhook (default on).
    :param max_age: seconds after tracking when a job still not terminal (or still failing to
        fetch) is given up: logged as a WARNING, handed to *on_abandoned*, listed in the pass's
        ``abandoned`` and no longer polled (default one day).
    :param not_found_grace: seconds after tracking during which a 404 is the API lagging its own
        submission: the job is checked again; a 404 later closes it as failed (default 300).
    :param on_abandoned: ``(tracked_job, reason) -> None``, called for each job given up.
    """

    def __init__(
        self,
        receiver: Any,
        client: JobsClient,
        tracker: JobTracker,
        *,
        scope: str = "",
        grace: float = DEFAULT_GRACE,
        recheck: Backoff | None = None,
        lease: float = 120.0,
        batch_size: int = 1000,
        concurrency: int = 8,
        closed_retention: float = DEFAULT_CLOSED_RETENTION,
        observe: bool = True,
        clock: Callable[[], float] = time.time,
        max_age: float = DEFAULT_MAX_AGE,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
        on_abandoned: Callable[[TrackedJob, str], None] | None = None,
    ) -> None:
        super().__init__(
            receiver,
            tracker,
            scope=scope,
            grace=grace,
            recheck=recheck,
            lease=lease,
            batch_size=batch_size,
            closed_retention=closed_retention,
            observe=observe,
            clock=clock,
            max_age=max_age,
            not_found_grace=not_found_grace,
            on_abandoned=on_abandoned,
        )
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        self.client = client
        self.concurrency = concurrency
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, job_ids: Iterable[str | UUID], *, scope: str | None = None, delay: float | None = None) -> None:
        """Remember submitted jobs; each is checked *delay* seconds from now (default: the grace period)."""
        self.tracker.track(self.entries(job_ids, scope, delay))

    def _check(self, entry: TrackedJob) -> _Verdict:
        now = self._clock()
        try:
            document = self.client.get_job(entry.job_id)
        except JobsAPIError as error:
            return self.verdict_for_error(entry, error, now)
        if not is_terminal(document):
            return self.pending(entry, now, str(document.status))
        return self.dispatch(entry, now, document)

    def _check_all(self, pool: ThreadPoolExecutor, due: list[TrackedJob]) -> list[_Verdict]:
        """*concurrency* workers of *pool* take the due entries in turn (not a future per entry,
        whose hand-off to this thread costs more than the check's own Python); an error ends
        each worker's turn, and the pass once the checks under way are done."""
        verdicts: list[_Verdict] = []
        errors: list[BaseException] = []
        entries = iter(due)
        taking = threading.Lock()
        check = self._check

        def worker() -> None:
            while not errors:
                with taking:
                    entry = next(entries, None)
                if entry is None:
                    return
                try:
                    verdicts.append(check(entry))
                except BaseException as error:
                    errors.append(error)
                    return

        workers = [pool.submit(worker) for _ in range(min(self.concurrency, len(due)))]
        for done in workers:
            done.result()
        if errors:
            raise errors[0]
        return verdicts

    def run_once(self) -> ReconcileReport:
        """One pass: every tracked job due now, one request each."""
        started = time.perf_counter()
        report = ReconcileReport()
        now = self._clock()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="kreuzberg-reconcile") as pool:
            while True:
                due = self.tracker.due(now, self.batch_size, self.lease)
                if not due:
                    break
                self.apply(self._check_all(pool, due), report, now)
                if len(due) < self.batch_size:
                    break
        report.seconds = time.perf_counter() - started
        if report.checked:
            logger.info("reconcile: %s", report.summary())
        return report

    def start(self, interval: float) -> threading.Thread:
        """Run a pass every *interval* seconds in a background thread until :meth:`stop`."""
        interval = duration(interval, "interval")
        if self._thread is not None:
            return self._thread
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.run_once()
                except Exception:
                    logger.exception("reconcile pass failed; trying again in %.0f s", interval)
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="kreuzberg-reconciler", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop the background thread after its current pass."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class AsyncReconciler(_ReconcilerCommon):
    """The asynchronous :class:`Reconciler`. Tracker calls run in a worker thread.

    *client* is an :class:`~kreuzberg_webhooks.cloud.AsyncJobsClient` or a sync
    :class:`~kreuzberg_webhooks.cloud.JobsClient`. The requests of a ``JobsClient``, and of an
    ``AsyncJobsClient`` that made its own connection pool (through its sync twin,
    :meth:`~kreuzberg_webhooks.cloud.AsyncJobsClient.threaded`), run in *concurrency* worker
    threads of the pass: httpx's sync pool costs less per request than its async one
    (``benchmarks/reconcile.py``). The threads take the due jobs in turn, as the sync
    reconciler's do, and settle a job whose handlers are all sync functions themselves, through
    ``receiver.process`` (unless the receiver's store or secret resolver is async); a job with a
    coroutine handler goes to the loop, a few at a time, and its handlers run through
    ``receiver.process_async``, up to *concurrency* at once. An ``AsyncJobsClient`` on the
    caller's own ``httpx.AsyncClient`` is used as given, on the loop, by *concurrency* tasks."""

    def __init__(
        self,
        receiver: Any,
        client: AsyncJobsClient | JobsClient,
        tracker: JobTracker,
        *,
        scope: str = "",
        grace: float = DEFAULT_GRACE,
        recheck: Backoff | None = None,
        lease: float = 120.0,
        batch_size: int = 1000,
        concurrency: int = 32,
        closed_retention: float = DEFAULT_CLOSED_RETENTION,
        observe: bool = True,
        clock: Callable[[], float] = time.time,
        max_age: float = DEFAULT_MAX_AGE,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE,
        on_abandoned: Callable[[TrackedJob, str], None] | None = None,
    ) -> None:
        super().__init__(
            receiver,
            tracker,
            scope=scope,
            grace=grace,
            recheck=recheck,
            lease=lease,
            batch_size=batch_size,
            closed_retention=closed_retention,
            observe=observe,
            clock=clock,
            max_age=max_age,
            not_found_grace=not_found_grace,
            on_abandoned=on_abandoned,
        )
        if concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        self.client = client
        self.concurrency = concurrency
        self._task: asyncio.Task[None] | None = None

    async def track(
        self, job_ids: Iterable[str | UUID], *, scope: str | None = None, delay: float | None = None
    ) -> None:
        """Remember submitted jobs; each is checked *delay* seconds from now (default: the grace period)."""
        await asyncio.to_thread(self.tracker.track, self.entries(job_ids, scope, delay))

    def _sync_handlers_only(self, document: JobLookup) -> bool:
        """Whether none of *document*'s handlers is a coroutine function (``process_async`` would
        run each of them in a worker thread of its own)."""
        return not any(inspect.iscoroutinefunction(handler) for handler in self.receiver.handlers_for(document))

    def _check_here(
        self, client: JobsClient, entry: TrackedJob, settle_here: bool, sync_only: dict[tuple[type, object], bool]
    ) -> _Checked:
        """In a pass thread: GET one job, and settle it here when that needs no loop: a job not
        terminal yet, or (*settle_here*) a terminal one whose handlers are all sync, run through
        ``receiver.process`` in this thread (as the sync :class:`Reconciler` runs them) in a copy
        of the thread's context. The rest (a coroutine handler, an API error) is for the loop."""
        now = self._clock()
        try:
            document = client.get_job(entry.job_id)
        except JobsAPIError as error:
            return (entry, now, error)
        if not is_terminal(document):
            return self.pending(entry, now, str(document.status))
        # Whether the handlers are all sync, per kind of document and status (what picks them) in a pass.
        kind = (type(document), document.status)
        only = sync_only.get(kind)
        if only is None:
            only = sync_only[kind] = self._sync_handlers_only(document)
        if settle_here and only:
            return contextvars.copy_context().run(self.dispatch, entry, now, document)
        return (entry, now, document)

    async def _check_threaded(
        self, due: list[TrackedJob], pool: ThreadPoolExecutor, client: JobsClient, settle_here: bool, chunk: int
    ) -> list[_Verdict]:
        """The pass's threads take the due entries in turn and check them as the sync
        :class:`Reconciler`'s do, never waiting on the loop; what needs the loop they hand to it
        *chunk* at a time (each hand-off wakes the loop: a write to its self-pipe), where as many
        tasks settle them (coroutine handlers run concurrently). An error (a bad API key, a
        failure) ends every thread's turn, and the pass once the checks under way are done; a
        cancelled pass starts no more checks."""
        loop = asyncio.get_running_loop()
        verdicts: list[_Verdict] = []
        errors: list[BaseException] = []
        stop = threading.Event()
        entries = iter(due)
        taking = threading.Lock()
        handed: asyncio.Queue[list[_Fetched] | None] = asyncio.Queue()
        workers = min(self.concurrency, len(due))
        sync_only: dict[tuple[type, object], bool] = {}

        def hand(batch: list[_Fetched] | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the pass is long gone
                loop.call_soon_threadsafe(handed.put_nowait, batch)

        def work() -> None:
            batch: list[_Fetched] = []
            try:
                while not stop.is_set():
                    with taking:
                        entry = next(entries, None)
                    if entry is None:
                        break
                    checked = self._check_here(client, entry, settle_here, sync_only)
                    if isinstance(checked, _Verdict):
                        verdicts.append(checked)
                        continue
                    batch.append(checked)
                    if isinstance(checked[2], InvalidAPIKey):
                        stop.set()  # every other job would fail the same way
                    if len(batch) >= chunk:
                        hand(batch)
                        batch = []
            except BaseException as error:
                errors.append(error)
                stop.set()
            finally:
                if batch:
                    hand(batch)
                hand(None)  # this thread is done

        async def settle() -> None:
            while (batch := await handed.get()) is not None:
                for entry, now, fetched in batch:
                    if errors:
                        continue  # drained, not settled
                    try:
                        verdicts.append(await self._settle(entry, now, fetched))
                    except Exception as error:
                        errors.append(error)
                        stop.set()

        # Each thread runs in a copy of the pass's context (its span, its context variables).
        threads = [loop.run_in_executor(pool, contextvars.copy_context().run, work) for _ in range(workers)]
        try:
            await asyncio.gather(*(settle() for _ in range(workers)))
            await asyncio.gather(*threads)
        finally:
            stop.set()
        if errors:
            raise errors[0]
        return verdicts

    async def _settle(self, entry: TrackedJob, now: float, fetched: JobLookup | JobsAPIError) -> _Verdict:
        if isinstance(fetched, JobsAPIError):
            return self.verdict_for_error(entry, fetched, now)
        if not is_terminal(fetched):
            return self.pending(entry, now, str(fetched.status))
        token = _VIA.set("reconcile")
        try:
            outcome = await self.receiver.process_async(fetched, scope=entry.scope, via="reconcile")
        finally:
            _VIA.reset(token)
        return self.verdict_for_document(entry, fetched, outcome, now)

    async def _check_on_loop(
        self, due: list[TrackedJob], get_job: Callable[[str], Awaitable[JobLookup]]
    ) -> list[_Verdict]:
        """*concurrency* tasks take the due entries in turn (not a task per entry waiting on a
        semaphore); an error ends the pass once the checks under way are done."""
        verdicts: list[_Verdict] = []
        entries = iter(due)
        errors: list[Exception] = []

        async def worker() -> None:
            while not errors:
                entry = next(entries, None)
                if entry is None:
                    return
                now = self._clock()
                try:
                    try:
                        fetched: JobLookup | JobsAPIError = await get_job(entry.job_id)
                    except JobsAPIError as error:
                        fetched = error
                    verdicts.append(await self._settle(entry, now, fetched))
                except Exception as error:
                    errors.append(error)
                    return

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(due)))))
        if errors:
            raise errors[0]
        return verdicts

    async def run_once(self) -> ReconcileReport:
        """One pass: every tracked job due now, one request each, *concurrency* at a time."""
        started = time.perf_counter()
        report = ReconcileReport()
        now = self._clock()
        client = self.client
        # None: an AsyncJobsClient on the caller's own httpx.AsyncClient, used as given on the loop.
        threaded = client if isinstance(client, JobsClient) else client.threaded()

        with contextlib.ExitStack() as stack:
            if threaded is not None:
                # The sync client's requests run in threads of the pass's own (the loop's default
                # executor has min(32, CPUs + 4) threads, fewer than *concurrency* on a small machine).
                pool = ThreadPoolExecutor(self.concurrency, "kreuzberg-reconcile")
                # Never block the loop on a request still under way in a thread (a cancelled pass).
                stack.callback(pool.shutdown, wait=False)
                # Sync handlers run in the pass's threads when the receiver can process there (a
                # sync store: a trusted event is neither verified nor enqueued), saving a hand-off
                # to another thread per job.
                try:
                    self.receiver.require_sync_store()
                    settle_here = True
                except ConfigurationError:
                    settle_here = False

            while True:
                due = await asyncio.to_thread(self.tracker.due, now, self.batch_size, self.lease)
                if not due:
                    break
                if threaded is None:
                    assert isinstance(client, AsyncJobsClient)
                    verdicts = await self._check_on_loop(due, client.get_job)
                else:
                    chunk = max(1, min(_MAX_CHUNK, len(due) // (4 * self.concurrency)))
                    verdicts = await self._check_threaded(due, pool, threaded, settle_here, chunk)
                await asyncio.to_thread(self.apply, verdicts, report, now)
                if len(due) < self.batch_size:
                    break
        report.seconds = time.perf_counter() - started
        if report.checked:
            logger.info("reconcile: %s", report.summary())
        return report

    def start(self, interval: float) -> asyncio.Task[None]:
        """Run a pass every *interval* seconds as a task on the running loop until :meth:`stop`."""
        interval = duration(interval, "interval")
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(interval), name="kreuzberg-reconciler")
        return self._task

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                logger.exception("reconcile pass failed; trying again in %.0f s", interval)
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        """Cancel the periodic task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
