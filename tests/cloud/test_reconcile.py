"""Reconciliation against the emulator under a real server: every job's handlers run exactly once,
whichever way it came (webhook, duplicates, concurrent copies, or the reconciler), whatever fails."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import random
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from kreuzberg_webhooks import ConfigurationError, Event, Receiver, ReplayWindow, SQLiteStore
from kreuzberg_webhooks.cloud import (
    AsyncJobsClient,
    AsyncReconciler,
    Backoff,
    InvalidAPIKey,
    JobsClient,
    MemoryTracker,
    Reconciler,
    SQLiteTracker,
    delivered_via,
)
from kreuzberg_webhooks.emulator import Emulator, Faults
from tests.cloud.support import serving

pytestmark = pytest.mark.slow

KEY = "reconcile-test-key-7d2e"
SECRET = "reconcile-test-webhook-secret-0123456789abcdef"
FAST = Backoff(initial=0.02, cap=0.2)
RECHECK = Backoff(initial=0.2, cap=0.5)


class Recorder:
    """The app's handler: fetch the result unless carried, store its length, once per job (we count)."""

    def __init__(self, client: JobsClient | None = None) -> None:
        self.client = client
        self.seen: list[tuple[str, str, int | None, str]] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        result = self.client.result_for(event) if self.client is not None else getattr(event, "result", None)
        length = len(result.content) if result is not None and result.content is not None else None
        with self._lock:
            self.seen.append((str(event.job_id), event.type, length, delivered_via()))

    def per_job(self) -> Counter[str]:
        return Counter(job_id for job_id, *_ in self.seen)

    def vias(self) -> Counter[str]:
        return Counter(via for *_, via in self.seen)


def wait_until(condition: Any, timeout: float, step: Any = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if step is not None:
            step()
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_500_jobs_with_lost_duplicated_webhooks_a_flaky_api_and_a_receiver_outage(tmp_path: Path) -> None:
    receiver = Receiver(SECRET, store=SQLiteStore(tmp_path / "replay.sqlite3"))
    faults = Faults(drop=0.4, duplicate=0.2, concurrent=0.05, api_errors=0.1, retry_after=0)
    rng = random.Random(7)
    texts = {}
    with (
        serving(receiver) as server,
        Emulator(
            KEY, webhook_url=server.url, webhook_secret=SECRET, job_delay=0.3, time_scale=0.01, faults=faults, seed=7
        ) as cloud,
        JobsClient(KEY, cloud.base_url, backoff=FAST, retry_deadline=30) as client,
    ):
        recorder = Recorder(client)
        receiver.on()(recorder)
        reconciler = Reconciler(
            receiver, client, SQLiteTracker(tmp_path / "replay.sqlite3"), grace=1.0, recheck=RECHECK, concurrency=8
        )
        for batch in range(50):
            files = []
            for n in range(10):
                text = f"document {batch}-{n} " + "x" * rng.randrange(0, 400)
                files.append((f"{batch}-{n}.txt", text.encode()))
            submission = client.extract(files)
            reconciler.track(submission.job_ids)
            for job_id, (_, data) in zip(submission.job_ids, files, strict=True):
                texts[str(job_id)] = data.decode()
            if batch == 25:
                server.stop()  # the receiver is down for a while: webhooks fail and are retried
            if batch == 35:
                # Down until the sender has given up on at least one event (its whole scaled schedule).
                assert wait_until(lambda: any(e.outcome == "dead-lettered" for e in cloud.events), 60)
                server.start()
        assert len(texts) == 500

        def all_handled() -> bool:
            return set(recorder.per_job()) >= set(texts)

        assert wait_until(all_handled, 120, step=reconciler.run_once), f"{len(recorder.per_job())} of 500 handled"
        assert cloud.wait_for_webhooks(60)  # late retries and duplicates arrive too
        reconciler.run_once()
        stats = cloud.stats

    counts = recorder.per_job()
    assert set(counts) == set(texts)
    assert set(counts.values()) == {1}, [job for job, n in counts.items() if n > 1]
    for job_id, event_type, length, _ in recorder.seen:
        assert event_type == "job.completed"
        assert length == len(texts[job_id])
    vias = recorder.vias()
    assert vias["reconcile"] >= 150  # about 40 % of the webhooks were never sent
    assert vias["webhook"] >= 150
    assert stats.webhooks_dropped >= 150
    assert stats.webhooks_lost >= 1  # dead-lettered while the receiver was down: the reconciler got them
    assert stats.api_faults > 0


def test_one_request_per_open_job_per_pass_and_none_for_jobs_a_webhook_closed(tmp_path: Path) -> None:
    receiver = Receiver(SECRET)
    recorder = Recorder()
    receiver.on()(recorder)
    with (
        serving(receiver) as server,
        Emulator(
            KEY, webhook_url=server.url, webhook_secret=SECRET, job_delay=0, faults=Faults(drop=0.5), seed=3
        ) as cloud,
        JobsClient(KEY, cloud.base_url, backoff=FAST) as client,
    ):
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=0.01, recheck=RECHECK)
        ids = [str(i) for i in client.extract([(f"{n}.txt", b"abc") for n in range(40)]).job_ids]
        reconciler.track(ids)
        assert cloud.wait_for_webhooks(20)
        before = dict(cloud.stats.job_requests)
        report = reconciler.run_once()
        after = dict(cloud.stats.job_requests)
        dropped = {event.job_id for event in cloud.events if event.outcome == "dropped"}
    assert before == {}
    assert set(after) == dropped  # a job its webhook closed is never fetched
    assert set(after.values()) == {1}
    assert report.checked == len(dropped)
    assert sorted(report.processed) == sorted(dropped)
    assert set(recorder.per_job().values()) == {1}
    assert len(recorder.per_job()) == 40


def test_permanent_api_errors_are_reported_and_not_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    receiver = Receiver(SECRET)
    with Emulator(KEY) as cloud, JobsClient(KEY, cloud.base_url, backoff=FAST) as client:
        tracker = MemoryTracker()
        reconciler = Reconciler(receiver, client, tracker, grace=0.01, recheck=RECHECK, not_found_grace=0)
        purged = str(uuid.uuid4())
        reconciler.track([purged], delay=0)
        report = reconciler.run_once()
        again = reconciler.run_once()
        assert cloud.stats.job_requests == {purged: 1}
        entry = tracker.get(purged)
        with JobsClient("not-" + KEY, cloud.base_url, backoff=FAST) as wrong:
            bad_key = Reconciler(receiver, wrong, MemoryTracker(), grace=0.01, observe=False)
            bad_key.track([str(uuid.uuid4())], delay=0)
            with pytest.raises(InvalidAPIKey):
                bad_key.run_once()
        requests = cloud.stats.api_requests
    assert [job for job, _ in report.failed] == [purged]
    assert "404" in report.failed[0][1]
    assert again.checked == 0
    assert entry is not None
    assert entry.closed
    assert requests == 2
    assert KEY not in caplog.text


def test_jobs_not_finished_are_checked_again_later() -> None:
    receiver = Receiver(SECRET)
    recorder = Recorder()
    receiver.on()(recorder)
    with Emulator(KEY, job_delay=1.0) as cloud, JobsClient(KEY, cloud.base_url, backoff=FAST) as client:
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=0.01, recheck=RECHECK)
        [job_id] = cloud.submit([("a.txt", b"later")])
        reconciler.track([job_id], delay=0)
        first = reconciler.run_once()
        assert wait_until(lambda: recorder.per_job()[job_id] == 1, 10, step=reconciler.run_once)
    assert first.pending == 1
    assert recorder.seen == [(job_id, "job.completed", 5, "reconcile")]


def test_cancelled_and_failed_jobs_reach_their_handlers_once_without_a_result() -> None:
    receiver = Receiver(SECRET)
    recorder = Recorder()
    with Emulator(KEY, job_delay=30) as cloud, JobsClient(KEY, cloud.base_url, backoff=FAST) as client:
        recorder.client = client
        receiver.on()(recorder)
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=0.01, recheck=RECHECK)
        [cancelled] = cloud.submit([("a.txt", b"never read")])
        assert cloud.cancel(cancelled)
        assert not cloud.cancel(cancelled)
        reconciler.track([cancelled], delay=0)
        report = reconciler.run_once()
    with Emulator(KEY, job_delay=0, failure_rate=1.0) as cloud, JobsClient(KEY, cloud.base_url) as client:
        recorder.client = client
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=0.01, recheck=RECHECK, observe=False)
        [failed] = cloud.submit([("b.txt", b"unreadable")])
        reconciler.track([failed], delay=0)
        assert wait_until(lambda: len(recorder.seen) == 2, 10, step=reconciler.run_once)
    assert report.processed == [cancelled]
    assert recorder.seen == [(cancelled, "job.cancelled", None, "reconcile"), (failed, "job.failed", None, "reconcile")]


def test_a_crawl_job_is_dispatched_and_its_children_tracked() -> None:
    receiver = Receiver(SECRET)
    recorder = Recorder()
    receiver.on()(recorder)
    with Emulator(KEY, job_delay=0) as cloud, JobsClient(KEY, cloud.base_url, backoff=FAST) as client:
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=0.01, recheck=RECHECK)
        crawl_id = cloud.submit_crawl(["https://example.com/a", "https://example.com/b"])
        reconciler.track([crawl_id], delay=0)
        first = reconciler.run_once()
        second = reconciler.run_once()
    assert first.processed == [crawl_id]
    assert first.children == 2
    assert len(second.processed) == 2
    assert [length for _, _, length, _ in recorder.seen[1:]] == [len("Page at https://example.com/a")] * 2


def test_the_embedded_thread_reconciles_until_stopped() -> None:
    receiver = Receiver(SECRET)
    recorder = Recorder()
    receiver.on()(recorder)
    with Emulator(KEY, job_delay=0) as cloud, JobsClient(KEY, cloud.base_url, backoff=FAST) as client:
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=0.1, recheck=RECHECK)
        reconciler.track(cloud.submit([("a.txt", b"a"), ("b.txt", b"bb")]))
        reconciler.start(0.05)
        try:
            assert wait_until(lambda: len(recorder.seen) == 2, 10)
        finally:
            reconciler.stop()
    assert sorted(length for _, _, length, _ in recorder.seen) == [1, 2]


@pytest.mark.parametrize("client_kind", ["async-client", "sync-client-in-threads"])
def test_the_async_reconciler_dispatches_each_job_once(tmp_path: Path, client_kind: str) -> None:
    receiver = Receiver(SECRET, store=SQLiteStore(tmp_path / "replay.sqlite3"))
    seen: list[str] = []

    @receiver.on()
    async def handler(event: Event) -> None:
        seen.append(f"{event.job_id} {delivered_via()}")

    async def scenario(cloud: Emulator) -> None:
        async with AsyncJobsClient(KEY, cloud.base_url, backoff=FAST) as async_client:
            sync_client = JobsClient(KEY, cloud.base_url, backoff=FAST)
            client = async_client if client_kind == "async-client" else sync_client
            reconciler = AsyncReconciler(receiver, client, SQLiteTracker(tmp_path / "t.db"), grace=0.01)
            submission = await async_client.extract([(f"{n}.txt", b"x") for n in range(60)])
            await reconciler.track(submission.job_ids, delay=0)
            await asyncio.sleep(0.3)
            task = reconciler.start(0.05)
            deadline = time.monotonic() + 20
            while len(seen) < 60 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await reconciler.stop()
            sync_client.close()
            assert task.done()

    with Emulator(KEY, job_delay=0.1, faults=Faults(api_errors=0.2, retry_after=0), seed=2) as cloud:
        asyncio.run(scenario(cloud))
        requests = cloud.stats.job_requests
    assert len(seen) == 60
    assert len(set(seen)) == 60
    assert all(line.endswith(" reconcile") for line in seen)
    assert len(requests) == 60


def test_a_grace_the_replay_store_would_outlive_is_refused() -> None:
    receiver = Receiver(SECRET, retention=86_700, document_window=ReplayWindow(max_age=86_400))
    with JobsClient(KEY, "http://127.0.0.1:9") as client:
        with pytest.raises(ConfigurationError, match="retention"):
            Reconciler(receiver, client, MemoryTracker(), grace=100_000)
        with pytest.raises(ConfigurationError):
            Reconciler(receiver, client, MemoryTracker(), grace=0)


def test_a_job_the_service_says_it_delivered_but_this_receiver_never_saw_is_processed_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from kreuzberg_webhooks.emulator import WebhookConfig

    receiver = Receiver(SECRET)
    recorder = Recorder()
    receiver.on()(recorder)
    # drop=1.0: lost on the way after the service counted it delivered (a proxy answered 2xx)
    with Emulator(KEY, job_delay=0, faults=Faults(drop=1.0)) as cloud, JobsClient(KEY, cloud.base_url) as client:
        [job_id] = cloud.submit([("a.txt", b"never seen")], webhook=WebhookConfig("http://127.0.0.1:9/hook"))
        assert cloud.wait_for_webhooks(10)
        assert client.get_job(job_id).raw["webhook_delivery"]["status"] == "delivered"
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=0.05, observe=False)
        reconciler.track([job_id])
        time.sleep(0.06)
        with caplog.at_level(logging.WARNING, logger="kreuzberg_webhooks.cloud"):
            report = reconciler.run_once()
            again = reconciler.run_once()
    assert report.processed == [job_id]
    assert again.checked == 0
    assert recorder.per_job() == Counter({job_id: 1})
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert job_id in warning.getMessage()
    assert "1 attempt" in warning.getMessage()


class _Gate(httpx.BaseTransport):
    """A real HTTP transport whose first *parties* requests each wait until all of them are in flight."""

    def __init__(self, parties: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.barrier = threading.Barrier(parties, timeout=10)
        self.parties = parties
        self.started = 0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.started += 1
            gated = self.started <= self.parties
        if gated:
            self.barrier.wait()  # BrokenBarrierError if fewer than *parties* are ever in flight at once
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_the_async_reconciler_with_a_sync_client_has_concurrency_requests_in_flight() -> None:
    # More than the loop's default executor has threads (min(32, CPUs + 4)).
    concurrency = min(32, (os.cpu_count() or 1) + 4) + 2
    receiver = Receiver(SECRET)
    recorder = Recorder()
    receiver.on()(recorder)
    gate = _Gate(concurrency)

    async def scenario(cloud: Emulator) -> None:
        http = httpx.Client(transport=gate, limits=httpx.Limits(max_connections=concurrency))
        with JobsClient(KEY, cloud.base_url, client=http, retry_deadline=0.5, backoff=FAST) as client:
            reconciler = AsyncReconciler(receiver, client, MemoryTracker(), grace=0.01, concurrency=concurrency)
            await reconciler.track(cloud.submit([(f"{n}.txt", b"x") for n in range(3 * concurrency)]), delay=0)
            report = await reconciler.run_once()
        http.close()
        assert len(report.processed) == 3 * concurrency, report.summary()

    with Emulator(KEY, job_delay=0) as cloud:
        asyncio.run(scenario(cloud))
        requests = cloud.stats.job_requests
    assert not gate.barrier.broken
    assert len(requests) == 3 * concurrency
    assert set(requests.values()) == {1}
    assert set(recorder.per_job().values()) == {1}


def test_an_async_client_with_its_own_pool_is_fetched_through_its_sync_twin_in_the_pass_threads() -> None:
    receiver = Receiver(SECRET)
    reconcile_threads: list[bool] = []

    @receiver.on()
    async def handler(event: Event) -> None:
        reconcile_threads.append(any(t.name.startswith("kreuzberg-reconcile") for t in threading.enumerate()))

    async def scenario(cloud: Emulator) -> JobsClient | None:
        client = AsyncJobsClient(KEY, cloud.base_url, backoff=FAST, retry_deadline=7, timeout=9)
        twin = client.threaded()
        assert isinstance(twin, JobsClient)
        assert client.threaded() is twin
        assert (twin.base_url, twin.timeout, twin.retry_deadline, twin.backoff) == (cloud.base_url, 9, 7, FAST)
        reconciler = AsyncReconciler(receiver, client, MemoryTracker(), grace=0.01, concurrency=4)
        await reconciler.track(cloud.submit([(f"{n}.txt", b"x") for n in range(12)]), delay=0)
        report = await reconciler.run_once()
        assert len(report.processed) == 12, report.summary()
        await client.aclose()
        return twin

    with Emulator(KEY, job_delay=0) as cloud:
        twin = asyncio.run(scenario(cloud))
        requests = cloud.stats.job_requests
        assert twin is not None
        with pytest.raises(RuntimeError):  # closed with the async client
            twin.get_job(next(iter(requests)))
    assert reconcile_threads == [True] * 12
    assert len(requests) == 12
    assert set(requests.values()) == {1}


def test_an_async_client_on_the_callers_own_httpx_client_is_used_as_given() -> None:
    receiver = Receiver(SECRET)
    seen: list[str] = []
    receiver.on()(lambda event: seen.append(str(event.job_id)))
    sent: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        sent.append(request.url.path.rsplit("/", 1)[1])

    async def scenario(cloud: Emulator) -> None:
        async with (
            httpx.AsyncClient(event_hooks={"request": [on_request]}) as http,
            AsyncJobsClient(KEY, cloud.base_url, client=http, backoff=FAST) as client,
        ):
            assert client.threaded() is None
            reconciler = AsyncReconciler(receiver, client, MemoryTracker(), grace=0.01, concurrency=4)
            await reconciler.track(cloud.submit([(f"{n}.txt", b"x") for n in range(12)]), delay=0)
            report = await reconciler.run_once()
        assert len(report.processed) == 12, report.summary()

    with Emulator(KEY, job_delay=0) as cloud:
        asyncio.run(scenario(cloud))
    assert sorted(sent) == sorted(seen)
    assert len(set(sent)) == 12


@pytest.mark.parametrize("client_kind", ["async-client", "sync-client-in-threads"])
def test_a_bad_api_key_ends_the_async_pass_without_sending_the_rest(client_kind: str) -> None:
    receiver = Receiver(SECRET)

    async def scenario(cloud: Emulator) -> None:
        async with AsyncJobsClient("not-" + KEY, cloud.base_url, backoff=FAST) as async_client:
            sync_client = JobsClient("not-" + KEY, cloud.base_url, backoff=FAST)
            client = async_client if client_kind == "async-client" else sync_client
            reconciler = AsyncReconciler(receiver, client, MemoryTracker(), grace=0.01, concurrency=2)
            await reconciler.track([str(uuid.uuid4()) for _ in range(40)], delay=0)
            with pytest.raises(InvalidAPIKey):
                await reconciler.run_once()
            sync_client.close()

    with Emulator(KEY) as cloud:
        asyncio.run(scenario(cloud))
        requests = cloud.stats.api_requests
    assert 1 <= requests <= 2  # at most the checks under way when the first 401 came back, one per worker


def test_a_bad_api_key_ends_the_sync_pass_without_sending_the_rest() -> None:
    receiver = Receiver(SECRET)
    with Emulator(KEY) as cloud, JobsClient("not-" + KEY, cloud.base_url, backoff=FAST) as client:
        reconciler = Reconciler(receiver, client, MemoryTracker(), grace=0.01, concurrency=2)
        reconciler.track([str(uuid.uuid4()) for _ in range(40)], delay=0)
        with pytest.raises(InvalidAPIKey):
            reconciler.run_once()
        requests = cloud.stats.api_requests
    assert 1 <= requests <= 2  # at most the checks under way when the first 401 came back, one per worker


_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="none")


async def _resolve(project: str | None) -> str:
    return SECRET


@pytest.mark.parametrize("secrets", ["static", "async resolver"])
def test_the_async_reconciler_runs_sync_handlers_in_its_pass_threads_and_coroutines_on_the_loop(secrets: str) -> None:
    # A trusted job is not verified: a receiver whose secret resolver is async settles it in the pass threads too.
    receiver = Receiver(SECRET if secrets == "static" else _resolve)
    sync_runs: list[tuple[str, str, str, str]] = []
    async_runs: list[tuple[str, bool]] = []

    @receiver.on("job.completed")
    def completed(event: Event) -> None:
        sync_runs.append((str(event.job_id), threading.current_thread().name, delivered_via(), _CALLER.get()))

    @receiver.on("crawl.completed")
    async def crawled(event: Event) -> None:
        async_runs.append((str(event.job_id), threading.current_thread() is threading.main_thread()))

    async def scenario(cloud: Emulator) -> None:
        async with AsyncJobsClient(KEY, cloud.base_url, backoff=FAST) as client:
            reconciler = AsyncReconciler(receiver, client, MemoryTracker(), grace=0.01, concurrency=3)
            await reconciler.track(cloud.submit([(f"{n}.txt", b"x") for n in range(12)]), delay=0)
            await reconciler.track([cloud.submit_crawl(["https://example.test/a"])], delay=0)
            _CALLER.set("the pass's caller")
            report = await reconciler.run_once()
        assert len(report.processed) == 13, report.summary()

    with Emulator(KEY, job_delay=0) as cloud:
        asyncio.run(scenario(cloud))
    assert len({job_id for job_id, *_ in sync_runs}) == len(sync_runs) == 12
    assert {(via, caller) for _, _, via, caller in sync_runs} == {("reconcile", "the pass's caller")}
    assert all(name.startswith("kreuzberg-reconcile") for _, name, _, _ in sync_runs)
    assert [on_loop for _, on_loop in async_runs] == [True]


def test_a_cancelled_async_pass_starts_no_more_checks_and_no_job_is_processed_twice() -> None:
    receiver = Receiver(SECRET)
    recorder = Recorder()
    entered, release = threading.Event(), threading.Event()

    @receiver.on()
    def handler(event: Event) -> None:
        entered.set()
        release.wait(10)  # the first handlers hold their threads until the pass is cancelled
        recorder(event)

    async def scenario(cloud: Emulator) -> tuple[int, int]:
        async with AsyncJobsClient(KEY, cloud.base_url, backoff=FAST) as client:
            reconciler = AsyncReconciler(receiver, client, MemoryTracker(), grace=0.01, lease=0.5, concurrency=2)
            job_ids = cloud.submit([(f"{n}.txt", b"x") for n in range(40)])
            await reconciler.track(job_ids, delay=0)
            task = asyncio.create_task(reconciler.run_once())
            while not entered.is_set():
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            release.set()
            sent = await asyncio.to_thread(lambda: wait_until(lambda: len(recorder.seen) >= 1, 10))
            assert sent
            await asyncio.sleep(0.2)  # the threads finish the checks under way, and start none
            fetched_by_the_cancelled_pass = len(cloud.stats.job_requests)
            deadline = time.monotonic() + 20
            while len(recorder.per_job()) < 40 and time.monotonic() < deadline:
                await asyncio.sleep(0.3)  # past the lease: the cancelled pass's jobs come back
                await reconciler.run_once()
            return fetched_by_the_cancelled_pass, len(recorder.per_job())

    with Emulator(KEY, job_delay=0) as cloud:
        fetched, processed = asyncio.run(scenario(cloud))
    assert fetched <= 2 * 8  # at most the chunk each of the two threads had taken
    assert processed == 40
    assert set(recorder.per_job().values()) == {1}
