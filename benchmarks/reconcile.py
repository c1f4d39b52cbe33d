"""``python -m benchmarks.reconcile [--jobs N] [--mode all|sync|async|async-threads]``: reconcile N tracked jobs
against the emulator.

The emulator runs as its own process (``kreuzberg-webhooks emulate``, no webhook
URL: no webhook ever closes a job). For each mode, N finished jobs are submitted,
tracked, and reconciled in one pass through a receiver with a no-op handler: the
:class:`~kreuzberg_webhooks.cloud.Reconciler` (threads, 4 at once), the
:class:`~kreuzberg_webhooks.cloud.AsyncReconciler` with an ``AsyncJobsClient`` (8 at
once: httpcore's pool scans every connection per request, so more costs more), and
the AsyncReconciler with a sync ``JobsClient`` in worker threads, all on kept-alive
connections. Reports jobs per second and HTTP requests per open job (counted by
the client's request hook); the target is at least 1,000 jobs/s and exactly one
request per open job per pass. Exits 1 if any job took more than one request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import httpx

from kreuzberg_webhooks import Receiver
from kreuzberg_webhooks.cloud import AsyncJobsClient, AsyncReconciler, JobsClient, MemoryTracker, Reconciler
from tests.servers import free_port, run_server

TARGET_JOBS_PER_SECOND = 1000.0


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


async def reconcile(
    base_url: str, key: str, ids: list[str], concurrency: int, *, threads: bool = False
) -> tuple[float, int, int]:
    receiver = Receiver("benchmark-secret-0123456789abcdef0123456789")
    handled = 0

    @receiver.on()
    async def count(event: object) -> None:
        nonlocal handled
        handled += 1

    requests = 0

    async def on_request(request: httpx.Request) -> None:
        nonlocal requests
        requests += 1

    def on_sync_request(request: httpx.Request) -> None:
        nonlocal requests
        requests += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(limits=limits, timeout=30, event_hooks={"request": [on_request]}) as http,
    ):
        sync_http = httpx.Client(limits=limits, timeout=30, event_hooks={"request": [on_sync_request]})
        client: AsyncJobsClient | JobsClient = (
            JobsClient(key, base_url, client=sync_http) if threads else AsyncJobsClient(key, base_url, client=http)
        )
        reconciler = AsyncReconciler(
            receiver, client, MemoryTracker(), grace=1, concurrency=concurrency, batch_size=len(ids)
        )
        await reconciler.track(ids, delay=0)
        started = time.perf_counter()
        report = await reconciler.run_once()
        elapsed = time.perf_counter() - started
        sync_http.close()
    assert report.checked == len(ids), report.summary()
    assert len(report.processed) == len(ids) == handled, report.summary()
    return elapsed, requests, handled


def reconcile_sync(base_url: str, key: str, ids: list[str], concurrency: int) -> tuple[float, int, int]:
    receiver = Receiver("benchmark-secret-0123456789abcdef0123456789")
    handled = []
    receiver.on()(handled.append)
    requests = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(limits=limits, timeout=30, event_hooks={"request": [requests.append]}) as http:
        client = JobsClient(key, base_url, client=http)
        reconciler = Reconciler(
            receiver, client, MemoryTracker(), grace=1, concurrency=concurrency, batch_size=len(ids)
        )
        reconciler.track(ids, delay=0)
        started = time.perf_counter()
        report = reconciler.run_once()
        elapsed = time.perf_counter() - started
    assert report.checked == len(ids), report.summary()
    assert len(report.processed) == len(ids) == len(handled), report.summary()
    return elapsed, len(requests), len(handled)


@dataclass(frozen=True)
class Pass:
    """One mode's reconcile pass."""

    mode: str
    concurrency: int
    jobs: int
    seconds: float
    requests: int

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds

    @property
    def requests_per_job(self) -> float:
        return self.requests / self.jobs

    @property
    def met(self) -> bool:
        return self.rate >= TARGET_JOBS_PER_SECOND and self.requests == self.jobs


MODES = ("sync", "async", "async-threads")


def measure(
    jobs: int = 10_000, modes: tuple[str, ...] = MODES, *, sync_concurrency: int = 4, async_concurrency: int = 8
) -> list[Pass]:
    """Run each mode's pass over *jobs* fresh jobs against one emulator process."""
    key = secrets.token_urlsafe(16)
    port = free_port()
    argv = [sys.executable, "-m", "kreuzberg_webhooks", "emulate", "--port", str(port), "--api-key", key]
    passes = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_server([*argv, "--job-delay", "0"], port=port, log=Path(tmp) / "emulator.log") as server,
    ):
        for mode in modes:
            ids = submit(server.url, key, jobs)  # fresh jobs per mode: each pass finds them all open
            time.sleep(0.1)  # every job past its (zero) delay
            if mode.startswith("async"):
                concurrency = async_concurrency
                threads = mode == "async-threads"
                elapsed, requests, _ = asyncio.run(reconcile(server.url, key, ids, concurrency, threads=threads))
            else:
                concurrency = sync_concurrency
                elapsed, requests, _ = reconcile_sync(server.url, key, ids, concurrency)
            passes.append(Pass(mode, concurrency, len(ids), elapsed, requests))
    return passes


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reconcile")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--mode", choices=["all", *MODES], default="all")
    parser.add_argument("--async-concurrency", type=int, default=8)
    parser.add_argument("--sync-concurrency", type=int, default=4)
    args = parser.parse_args()
    modes = MODES if args.mode == "all" else (args.mode,)
    passes = measure(args.jobs, modes, sync_concurrency=args.sync_concurrency, async_concurrency=args.async_concurrency)
    for result in passes:
        print(
            f"{result.mode:>13} (concurrency {result.concurrency}): reconciled {result.jobs:,} tracked jobs in "
            f"{result.seconds:.2f} s = {result.rate:,.0f} jobs/s (target >= {TARGET_JOBS_PER_SECOND:,.0f}); "
            f"{result.requests_per_job:.2f} requests per open job (target 1.00): "
            f"{'met' if result.met else 'NOT met'}"
        )
    return 0 if all(result.requests == result.jobs for result in passes) else 1


if __name__ == "__main__":
    sys.exit(main())
