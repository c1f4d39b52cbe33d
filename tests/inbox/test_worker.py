"""InboxWorker on a SQLite inbox and an injected clock: exactly once, retries, dead letters, leases."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from kreuzberg_webhooks import ConfigurationError, Event, MemoryStore, Receiver, ReplayWindow, StoreUnavailable
from kreuzberg_webhooks.inbox import DeliveryState, RetryPolicy, SQLiteInbox
from kreuzberg_webhooks.inbox.worker import DeliveryFailure, InboxWorker
from kreuzberg_webhooks.testing import job_event_payload
from tests.inbox.support import SECRET, CountingHandler, entry_for
from tests.stores.contract import NOW, FrozenClock

LEASE = 60.0


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def inbox(tmp_path: Path, clock: FrozenClock) -> SQLiteInbox:
    return SQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)


@pytest.fixture
def handler() -> CountingHandler:
    return CountingHandler()


def make_receiver(handler: CountingHandler, clock: FrozenClock) -> Receiver:
    receiver = Receiver(
        SECRET,
        store=MemoryStore(clock=clock),
        clock=clock,
        window=ReplayWindow(max_age=3600, max_future=60),
    )
    receiver.on()(handler)
    return receiver


def make_worker(
    handler: CountingHandler, inbox: SQLiteInbox, clock: FrozenClock, **options: object
) -> tuple[InboxWorker, list[DeliveryFailure], list[DeliveryFailure]]:
    failures: list[DeliveryFailure] = []
    dead: list[DeliveryFailure] = []
    worker = InboxWorker(
        make_receiver(handler, clock),
        inbox,
        lease=LEASE,
        clock=clock,
        on_failure=failures.append,
        on_dead=dead.append,
        **options,  # type: ignore[arg-type]
    )
    return worker, failures, dead


def test_each_queued_delivery_runs_its_handlers_once(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    entries = [entry_for(received_at=NOW) for _ in range(25)]
    for entry in entries:
        inbox.enqueue(entry)
    worker, failures, _ = make_worker(handler, inbox, clock, batch=4)
    assert worker.drain() == 25
    assert worker.drain() == 0
    assert handler.calls == {entry.job_id: 1 for entry in entries}
    assert inbox.counts()[DeliveryState.DONE] == 25
    assert failures == []


def test_a_handler_failing_for_an_hour_runs_once_after_it_recovers(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    policy = RetryPolicy(first_delay=10, max_delay=600, max_attempts=50, max_age=24 * 3600)
    worker, failures, dead = make_worker(handler, inbox, clock, policy=policy)
    entries = [entry_for(received_at=NOW) for _ in range(5)]
    for entry in entries:
        inbox.enqueue(entry)
    handler.failing = True
    outage_ends = NOW + 3600
    while clock.now < outage_ends:
        worker.drain()
        clock.advance(15)
    assert handler.calls == {}
    assert {r.state for r in inbox.list()} == {DeliveryState.QUEUED}
    handler.failing = False
    clock.advance(policy.max_delay)  # the longest wait the policy can have scheduled
    worker.drain()
    assert handler.calls == {entry.job_id: 1 for entry in entries}
    records = inbox.list()
    assert {r.state for r in records} == {DeliveryState.DONE}
    assert all(r.last_error is None for r in records)  # done: the outage's error is history
    # 10, 20, … 600 s between attempts: about 13 failed attempts each in the hour.
    assert all(10 <= r.attempts <= 16 for r in records)
    assert len(failures) == sum(r.attempts - 1 for r in records)
    assert dead == []


def test_a_delivery_goes_dead_after_the_last_attempt_and_the_hooks_hear_of_it(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    policy = RetryPolicy(first_delay=1, max_delay=1, max_attempts=3, max_age=None)
    worker, failures, dead = make_worker(handler, inbox, clock, policy=policy)
    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    handler.failing = True
    for _ in range(5):
        worker.drain()
        clock.advance(2)
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.DEAD, 3)
    assert record.last_error == f"RuntimeError: downstream is down (job {entry.job_id})"
    assert [(f.record.attempts, f.dead) for f in failures] == [(1, False), (2, False), (3, True)]
    assert len(dead) == 1
    assert dead[0].record.key == entry.key
    assert dead[0].error == record.last_error
    # Retried by an operator once the cause is fixed: processed once.
    handler.failing = False
    assert inbox.retry(state=DeliveryState.DEAD) == 1
    worker.drain()
    assert handler.calls == {entry.job_id: 1}


def test_a_killed_worker_gives_its_delivery_back_after_the_lease(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    killed = inbox.claim_due(LEASE)  # claimed by a worker that then died without a word
    assert len(killed) == 1
    worker, _, _ = make_worker(handler, inbox, clock)
    assert worker.drain() == 0
    clock.advance(LEASE + 1)
    assert worker.drain() == 1
    assert handler.calls == {entry.job_id: 1}
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.DONE, 2)


def test_an_event_already_processed_elsewhere_is_done_without_running_again(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    entry = entry_for(received_at=NOW)
    worker, _, _ = make_worker(handler, inbox, clock)
    store = worker.receiver.store
    assert isinstance(store, MemoryStore)
    token = store.claim(entry.key, 60).token
    assert token is not None
    store.complete(entry.key, token, 3600)  # the webhook path (or the reconciler) ran it
    inbox.enqueue(entry)
    worker.drain()
    assert handler.calls == {}
    record = inbox.get(entry.key)
    assert record is not None
    assert record.state is DeliveryState.DONE


def test_an_event_in_flight_elsewhere_is_given_back_without_counting_an_attempt(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    entry = entry_for(received_at=NOW)
    worker, failures, _ = make_worker(handler, inbox, clock)
    store = worker.receiver.store
    assert isinstance(store, MemoryStore)
    token = store.claim(entry.key, 30).token
    assert token is not None
    inbox.enqueue(entry)
    worker.drain()
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.QUEUED, 0)
    assert NOW + 29 <= record.next_attempt_at <= NOW + 31
    store.release(entry.key, token)  # the other owner failed
    clock.advance(31)
    worker.drain()
    assert handler.calls == {entry.job_id: 1}
    assert failures == []


class _DownStore(MemoryStore):
    down = True

    def claim(self, key: str, lease: float):  # type: ignore[no-untyped-def]
        if self.down:
            raise StoreUnavailable("replay store down")
        return super().claim(key, lease)


def test_a_replay_store_outage_is_waited_out_without_counting_attempts(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    store = _DownStore(clock=clock)
    receiver = Receiver(SECRET, store=store, clock=clock)
    receiver.on()(handler)
    policy = RetryPolicy(first_delay=5, max_delay=5, max_attempts=2, max_age=None)
    worker = InboxWorker(receiver, inbox, policy=policy, lease=LEASE, clock=clock)
    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    for _ in range(10):  # far more rounds than max_attempts: an outage is not the delivery's fault
        worker.drain()
        clock.advance(5)
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.QUEUED, 0)
    store.down = False
    worker.drain()
    assert handler.calls == {entry.job_id: 1}


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"event_id": 42}'], ids=["not-json", "not-an-object", "bad-field"]
)
def test_a_stored_body_that_cannot_be_parsed_goes_dead_at_once(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler, body: bytes
) -> None:
    good = entry_for(received_at=NOW)
    entry = type(good)(**{**{f: getattr(good, f) for f in good.__slots__}, "body": body})
    inbox.enqueue(entry)
    worker, _, dead = make_worker(handler, inbox, clock)
    worker.drain()
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.DEAD, 1)
    assert record.last_error is not None
    assert "cannot be parsed" in record.last_error or "not a JSON object" in record.last_error
    assert len(dead) == 1


def test_a_hook_that_raises_changes_nothing(inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler) -> None:
    def broken(failure: DeliveryFailure) -> None:
        raise ValueError("hook bug")

    worker = InboxWorker(make_receiver(handler, clock), inbox, clock=clock, on_failure=broken, on_dead=[broken])
    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    handler.failing = True
    worker.drain()
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.QUEUED, 1)


def test_the_worker_uses_the_receivers_inbox_by_default(inbox: SQLiteInbox, handler: CountingHandler) -> None:
    receiver = make_receiver(handler, FrozenClock())
    with pytest.raises(ConfigurationError, match="needs an inbox"):
        InboxWorker(receiver)


@pytest.mark.parametrize(
    "options",
    [{"lease": 0}, {"lease": float("inf")}, {"batch": 0}, {"poll_interval": float("nan")}, {"on_dead": [42]}],
    ids=["lease-zero", "lease-inf", "batch-zero", "poll-nan", "hook-not-callable"],
)
def test_settings_that_cannot_work_are_refused(
    inbox: SQLiteInbox, handler: CountingHandler, options: dict[str, object]
) -> None:
    with pytest.raises(ConfigurationError):
        InboxWorker(make_receiver(handler, FrozenClock()), inbox, **options)  # type: ignore[arg-type]


def test_async_handlers_run_once_too(inbox: SQLiteInbox, clock: FrozenClock) -> None:
    seen: list[str] = []
    receiver = make_receiver(CountingHandler(), clock)

    @receiver.on("job.completed")
    async def on_completed(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(str(event.job_id))

    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    InboxWorker(receiver, inbox, clock=clock).drain()
    assert seen == [entry.job_id]


# -- embedded: a thread and an asyncio task, on the real clock -----------------------------


def _wait_until_done(inbox: SQLiteInbox, count: int, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while inbox.counts()[DeliveryState.DONE] < count:
        assert time.monotonic() < end, inbox.counts()
        time.sleep(0.01)


def test_the_thread_processes_deliveries_as_they_arrive_and_stops(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    handler = CountingHandler()
    receiver = Receiver(SECRET)
    receiver.on()(handler)
    worker = InboxWorker(receiver, inbox, poll_interval=0.05)
    with worker.running_thread():
        assert worker.running
        entries = [entry_for(job_event_payload(), received_at=time.time()) for _ in range(10)]
        for entry in entries:
            inbox.enqueue(entry)
        worker.wake()
        _wait_until_done(inbox, 10)
    assert not worker.running
    assert handler.calls == {entry.job_id: 1 for entry in entries}


def test_the_task_processes_deliveries_on_the_event_loop_and_stops(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    handler = CountingHandler()
    receiver = Receiver(SECRET)
    receiver.on()(handler)
    worker = InboxWorker(receiver, inbox, poll_interval=0.05)
    entries = [entry_for(job_event_payload(), received_at=time.time()) for _ in range(10)]

    async def scenario() -> None:
        async with worker.running_task():
            assert worker.running
            for entry in entries:
                inbox.enqueue(entry)
            worker.wake()
            async with asyncio.timeout(30):
                while inbox.counts()[DeliveryState.DONE] < len(entries):
                    await asyncio.sleep(0.01)
        assert not worker.running

    asyncio.run(scenario())
    assert handler.calls == {entry.job_id: 1 for entry in entries}


def test_a_delivery_whose_workers_keep_dying_goes_dead_without_running_again(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    policy = RetryPolicy(first_delay=1, max_delay=1, max_attempts=3, max_age=None)
    worker, _, dead = make_worker(handler, inbox, clock, policy=policy)
    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    for _ in range(3):  # three workers claim it and die in the handler (a crash, an OOM kill)
        assert len(inbox.claim_due(LEASE)) == 1
        clock.advance(LEASE + 1)
    worker.drain()
    assert handler.calls == {}
    record = inbox.get(entry.key)
    assert record is not None
    assert record.state is DeliveryState.DEAD
    assert record.last_error is not None
    assert "never settled" in record.last_error
    assert len(dead) == 1


def test_a_receiver_that_raises_counts_as_a_failed_attempt(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    worker, failures, _ = make_worker(handler, inbox, clock)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("receiver bug")

    worker.receiver.process = broken  # type: ignore[method-assign]
    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    worker.drain()
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts, record.last_error) == (DeliveryState.QUEUED, 1, "RuntimeError: receiver bug")
    assert len(failures) == 1


def test_a_thread_is_refused_for_an_async_replay_store(inbox: SQLiteInbox) -> None:
    class AsyncStore:
        async def claim(self, key: str, lease: float) -> None: ...

        async def complete(self, key: str, token: str, retention: float) -> None: ...

        async def release(self, key: str, token: str) -> None: ...

    worker = InboxWorker(Receiver(SECRET, store=AsyncStore()), inbox)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="start_async"):
        worker.start()
    with pytest.raises(ConfigurationError, match="async"):
        worker.run_once()


# -- an outage at mark-done, a handler slower than the lease ------------------------------------


class _FlakyCompleteStore(MemoryStore):
    """A replay store that is down for the first *failures* calls of ``complete``."""

    def __init__(self, failures: int, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.failures = failures

    def complete(self, key: str, token: str, retention: float) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("replay store down at mark-done")
        super().complete(key, token, retention)


class _FlakyCompleteInbox(SQLiteInbox):
    """A SQLite inbox that is down for the first *failures* calls of ``complete`` and ``complete_many``."""

    failures = 0

    def complete(self, key: str, token: str) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("inbox down at mark-done")
        return super().complete(key, token)

    def complete_many(self, claims: Sequence[tuple[str, str]]) -> list[bool]:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailable("inbox down at mark-done")
        return super().complete_many(claims)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The retries' number and order are what is tested; their waits only slow the test down.
    import kreuzberg_webhooks.inbox.worker as worker_module
    import kreuzberg_webhooks.lifecycle.flows as flows

    monkeypatch.setattr(flows, "COMPLETE_RETRY_DELAYS", (0.0, 0.0, 0.0))
    monkeypatch.setattr(worker_module, "SETTLE_RETRY_DELAYS", (0.0, 0.0, 0.0), raising=False)


@pytest.mark.usefixtures("no_backoff")
def test_a_short_outage_at_mark_done_still_runs_the_handler_once(
    tmp_path: Path, clock: FrozenClock, handler: CountingHandler
) -> None:
    store = _FlakyCompleteStore(1, clock=clock)
    inbox = _FlakyCompleteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    inbox.failures = 1
    receiver = Receiver(SECRET, store=store, clock=clock)
    receiver.on()(handler)
    worker = InboxWorker(receiver, inbox, lease=LEASE, clock=clock)
    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    worker.drain()
    clock.advance(10 * receiver.lease)  # every lease over: an unsettled claim would be taken again
    worker.drain()
    assert handler.calls == {entry.job_id: 1}
    record = inbox.get(entry.key)
    assert record is not None
    assert record.state is DeliveryState.DONE
    assert store.claim(entry.key, LEASE).state.value == "done"


@pytest.mark.usefixtures("no_backoff")
def test_a_delivery_whose_done_the_inbox_refused_is_settled_on_its_next_claim_without_running(
    tmp_path: Path, clock: FrozenClock, handler: CountingHandler
) -> None:
    # Both down for longer than the retries: the worker remembers that the handlers ran.
    store = _FlakyCompleteStore(100, clock=clock)
    inbox = _FlakyCompleteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    inbox.failures = 10
    receiver = Receiver(SECRET, store=store, clock=clock)
    receiver.on()(handler)
    worker = InboxWorker(receiver, inbox, lease=LEASE, clock=clock)
    entry = entry_for(received_at=NOW)
    inbox.enqueue(entry)
    worker.drain()
    record = inbox.get(entry.key)
    assert record is not None
    assert record.state is DeliveryState.RUNNING  # the inbox never heard
    inbox.failures = 0
    clock.advance(10 * receiver.lease)
    worker.drain()
    assert handler.calls == {entry.job_id: 1}
    record = inbox.get(entry.key)
    assert record is not None
    assert record.state is DeliveryState.DONE


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_handler_slower_than_the_lease_runs_once_while_another_worker_polls(tmp_path: Path) -> None:
    lease = 0.6
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    store = MemoryStore()
    runs: list[str] = []
    release = threading.Event()

    def slow(event: Event) -> None:
        runs.append(str(event.job_id))
        release.wait(30)

    receivers = [Receiver(SECRET, store=store, lease=lease) for _ in range(2)]
    for receiver in receivers:
        receiver.on()(slow)
    workers = [InboxWorker(r, inbox, lease=lease, poll_interval=0.02) for r in receivers]
    entry = entry_for(received_at=time.time())
    inbox.enqueue(entry)
    with workers[0].running_thread():
        _wait(lambda: len(runs) == 1, "the handler to start")
        started = time.time()
        with workers[1].running_thread():
            # Three leases pass with the handler still running, the other worker polling.
            _wait(lambda: len(runs) > 1 or time.time() > started + 3 * lease, "three leases")
            release.set()
            _wait(lambda: (r := inbox.get(entry.key)) is not None and r.state is DeliveryState.DONE, "done")
    assert runs == [entry.job_id]
    record = inbox.get(entry.key)
    assert record is not None
    assert record.attempts == 1


def test_every_lease_defaults_to_the_receivers_and_rq_kills_only_after_its_job_timeout(tmp_path: Path) -> None:
    # One rule: a lease is how long a dead worker's claim holds (the receiver's, unless given);
    # a handler's time limit is a separate thing (RQ's job_timeout), never the lease.
    import redis

    from kreuzberg_webhooks.inbox.queues import TaskQueueInbox
    from kreuzberg_webhooks.inbox.rq import DEFAULT_JOB_TIMEOUT, RQInbox

    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    receiver = Receiver(SECRET, store=MemoryStore(), inbox=inbox, lease=45)
    assert InboxWorker(receiver).lease == 45
    queue = TaskQueueInbox(inbox, lambda key, countdown: None)
    queue.bind(receiver)
    assert queue.worker.lease == 45
    rq_inbox = RQInbox(redis.Redis(), inbox, import_path="tests.nowhere:queue", lease=30)
    assert rq_inbox._job_timeout == DEFAULT_JOB_TIMEOUT == 3600
    assert RQInbox(redis.Redis(), inbox, import_path="tests.nowhere:queue", job_timeout=90)._job_timeout == 90


def test_an_async_handler_slower_than_the_lease_runs_once_on_an_async_inbox(tmp_path: Path) -> None:
    from kreuzberg_webhooks.inbox import AsyncSQLiteInbox

    lease = 0.6
    runs: list[str] = []

    async def scenario() -> DeliveryState | None:
        inbox = AsyncSQLiteInbox(tmp_path / "inbox.sqlite3")
        store = MemoryStore()
        release = asyncio.Event()

        async def slow(event: Event) -> None:
            runs.append(str(event.job_id))
            await release.wait()

        receivers = [Receiver(SECRET, store=store, lease=lease) for _ in range(2)]
        for receiver in receivers:
            receiver.on()(slow)
        workers = [InboxWorker(r, inbox, lease=lease, poll_interval=0.02) for r in receivers]
        entry = entry_for(received_at=time.time())
        await inbox.enqueue(entry)
        async with workers[0].running_task(), workers[1].running_task():
            deadline = time.monotonic() + 30
            while not runs:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            started = time.time()
            while len(runs) == 1 and time.time() < started + 3 * lease:  # three leases, both polling
                await asyncio.sleep(0.02)
            release.set()
            while (record := await inbox.get(entry.key)) is None or record.state is DeliveryState.RUNNING:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        return record.state

    assert asyncio.run(scenario()) is DeliveryState.DONE
    assert len(runs) == 1


def test_a_stopped_worker_still_drains_when_asked(tmp_path: Path, handler: CountingHandler) -> None:
    # Stopping gives back what a running loop claimed; it does not turn later drains into give-backs.
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    receiver = Receiver(SECRET, store=MemoryStore())
    receiver.on()(handler)
    worker = InboxWorker(receiver, inbox, poll_interval=0.02)
    worker.start()
    worker.stop()
    entry = entry_for(received_at=time.time())
    inbox.enqueue(entry)
    assert worker.drain() == 1
    assert handler.calls == {entry.job_id: 1}


def test_the_worker_marks_a_claimed_batch_done_in_one_write(
    inbox: SQLiteInbox, clock: FrozenClock, handler: CountingHandler
) -> None:
    entries = [entry_for(received_at=NOW) for _ in range(10)]
    for entry in entries:
        inbox.enqueue(entry)
    worker, failures, _ = make_worker(handler, inbox, clock, batch=10)
    commits: list[str] = []
    inbox._db.connection().set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    assert worker.run_once() == 10
    inbox._db.connection().set_trace_callback(None)
    assert len(commits) == 2  # the claim, and every "done" of the batch together
    assert handler.calls == {entry.job_id: 1 for entry in entries}
    assert inbox.counts()[DeliveryState.DONE] == 10
    assert failures == []


def test_the_task_marks_a_claimed_batch_done_in_one_write(tmp_path: Path, handler: CountingHandler) -> None:
    from kreuzberg_webhooks.inbox import AsyncSQLiteInbox

    settles: list[int] = []

    class Counting(AsyncSQLiteInbox):
        async def complete(self, key: str, token: str) -> bool:
            settles.append(1)
            return await super().complete(key, token)

        async def complete_many(self, claims: Sequence[tuple[str, str]]) -> list[bool]:
            settles.append(len(claims))
            return await super().complete_many(claims)

    inbox = Counting(tmp_path / "inbox.sqlite3")
    receiver = Receiver(SECRET)
    receiver.on()(handler)
    worker = InboxWorker(receiver, inbox, batch=10)
    entries = [entry_for(job_event_payload(), received_at=time.time()) for _ in range(10)]
    for entry in entries:
        inbox.sync.enqueue(entry)
    assert asyncio.run(worker.run_once_async()) == 10
    assert settles == [10]
    assert handler.calls == {entry.job_id: 1 for entry in entries}
    assert inbox.sync.counts()[DeliveryState.DONE] == 10


def _stack_has(thread: threading.Thread, name: str) -> bool:
    import sys

    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


def test_the_worker_gives_way_while_acknowledgements_wait_for_their_commit(
    inbox: SQLiteInbox, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kreuzberg_webhooks.inbox.worker as worker_module

    monkeypatch.setattr(worker_module, "GIVE_WAY", 60.0, raising=False)  # no bound within this test
    order: list[str] = []
    first_running, first_may_end = threading.Event(), threading.Event()

    def handler(event: Event) -> None:
        order.append("handler")
        if len(order) == 1:
            first_running.set()
            first_may_end.wait(30)

    for _ in range(2):
        inbox.enqueue(entry_for(received_at=NOW))
    receiver = Receiver(SECRET, store=MemoryStore(clock=clock), clock=clock)
    receiver.on()(handler)
    worker = InboxWorker(receiver, inbox, lease=LEASE, clock=clock, batch=2)
    running = threading.Thread(target=worker.run_once)
    running.start()
    assert first_running.wait(30)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # a long write of this process: the acknowledgement below waits for it
        with inbox._write():
            held.set()
            release.wait(30)

    def acknowledge() -> None:
        inbox._db.connection().set_trace_callback(lambda sql: order.append("ack") if sql == "COMMIT" else None)
        inbox.enqueue(entry_for(received_at=NOW))

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    ack = threading.Thread(target=acknowledge)
    ack.start()
    _wait(lambda: _stack_has(ack, "_commit"), "the acknowledgement never waited for its commit")
    first_may_end.set()  # the worker would run the batch's second delivery now
    _wait(lambda: len(order) > 1 or _stack_has(running, "_give_way"), "the worker neither ran nor gave way")
    release.set()
    for thread in (holder, ack, running):
        thread.join(30)
    assert order == ["handler", "ack", "handler"]
    assert inbox.counts()[DeliveryState.DONE] == 2


def test_the_task_hands_each_delivery_to_a_thread_once_on_a_blocking_store(tmp_path: Path) -> None:
    import concurrent.futures

    from kreuzberg_webhooks import SQLiteStore
    from kreuzberg_webhooks.inbox import AsyncSQLiteInbox

    class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
        submitted = 0

        def submit(
            self, fn: Callable[..., object], /, *args: object, **kwargs: object
        ) -> concurrent.futures.Future[object]:
            self.submitted += 1
            return super().submit(fn, *args, **kwargs)

    inbox = AsyncSQLiteInbox(tmp_path / "inbox.sqlite3")
    store = SQLiteStore(tmp_path / "store.sqlite3")  # blocks: called in a worker thread
    receiver = Receiver(SECRET, store=store)
    threads: list[int] = []
    receiver.on()(lambda event: threads.append(threading.get_ident()))
    worker = InboxWorker(receiver, inbox, batch=5)
    entries = [entry_for(job_event_payload(), received_at=time.time()) for _ in range(5)]
    for entry in entries:
        inbox.sync.enqueue(entry)
    executor = CountingExecutor(4)

    async def scenario() -> int:
        asyncio.get_running_loop().set_default_executor(executor)
        return await worker.run_once_async()

    assert asyncio.run(scenario()) == 5
    # The batch's claim, each delivery (its event's claim, its handler and its "done" in the replay
    # store together), and the batch's "done" in the inbox.
    assert executor.submitted == 1 + 5 + 1
    assert len(threads) == 5
    assert inbox.sync.counts()[DeliveryState.DONE] == 5
    assert all(store.claim(entry.key, 1).state.value == "done" for entry in entries)


# -- the heartbeat: one thread per worker renews every claim in flight -------------------------

HEARTBEAT = "kreuzberg-inbox-heartbeat"


class _RenewalsInbox(SQLiteInbox):
    """A SQLite inbox that records each renewal (key, thread, held; ``None``: it raised); the
    first ``refuse`` renewals raise ``StoreUnavailable``."""

    refuse = 0

    def __init__(self, *args: object, **options: object) -> None:
        super().__init__(*args, **options)  # type: ignore[arg-type]
        self.renewals: list[tuple[str, int, bool | None]] = []

    def renew(self, key: str, token: str, lease: float) -> bool:
        if self.refuse > 0:
            self.refuse -= 1
            self.renewals.append((key, threading.get_ident(), None))
            raise StoreUnavailable("inbox down at renewal")
        held = super().renew(key, token, lease)
        self.renewals.append((key, threading.get_ident(), held))
        return held

    def held(self, key: str) -> int:
        return sum(1 for renewed, _, held in self.renewals if renewed == key and held)


def _new_heartbeats(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == HEARTBEAT and t not in before]


@pytest.mark.parametrize("path", ["thread", "task"])
def test_one_heartbeat_thread_serves_a_whole_batch(tmp_path: Path, clock: FrozenClock, path: str) -> None:
    # A batch's finished deliveries keep their claims renewed until the batch is marked done
    # together: with a thread per delivery, ten were alive by the batch's last handler.
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    before = set(threading.enumerate())
    alive: list[int] = []
    receiver = Receiver(SECRET, store=MemoryStore(clock=clock), clock=clock)
    receiver.on()(lambda event: alive.append(len(_new_heartbeats(before))))
    worker = InboxWorker(receiver, inbox, lease=LEASE, clock=clock, batch=10)
    entries = [entry_for(received_at=NOW) for _ in range(10)]
    for entry in entries:
        inbox.enqueue(entry)
    claimed = worker.run_once() if path == "thread" else asyncio.run(worker.run_once_async())
    assert claimed == 10
    assert alive == [1] * 10
    assert inbox.counts()[DeliveryState.DONE] == 10


def test_an_async_inbox_batch_is_renewed_by_the_one_heartbeat_thread_not_a_task_per_claim(
    tmp_path: Path, clock: FrozenClock
) -> None:
    from kreuzberg_webhooks.inbox import AsyncSQLiteInbox

    inbox = AsyncSQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    before = set(threading.enumerate())
    alive: list[tuple[int, int]] = []
    receiver = Receiver(SECRET, store=MemoryStore(clock=clock), clock=clock)

    @receiver.on()
    async def record(event: Event) -> None:
        alive.append((len(_new_heartbeats(before)), len(asyncio.all_tasks())))

    worker = InboxWorker(receiver, inbox, lease=LEASE, clock=clock, batch=10)

    async def scenario() -> int:
        for _ in range(10):
            await inbox.enqueue(entry_for(received_at=NOW))
        return await worker.run_once_async()

    assert asyncio.run(scenario()) == 10
    # One heartbeat thread renews every claim of the batch; no renewal task is started per claim
    # (the tasks alive stay as many at the last handler as at the first).
    assert [threads for threads, _ in alive] == [1] * 10
    assert alive[-1][1] == alive[0][1]
    assert inbox.sync.counts()[DeliveryState.DONE] == 10


@pytest.mark.parametrize("path", ["thread", "task"])
def test_handlers_slower_than_the_lease_keep_their_claims_through_one_heartbeat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    lease = 0.6  # renewed every 0.2 s
    inbox = _RenewalsInbox(tmp_path / "inbox.sqlite3")
    entries = [entry_for(received_at=time.time()) for _ in range(3)]
    keys = {entry.job_id: entry.key for entry in entries}
    ended: dict[str, int] = {}

    def slow(event: Event) -> None:
        key = keys[str(event.job_id)]
        _wait(lambda: inbox.held(key) >= 2, "two renewals of the running claim")
        ended[key] = len(inbox.renewals)

    receiver = Receiver(SECRET, store=MemoryStore(), lease=lease)
    receiver.on()(slow)
    worker = InboxWorker(receiver, inbox, lease=lease, batch=3)
    for entry in entries:
        inbox.enqueue(entry)
    claimed = worker.run_once() if path == "thread" else asyncio.run(worker.run_once_async())
    assert claimed == 3
    assert len({thread for _, thread, _ in inbox.renewals}) == 1
    assert all(held for _, _, held in inbox.renewals)
    # The batch's finished deliveries were renewed after their handlers ended, until marked done.
    for entry in entries[:2]:
        assert entry.key in {key for key, _, _ in inbox.renewals[ended[entry.key] :]}
    records = [inbox.get(entry.key) for entry in entries]
    assert [(r.state, r.attempts) for r in records if r] == [(DeliveryState.DONE, 1)] * 3
    assert "lease lost" not in caplog.text


def test_a_renewal_error_does_not_stop_the_heartbeat(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lease = 0.6
    inbox = _RenewalsInbox(tmp_path / "inbox.sqlite3")
    inbox.refuse = 2
    entry = entry_for(received_at=time.time())
    receiver = Receiver(SECRET, store=MemoryStore(), lease=lease)
    receiver.on()(lambda event: _wait(lambda: inbox.held(entry.key) >= 2, "two renewals after the errors"))
    worker = InboxWorker(receiver, inbox, lease=lease)
    inbox.enqueue(entry)
    assert worker.run_once() == 1
    assert [held for _, _, held in inbox.renewals[:2]] == [None, None]
    assert caplog.text.count(f"inbox lease not renewed (key={entry.key}): inbox down at renewal") == 2
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.DONE, 1)


def test_a_lost_lease_is_logged_and_renewed_no_more(
    tmp_path: Path, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    lease = 0.6
    inbox = _RenewalsInbox(tmp_path / "inbox.sqlite3", clock=clock)
    lost, other = entry_for(received_at=NOW), entry_for(received_at=NOW)
    runs: list[str] = []

    def handler(event: Event) -> None:
        runs.append(str(event.job_id))
        if event.job_id == lost.job_id:
            _wait(lambda: inbox.held(lost.key) >= 1, "a renewal")
            clock.advance(10 * lease)  # the lease ran out (a frozen worker) …
            assert inbox.claim(lost.key, 60) is not None  # … and another worker took the delivery
            _wait(lambda: any(k == lost.key and held is False for k, _, held in inbox.renewals), "a refusal")
        else:  # meanwhile the lost claim, finished and waiting for the batch's "done", is not renewed
            _wait(lambda: inbox.held(other.key) >= 2, "two renewals of the other claim")

    receiver = make_receiver(handler, clock)  # type: ignore[arg-type]
    worker = InboxWorker(receiver, inbox, lease=lease, clock=clock, batch=2)
    inbox.enqueue(lost)
    inbox.enqueue(other)
    assert worker.run_once() == 2
    assert sorted(runs) == sorted([lost.job_id, other.job_id])
    renewed = [held for key, _, held in inbox.renewals if key == lost.key]
    assert (renewed.count(False), renewed[-1]) == (1, False)
    assert caplog.text.count(f"inbox lease lost while its handlers ran (key={lost.key})") == 1
    assert f"inbox lease lost before settling (key={lost.key})" in caplog.text
    record = inbox.get(lost.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.RUNNING, 2)  # the other worker's claim


def test_stopping_the_worker_ends_its_heartbeat(tmp_path: Path) -> None:
    lease = 0.6
    inbox = _RenewalsInbox(tmp_path / "inbox.sqlite3")
    before = set(threading.enumerate())
    entry = entry_for(received_at=time.time())
    receiver = Receiver(SECRET, store=MemoryStore(), lease=lease)
    receiver.on()(lambda event: _wait(lambda: inbox.held(entry.key) >= 1, "a renewal"))
    worker = InboxWorker(receiver, inbox, lease=lease, poll_interval=0.02)
    inbox.enqueue(entry)
    with worker.running_thread():
        _wait(lambda: (r := inbox.get(entry.key)) is not None and r.state is DeliveryState.DONE, "done")
    assert _new_heartbeats(before) == []
    assert inbox.held(entry.key) >= 1


@pytest.mark.parametrize("path", ["thread", "task"])
def test_a_stopped_worker_ends_its_idle_heartbeat_without_waiting_out_a_third_of_the_lease(
    tmp_path: Path, path: str
) -> None:
    # A lease of 60 s: the idle heartbeat would look again only 20 s after its last claim.
    inbox = _RenewalsInbox(tmp_path / "inbox.sqlite3")
    before = set(threading.enumerate())
    alive: list[int] = []
    entry = entry_for(received_at=time.time())
    receiver = Receiver(SECRET, store=MemoryStore())
    receiver.on()(lambda event: alive.append(len(_new_heartbeats(before))))
    worker = InboxWorker(receiver, inbox, lease=LEASE, poll_interval=0.02)
    inbox.enqueue(entry)

    def done() -> bool:
        record = inbox.get(entry.key)
        return record is not None and record.state is DeliveryState.DONE

    if path == "thread":
        with worker.running_thread():
            _wait(done, "done")
        assert _new_heartbeats(before) == []  # stop() joined it
    else:

        async def scenario() -> None:
            async with worker.running_task():
                while not done():
                    await asyncio.sleep(0.02)

        asyncio.run(asyncio.wait_for(scenario(), 30))
        _wait(lambda: _new_heartbeats(before) == [], "the heartbeat's end", timeout=10.0)
    assert alive == [1]  # it did run while the handler ran
    assert inbox.renewals == []  # and had nothing to renew: the handler ended within a third


def test_a_fork_waits_for_a_renewal_in_progress(tmp_path: Path) -> None:
    # A child forked in the middle of a renewal would inherit the inbox's write half done: the
    # fork waits for it (a worker driven by run_once as much as a started one).
    lease = 0.6
    entered, proceed, release, forked = (threading.Event() for _ in range(4))

    class SlowRenewals(_RenewalsInbox):
        def renew(self, key: str, token: str, lease: float) -> bool:
            if not proceed.is_set():
                entered.set()
                proceed.wait(30)
            return super().renew(key, token, lease)

    inbox = SlowRenewals(tmp_path / "inbox.sqlite3")
    receiver = Receiver(SECRET, store=MemoryStore(), lease=lease)
    receiver.on()(lambda event: release.wait(30))
    worker = InboxWorker(receiver, inbox, lease=lease)
    entry = entry_for(received_at=time.time())
    inbox.enqueue(entry)
    main = threading.current_thread()

    def let_the_renewal_go() -> None:
        _wait(lambda: forked.is_set() or _stack_has(main, "_before_fork"), "the fork")
        proceed.set()

    running = threading.Thread(target=worker.run_once)
    running.start()
    assert entered.wait(30)  # a renewal is under way (the handler runs)
    helper = threading.Thread(target=let_the_renewal_go)
    helper.start()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, str(len(inbox.renewals)).encode())
        finally:
            os._exit(0)
    forked.set()
    os.close(write)
    seen = os.read(read, 100)
    os.close(read)
    os.waitpid(pid, 0)
    helper.join(30)
    release.set()
    running.join(30)
    assert int(seen) >= 1  # the renewal was over before the fork
    record = inbox.get(entry.key)
    assert record is not None
    assert (record.state, record.attempts) == (DeliveryState.DONE, 1)
