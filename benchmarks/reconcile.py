"""``python -m benchmarks.reconcile [--jobs N] [--rounds R] [--mode all|sync|async|async-threads|async-vs-sync|
async-vs-sync-remote] [--handler sync|async] [--comparison-rounds R] [--comparison-jobs N] [--remote-rounds R]
[--remote-jobs N] [--latency SECONDS]``:
reconcile N tracked jobs against the emulator, beside the same GETs through a bare ``httpx`` loop.

The emulator runs as its own process (``kreuzberg-webhooks emulate``, no webhook
URL: no webhook ever closes a job) and holds N finished jobs. Each mode's pass
tracks the N jobs in a fresh memory tracker and reconciles them in one pass
through a fresh receiver (memory store, a no-op handler):

* ``sync``: the :class:`~kreuzberg_webhooks.cloud.Reconciler` with a ``JobsClient``, 4 threads;
* ``async``: the :class:`~kreuzberg_webhooks.cloud.AsyncReconciler` with an
  ``AsyncJobsClient`` on the caller's own ``httpx.AsyncClient`` (used as given), 8 at once;
* ``async-threads``: the AsyncReconciler with a sync ``JobsClient``, its requests in 8 worker
  threads of the pass — what it does by default with an ``AsyncJobsClient`` of its own pool
  (``AsyncJobsClient.threaded()``).

and two comparisons:

* ``async-vs-sync``: the AsyncReconciler as an async app gets it by default (an ``AsyncJobsClient``
  of its own pool) beside the sync Reconciler, both 8 at once with the same sync no-op handler.
  Each round runs the two passes back to back (the order alternates between rounds) and divides
  the async pass's rate by the sync one's; the figure is the median of these per-round ratios,
  printed with their middle half (interquartile range) and their range, so the noise the verdict
  sits in is visible. Target: a median of at least 1.0. The two do nearly the same work, so the
  comparison runs more, shorter rounds than the other modes (by default four times as many
  rounds of a quarter of the jobs: the same number of requests). With ``--handler async`` the
  AsyncReconciler's handler is an ``async def`` no-op instead (its jobs then go through
  ``receiver.process_async`` on the loop); the sync Reconciler keeps its plain one. The two do
  the same work (the async default runs the same sync client in threads), so a tie — 1.0 within
  the middle half of the per-round ratios — also counts as at least as fast; async slower in
  three rounds of four does not.
* ``async-vs-sync-remote``: the two reconcilers as they ship — each its own default
  concurrency (the AsyncReconciler's 32, the Reconciler's 8) and a client of its own pool — against
  a second emulator that waits ``--latency`` seconds (default 20 ms) before each answer, as an API
  across a network does: what an app gets from each when the requests wait on the network rather
  than on this machine's CPU. Judged like ``async-vs-sync`` without the tie.

The *limit* of each mode is the same N GETs, with the same concurrency and the
same kind of ``httpx`` client, through a bare loop that only sends each request
and reads its body (no JSON parsing, no retries, no receiver): ``httpx.Client``
shared by as many threads for ``sync`` and ``async-threads``, ``httpx.AsyncClient``
with as many concurrent tasks for ``async``. Each round runs every mode's loop
and pass back to back (the order alternates between rounds), so a busy
machine slows both alike; the figure is the median over the rounds of the pass's
rate divided by its loop's rate. Target: at least 0.8 of the loop in every mode,
and exactly one request per open job (counted by the client's request hook);
exits 1 if any job took more than one request.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import json
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx

from kreuzberg_webhooks import Receiver
from kreuzberg_webhooks.cloud import (
    AsyncJobsClient,
    AsyncReconciler,
    JobsClient,
    MemoryTracker,
    Reconciler,
    ReconcileReport,
)
from tests.servers import free_port, run_server

TARGET_RATIO = 0.8
#: The async default's rate over the sync Reconciler's, same concurrency, same handler
#: (the median of the per-round ratios).
TARGET_ASYNC_OVER_SYNC = 1.0
#: How far away the API is in ``async-vs-sync-remote``: the emulator waits this long before each answer.
REMOTE_LATENCY = 0.02
#: The comparison's rounds: this many times the other modes' rounds, each of this fraction of the jobs.
COMPARISON_SPLIT = 4
MODES = ("sync", "async", "async-threads", "async-vs-sync")
#: Every comparison of the two reconcilers (``measure_remote`` runs the second).
COMPARISONS = ("async-vs-sync", "async-vs-sync-remote")
SECRET = "benchmark-secret-0123456789abcdef0123456789"


def submit(base_url: str, key: str, count: int) -> list[str]:
    """Create *count* jobs with one JSON submission per thousand."""
    ids: list[str] = []
    for start in range(0, count, 1000):
        documents = [
            {"filename": f"{n}.txt", "content": f"document {n}"} for n in range(start, min(count, start + 1000))
        ]
        request = urllib.request.Request(  # noqa: S310 - 127.0.0.1 only
            base_url + "/v1/extract",
            data=json.dumps({"documents": documents}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - 127.0.0.1 only
            ids.extend(json.loads(response.read())["job_ids"])
    return ids


class Timed(NamedTuple):
    """One timed loop or pass: wall-clock seconds, this process's CPU seconds (all its threads;
    the emulator is another process) over the same span, and the requests counted."""

    seconds: float
    cpu: float
    requests: int


class _Stopwatch:
    """The wall-clock and process CPU seconds a block took."""

    seconds = cpu = 0.0

    def __enter__(self) -> _Stopwatch:
        self._started = (time.perf_counter(), time.process_time())
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._started[0]
        self.cpu = time.process_time() - self._started[1]


def _limits(concurrency: int) -> httpx.Limits:
    return httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)


# -- the limit: the same GETs through a bare httpx loop -----------------------------


def loop_sync(base_url: str, key: str, ids: list[str], concurrency: int) -> Timed:
    """*concurrency* threads sharing one ``httpx.Client``: GET each job, read its body."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    requests: list[httpx.Request] = []
    with httpx.Client(limits=_limits(concurrency), timeout=30, event_hooks={"request": [requests.append]}) as http:

        def get(job_id: str) -> None:
            http.get(f"{base_url}/v1/jobs/{job_id}", headers=headers).raise_for_status()

        with ThreadPoolExecutor(concurrency) as pool, _Stopwatch() as timed:
            for _ in pool.map(get, ids):
                pass
    return Timed(timed.seconds, timed.cpu, len(requests))


async def loop_async(base_url: str, key: str, ids: list[str], concurrency: int) -> Timed:
    """*concurrency* tasks sharing one ``httpx.AsyncClient``: GET each job, read its body."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    requests = 0

    async def count(request: httpx.Request) -> None:
        nonlocal requests
        requests += 1

    async with httpx.AsyncClient(limits=_limits(concurrency), timeout=30, event_hooks={"request": [count]}) as http:
        pending = iter(ids)

        async def worker() -> None:
            for job_id in pending:
                (await http.get(f"{base_url}/v1/jobs/{job_id}", headers=headers)).raise_for_status()

        with _Stopwatch() as timed:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Timed(timed.seconds, timed.cpu, requests)


# -- the reconciler's passes -----------------------------------------------------


def pass_sync(base_url: str, key: str, ids: list[str], concurrency: int) -> Timed:
    receiver = Receiver(SECRET)
    handled: list[object] = []
    receiver.on()(handled.append)
    requests: list[httpx.Request] = []
    with httpx.Client(limits=_limits(concurrency), timeout=30, event_hooks={"request": [requests.append]}) as http:
        client = JobsClient(key, base_url, client=http)
        reconciler = Reconciler(
            receiver, client, MemoryTracker(), grace=1, concurrency=concurrency, batch_size=len(ids)
        )
        reconciler.track(ids, delay=0)
        with _Stopwatch() as timed:
            report = reconciler.run_once()
    assert report.checked == len(ids), report.summary()
    assert len(report.processed) == len(ids) == len(handled), report.summary()
    return Timed(timed.seconds, timed.cpu, len(requests))


async def _timed_async_pass(
    receiver: Receiver, client: AsyncJobsClient | JobsClient, ids: list[str], concurrency: int
) -> tuple[_Stopwatch, ReconcileReport]:
    """One timed ``AsyncReconciler`` pass over *ids*, tracked beforehand; its time and its report."""
    reconciler = AsyncReconciler(
        receiver, client, MemoryTracker(), grace=1, concurrency=concurrency, batch_size=len(ids)
    )
    await reconciler.track(ids, delay=0)
    with _Stopwatch() as timed:
        report = await reconciler.run_once()
    return timed, report


async def pass_async(base_url: str, key: str, ids: list[str], concurrency: int, *, threads: bool) -> Timed:
    receiver = Receiver(SECRET)
    handled = 0

    @receiver.on()
    async def count(event: object) -> None:
        nonlocal handled
        handled += 1

    requests: list[httpx.Request] = []

    async def on_request(request: httpx.Request) -> None:
        requests.append(request)

    client: AsyncJobsClient | JobsClient
    if threads:
        sync_http = httpx.Client(limits=_limits(concurrency), timeout=30, event_hooks={"request": [requests.append]})
        client = JobsClient(key, base_url, client=sync_http)
    else:
        async_http = httpx.AsyncClient(limits=_limits(concurrency), timeout=30, event_hooks={"request": [on_request]})
        client = AsyncJobsClient(key, base_url, client=async_http)
    timed, report = await _timed_async_pass(receiver, client, ids, concurrency)
    if threads:
        sync_http.close()
    else:
        await async_http.aclose()
    assert report.checked == len(ids), report.summary()
    assert len(report.processed) == len(ids) == handled, report.summary()
    return Timed(timed.seconds, timed.cpu, len(requests))


async def pass_async_default(base_url: str, key: str, ids: list[str], concurrency: int, handler: str = "sync") -> Timed:
    """The AsyncReconciler with an ``AsyncJobsClient`` of its own pool (its default: the requests in
    *concurrency* threads of the pass through the client's sync twin) and a sync no-op handler, as
    :func:`pass_sync` has (*handler* ``"async"``: an ``async def`` one). Its requests are not counted
    (the pool is the client's own); the ``async-threads`` mode counts the same path's."""
    receiver = Receiver(SECRET)
    handled: list[object] = []
    if handler == "async":

        @receiver.on()
        async def record(event: object) -> None:
            handled.append(event)

    else:
        receiver.on()(handled.append)
    async with AsyncJobsClient(key, base_url, limits=_limits(concurrency), timeout=30) as client:
        timed, report = await _timed_async_pass(receiver, client, ids, concurrency)
    assert report.checked == len(ids), report.summary()
    assert len(report.processed) == len(ids) == len(handled), report.summary()
    return Timed(timed.seconds, timed.cpu, 0)


def pass_sync_shipped(base_url: str, key: str, ids: list[str]) -> Timed:
    """The sync :class:`~kreuzberg_webhooks.cloud.Reconciler` as it ships: its default concurrency, a
    ``JobsClient`` of its own pool, a plain no-op handler."""
    receiver = Receiver(SECRET)
    handled: list[object] = []
    receiver.on()(handled.append)
    with JobsClient(key, base_url, timeout=30) as client:
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=1, batch_size=len(ids))
        reconciler.track(ids, delay=0)
        with _Stopwatch() as timed:
            report = reconciler.run_once()
    assert len(report.processed) == len(ids) == len(handled), report.summary()
    return Timed(timed.seconds, timed.cpu, 0)


async def pass_async_shipped(base_url: str, key: str, ids: list[str]) -> Timed:
    """The :class:`~kreuzberg_webhooks.cloud.AsyncReconciler` as it ships: its default concurrency, an
    ``AsyncJobsClient`` of its own pool, the same plain no-op handler."""
    receiver = Receiver(SECRET)
    handled: list[object] = []
    receiver.on()(handled.append)
    async with AsyncJobsClient(key, base_url, timeout=30) as client:
        reconciler = AsyncReconciler(receiver, client, MemoryTracker(), grace=1, batch_size=len(ids))
        await reconciler.track(ids, delay=0)
        with _Stopwatch() as timed:
            report = await reconciler.run_once()
    assert len(report.processed) == len(ids) == len(handled), report.summary()
    return Timed(timed.seconds, timed.cpu, 0)


def measure_remote(jobs: int = 1_000, rounds: int = 6, latency: float = REMOTE_LATENCY) -> Mode:
    """``async-vs-sync-remote``: the two reconcilers as they ship (each its own default concurrency
    and client) against an API *latency* seconds away — an emulator that waits that long before each
    answer, as a network between an app and the service does — in *rounds* rounds over *jobs* jobs,
    the two passes back to back in alternating order; the per-round ratios of their rates."""
    key = secrets.token_urlsafe(16)
    port = free_port()
    argv = [sys.executable, "-m", "kreuzberg_webhooks", "emulate", "--port", str(port), f"--api-key={key}"]
    argv += ["--job-delay", "0", "--slow", "1", "--slow-seconds", str(latency)]
    sync_runs: list[Timed] = []
    async_runs: list[Timed] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_server(argv, port=port, log=Path(tmp) / "emulator.log") as server,
    ):
        ids = submit(server.url, key, jobs)
        time.sleep(0.1)  # every job past its (zero) delay
        for number in range(rounds):
            if number % 2:
                async_runs.append(asyncio.run(pass_async_shipped(server.url, key, ids)))
                sync_runs.append(pass_sync_shipped(server.url, key, ids))
            else:
                sync_runs.append(pass_sync_shipped(server.url, key, ids))
                async_runs.append(asyncio.run(pass_async_shipped(server.url, key, ids)))
    return Mode(
        "async-vs-sync-remote",
        _default_concurrency(AsyncReconciler),
        jobs,
        tuple(timed.seconds for timed in sync_runs),
        tuple(timed.seconds for timed in async_runs),
        0,
        tuple(timed.cpu for timed in sync_runs),
        tuple(timed.cpu for timed in async_runs),
    )


def _default_concurrency(reconciler: type) -> int:
    default: int = inspect.signature(reconciler).parameters["concurrency"].default
    return default


def shipped_concurrency() -> tuple[int, int]:
    """The default concurrency of the :class:`AsyncReconciler` and of the :class:`Reconciler`."""
    return _default_concurrency(AsyncReconciler), _default_concurrency(Reconciler)


@dataclass(frozen=True)
class Mode:
    """One mode's figures over the rounds."""

    mode: str
    concurrency: int
    jobs: int
    #: Seconds per round: the bare loop's and the reconcile pass's.
    loop_seconds: tuple[float, ...]
    pass_seconds: tuple[float, ...]
    #: Requests the passes sent, in all.
    requests: int
    #: CPU seconds of this process per round, over the same spans as the seconds above.
    loop_cpu: tuple[float, ...] = ()
    pass_cpu: tuple[float, ...] = ()

    @property
    def rate(self) -> float:
        """The pass's median rate, jobs/s."""
        return self.jobs / statistics.median(self.pass_seconds)

    @property
    def loop_rate(self) -> float:
        """The bare loop's median rate, GETs/s."""
        return self.jobs / statistics.median(self.loop_seconds)

    @property
    def ratios(self) -> tuple[float, ...]:
        """Per round: the pass's rate over its loop's (the sync pass's, for the comparison)."""
        return tuple(loop / done for loop, done in zip(self.loop_seconds, self.pass_seconds, strict=True))

    @property
    def ratio(self) -> float:
        """The median over the rounds of (pass rate / loop rate)."""
        return statistics.median(self.ratios)

    @property
    def quartiles(self) -> tuple[float, float]:
        """The per-round ratios' first and third quartiles (their middle half)."""
        ratios = self.ratios
        if len(ratios) < 2:
            return ratios[0], ratios[0]
        first, _, third = statistics.quantiles(ratios, n=4, method="inclusive")
        return first, third

    @property
    def spread(self) -> str:
        """The per-round ratios' middle half and range, e.g. ``"middle half 0.97-1.03x, range 0.91-1.08x"``."""
        first, third = self.quartiles
        ratios = self.ratios
        return f"middle half {first:.2f}-{third:.2f}x, range {min(ratios):.2f}-{max(ratios):.2f}x"

    @property
    def cpu_per_job(self) -> tuple[float, float]:
        """The pass's and its loop's median CPU seconds per job (0 when not measured)."""
        if not self.pass_cpu:
            return 0.0, 0.0
        return statistics.median(self.pass_cpu) / self.jobs, statistics.median(self.loop_cpu) / self.jobs

    @property
    def cpu_ratio(self) -> float:
        """The median over the rounds of (pass CPU / loop CPU): what the pass costs over its loop
        (for the comparison: the async pass over the sync one), far less swayed by other load than the rates."""
        return statistics.median(done / loop for loop, done in zip(self.loop_cpu, self.pass_cpu, strict=True))

    @property
    def requests_per_job(self) -> float:
        return self.requests / (self.jobs * len(self.pass_seconds))

    @property
    def is_comparison(self) -> bool:
        """``async-vs-sync`` and ``async-vs-sync-remote``: the "loop" is the sync Reconciler's pass."""
        return self.mode in COMPARISONS

    @property
    def is_tie(self) -> bool:
        """Whether 1.0 lies within the per-round ratios' middle half: neither side is faster beyond
        the machine's noise (the two reconcilers doing the same work, the noise decides each round)."""
        first, third = self.quartiles
        return first <= TARGET_ASYNC_OVER_SYNC <= third

    @property
    def met(self) -> bool:
        if self.mode == "async-vs-sync":  # the same work by construction: a tie is "as fast"
            return self.ratio >= TARGET_ASYNC_OVER_SYNC or self.is_tie
        if self.is_comparison:
            return self.ratio >= TARGET_ASYNC_OVER_SYNC
        return self.ratio >= TARGET_RATIO and self.requests == self.jobs * len(self.pass_seconds)


def _runners(
    mode: str, url: str, key: str, ids: list[str], concurrency: int, handler: str = "sync"
) -> tuple[Callable[[], Timed], Callable[[], Timed]]:
    """The mode's bare loop and its reconcile pass."""
    if mode == "sync":
        return (lambda: loop_sync(url, key, ids, concurrency)), (lambda: pass_sync(url, key, ids, concurrency))
    if mode == "async-vs-sync":
        return (
            lambda: pass_sync(url, key, ids, concurrency),
            lambda: asyncio.run(pass_async_default(url, key, ids, concurrency, handler)),
        )
    if mode == "async":
        return (
            lambda: asyncio.run(loop_async(url, key, ids, concurrency)),
            lambda: asyncio.run(pass_async(url, key, ids, concurrency, threads=False)),
        )
    return (
        lambda: loop_sync(url, key, ids, concurrency),
        lambda: asyncio.run(pass_async(url, key, ids, concurrency, threads=True)),
    )


def measure(
    jobs: int = 10_000,
    modes: tuple[str, ...] = MODES,
    *,
    rounds: int = 3,
    sync_concurrency: int = 4,
    async_concurrency: int = 8,
    handler: str = "sync",
    comparison_rounds: int | None = None,
    comparison_jobs: int | None = None,
) -> list[Mode]:
    """*rounds* rounds of every mode's bare loop and reconcile pass over *jobs* finished jobs, one emulator;
    ``async-vs-sync`` runs *comparison_rounds* rounds over *comparison_jobs* of them (default
    :data:`COMPARISON_SPLIT` times the rounds, over that fraction of the jobs), after the others."""
    if comparison_rounds is None:
        comparison_rounds = COMPARISON_SPLIT * rounds
    if comparison_jobs is None:
        comparison_jobs = max(1, jobs // COMPARISON_SPLIT)
    key = secrets.token_urlsafe(16)
    port = free_port()
    argv = [sys.executable, "-m", "kreuzberg_webhooks", "emulate", "--port", str(port), f"--api-key={key}"]
    timings: dict[str, tuple[list[Timed], list[Timed]]] = {mode: ([], []) for mode in modes}
    requests = dict.fromkeys(modes, 0)
    # The comparison runs both reconcilers at the async modes' concurrency.
    concurrency = {mode: sync_concurrency if mode == "sync" else async_concurrency for mode in modes}
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_server([*argv, "--job-delay", "0"], port=port, log=Path(tmp) / "emulator.log") as server,
    ):
        ids = submit(server.url, key, jobs)
        time.sleep(0.1)  # every job past its (zero) delay
        tracked = {mode: ids[:comparison_jobs] if mode == "async-vs-sync" else ids for mode in modes}
        schedule = [
            *itertools.product(range(rounds), (mode for mode in modes if mode != "async-vs-sync")),
            *itertools.product(range(comparison_rounds), (mode for mode in modes if mode == "async-vs-sync")),
        ]
        for number, mode in schedule:
            loop, reconcile = _runners(mode, server.url, key, tracked[mode], concurrency[mode], handler)
            if number % 2:
                done = reconcile()
                limit = loop()
            else:
                limit = loop()
                done = reconcile()
            timings[mode][0].append(limit)
            timings[mode][1].append(done)
            requests[mode] += done.requests
    return [
        Mode(
            mode,
            concurrency[mode],
            len(tracked[mode]),
            tuple(timed.seconds for timed in timings[mode][0]),
            tuple(timed.seconds for timed in timings[mode][1]),
            requests[mode],
            tuple(timed.cpu for timed in timings[mode][0]),
            tuple(timed.cpu for timed in timings[mode][1]),
        )
        for mode in modes
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reconcile")
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=["all", *MODES, "async-vs-sync-remote"], default="all")
    parser.add_argument("--async-concurrency", type=int, default=8)
    parser.add_argument("--sync-concurrency", type=int, default=4)
    parser.add_argument(
        "--handler",
        choices=["sync", "async"],
        default="sync",
        help="the async-vs-sync comparison's AsyncReconciler handler: a plain no-op or an async def one",
    )
    parser.add_argument(
        "--comparison-rounds",
        type=int,
        default=None,
        help=f"the async-vs-sync comparison's rounds (default {COMPARISON_SPLIT} x --rounds)",
    )
    parser.add_argument(
        "--comparison-jobs",
        type=int,
        default=None,
        help=f"jobs per pass of the async-vs-sync comparison (default --jobs / {COMPARISON_SPLIT})",
    )
    parser.add_argument("--remote-rounds", type=int, default=6, help="async-vs-sync-remote's rounds")
    parser.add_argument("--remote-jobs", type=int, default=1_000, help="jobs per pass of async-vs-sync-remote")
    parser.add_argument(
        "--latency", type=float, default=REMOTE_LATENCY, help="seconds the API is away in async-vs-sync-remote"
    )
    args = parser.parse_args()
    modes = MODES if args.mode == "all" else tuple(mode for mode in (args.mode,) if mode in MODES)
    results = (
        measure(
            args.jobs,
            modes,
            rounds=args.rounds,
            sync_concurrency=args.sync_concurrency,
            async_concurrency=args.async_concurrency,
            handler=args.handler,
            comparison_rounds=args.comparison_rounds,
            comparison_jobs=args.comparison_jobs,
        )
        if modes
        else []
    )
    if args.mode in ("all", "async-vs-sync-remote"):
        results.append(measure_remote(args.remote_jobs, args.remote_rounds, args.latency))
    for result in results:
        if result.mode == "async-vs-sync-remote":
            async_default, sync_default = shipped_concurrency()
            print(
                f"{result.mode:>13} (as shipped: {async_default} / {sync_default} at once; the API "
                f"{args.latency * 1000:g} ms away): {len(result.pass_seconds)} rounds of {result.jobs:,} tracked jobs, "
                f"async default {result.rate:,.0f} jobs/s, the sync Reconciler {result.loop_rate:,.0f} jobs/s "
                f"(medians); async / sync per round: median {result.ratio:.3f}x ({result.spread}) "
                f"(target: median >= {TARGET_ASYNC_OVER_SYNC}x): {'met' if result.met else 'NOT met'}"
            )
            continue
        if result.is_comparison:
            print(
                f"{result.mode:>13} (concurrency {result.concurrency}, {args.handler} handler): "
                f"{len(result.pass_seconds)} rounds of {result.jobs:,} tracked jobs, async default "
                f"{result.rate:,.0f} jobs/s, the sync Reconciler {result.loop_rate:,.0f} jobs/s (medians); "
                f"async / sync per round: median {result.ratio:.3f}x ({result.spread}) "
                f"(target: median >= {TARGET_ASYNC_OVER_SYNC}x, or a tie: 1.0 within the middle half): "
                f"{'met' if result.met else 'NOT met'}{' (a tie)' if result.is_tie else ''}; "
                f"CPU per job {result.cpu_per_job[0] * 1e6:,.0f} us async, {result.cpu_per_job[1] * 1e6:,.0f} us sync "
                f"(async / sync per round: median {result.cpu_ratio:.2f}x)"
            )
            continue
        print(
            f"{result.mode:>13} (concurrency {result.concurrency}): {result.jobs:,} tracked jobs, "
            f"{result.rate:,.0f} jobs/s against a bare httpx loop's {result.loop_rate:,.0f} GETs/s = "
            f"{result.ratio:.2f}x the loop ({result.spread}; target >= {TARGET_RATIO}x); "
            f"{result.requests_per_job:.2f} requests per open job (target 1.00): "
            f"{'met' if result.met else 'NOT met'}"
        )
    return 0 if all(result.requests_per_job == 1 for result in results if not result.is_comparison) else 1


if __name__ == "__main__":
    sys.exit(main())
