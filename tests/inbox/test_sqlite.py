"""The SQLite inbox: the shared contract, plus what only a file on one machine must show."""

from __future__ import annotations

import dataclasses
import multiprocessing
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kreuzberg_webhooks import ConfigurationError, StoreUnavailable
from kreuzberg_webhooks.inbox import DeliveryState, Inbox, open_inbox
from kreuzberg_webhooks.inbox.sqlite import AsyncSQLiteInbox, SQLiteInbox
from kreuzberg_webhooks.stores import SQLiteStore
from tests.inbox.contract import LEASE, InboxContract, make_entry
from tests.stores.contract import FrozenClock


class TestSQLiteInbox(InboxContract):
    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def make_inbox(self, clock: FrozenClock) -> Inbox:
        return SQLiteInbox(self.directory / "inbox.sqlite3", clock=clock)


@pytest.mark.parametrize("path", ["", ":memory:"])
def test_an_in_memory_database_is_refused(path: str) -> None:
    with pytest.raises(ConfigurationError, match="file path"):
        SQLiteInbox(path)


@pytest.mark.parametrize(
    "options",
    [{"timeout": 0}, {"timeout": float("inf")}, {"synchronous": "OFF"}],
    ids=["zero-timeout", "inf-timeout", "synchronous-off"],
)
def test_settings_that_cannot_work_are_refused(tmp_path: Path, options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteInbox(tmp_path / "inbox.sqlite3", **options)  # type: ignore[arg-type]


def test_a_database_that_cannot_be_opened_raises_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        SQLiteInbox(tmp_path / "missing-directory" / "inbox.sqlite3")


def test_the_inbox_and_the_replay_store_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    store, inbox = SQLiteStore(path), SQLiteInbox(path)
    assert store.claim("k", 60).token
    assert inbox.enqueue(make_entry()) is True
    assert inbox.counts()[DeliveryState.QUEUED] == 1


def test_a_write_survives_reopening_the_file(tmp_path: Path) -> None:
    path, entry = tmp_path / "inbox.sqlite3", make_entry()
    first = SQLiteInbox(path)
    first.enqueue(entry)
    first.close()
    record = SQLiteInbox(path).get(entry.key)
    assert record is not None
    assert record.entry == entry


def _drain(path: str, keys_out: multiprocessing.Queue[list[str]], start: multiprocessing.synchronize.Event) -> None:
    inbox = SQLiteInbox(path, timeout=30)
    start.wait(30)
    taken: list[str] = []
    while claims := inbox.claim_due(LEASE, limit=2):
        for claim in claims:
            taken.append(claim.key)
            inbox.complete(claim.key, claim.token)
    keys_out.put(taken)


@pytest.mark.slow
def test_processes_racing_to_claim_take_each_delivery_once(tmp_path: Path) -> None:
    path = str(tmp_path / "inbox.sqlite3")
    inbox = SQLiteInbox(path, clock=FrozenClock(0))  # enqueued "long ago": due for every process
    entries = [make_entry(received_at=0) for _ in range(200)]
    for entry in entries:
        inbox.enqueue(entry)
    context = multiprocessing.get_context("spawn")
    keys_out: multiprocessing.Queue[list[str]] = context.Queue()
    start = context.Event()
    processes = [context.Process(target=_drain, args=(path, keys_out, start)) for _ in range(4)]
    for process in processes:
        process.start()
    start.set()
    taken = [key for _ in processes for key in keys_out.get(timeout=120)]
    for process in processes:
        process.join(60)
    assert sorted(taken) == sorted(e.key for e in entries)
    assert inbox.counts()[DeliveryState.DONE] == len(entries)


def test_open_inbox_reads_a_sqlite_url(tmp_path: Path) -> None:
    inbox = open_inbox(f"sqlite:///{tmp_path}/from-url.sqlite3")
    assert isinstance(inbox, SQLiteInbox)
    assert inbox.path == tmp_path / "from-url.sqlite3"


def test_open_inbox_refuses_an_unknown_scheme() -> None:
    with pytest.raises(ConfigurationError, match="unknown inbox URL scheme"):
        open_inbox("memory://")


def test_threads_enqueueing_together_are_committed_together_and_each_is_answered(tmp_path: Path) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    entries = [make_entry() for _ in range(200)]
    barrier = threading.Barrier(16)

    def write(index: int) -> list[bool]:
        barrier.wait(timeout=30)
        mine = entries[index::16]
        return [inbox.enqueue(entry) for entry in mine] + [inbox.enqueue(entry) for entry in mine]

    with ThreadPoolExecutor(16) as pool:
        answers = [answer for answers in pool.map(write, range(16)) for answer in answers]
    assert answers.count(True) == len(entries)
    assert answers.count(False) == len(entries)
    assert inbox.counts()[DeliveryState.QUEUED] == len(entries)


def test_a_group_whose_commit_fails_answers_every_waiter(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite3"
    inbox = SQLiteInbox(path, timeout=0.2)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the time-out
    try:
        with pytest.raises(StoreUnavailable):
            inbox.enqueue(make_entry())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert inbox.enqueue(make_entry()) is True


def test_a_new_delivery_commits_with_fsync_and_the_workers_bookkeeping_without(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")  # synchronous="FULL"
    seen = []
    inbox.enqueue(make_entry())
    seen.append(inbox._db.connection().execute("PRAGMA synchronous").fetchone()[0])
    (claim,) = inbox.claim_due(LEASE)
    seen.append(inbox._db.connection().execute("PRAGMA synchronous").fetchone()[0])
    inbox.complete(claim.key, claim.token)
    seen.append(inbox._db.connection().execute("PRAGMA synchronous").fetchone()[0])
    assert seen == [2, 1, 1]  # FULL, NORMAL, NORMAL


class TestAsyncSQLiteInbox(InboxContract):
    """The whole contract through the async flavour, on an event loop in a thread."""

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def make_inbox(self, clock: FrozenClock) -> Inbox:
        from tests.inbox.test_postgres import OnLoopThread

        return OnLoopThread(AsyncSQLiteInbox(self.directory / "inbox.sqlite3", clock=clock))  # type: ignore[arg-type,return-value]


def test_concurrent_requests_on_one_loop_are_committed_in_groups_and_each_answered(tmp_path: Path) -> None:
    import asyncio

    inbox = AsyncSQLiteInbox(tmp_path / "inbox.sqlite3")
    commits: list[int] = []
    real_commit = inbox.sync._commit

    def counting_commit(batch: list) -> None:  # type: ignore[type-arg]
        commits.append(len(batch))
        real_commit(batch)

    inbox.sync._commit = counting_commit  # type: ignore[method-assign]
    entries = [make_entry() for _ in range(100)]

    async def scenario() -> list[bool]:
        return list(await asyncio.gather(*(inbox.enqueue(e) for e in [*entries, *entries])))

    answers = asyncio.run(scenario())
    assert answers[: len(entries)] == [True] * len(entries)
    assert answers[len(entries) :] == [False] * len(entries)
    assert sum(commits) == 2 * len(entries)
    assert len(commits) < len(entries)  # grouped, not one transaction per delivery
    assert inbox.sync.counts()[DeliveryState.QUEUED] == len(entries)


def test_open_inbox_gives_the_async_flavour_for_asynchronous(tmp_path: Path) -> None:
    assert isinstance(open_inbox(f"sqlite:///{tmp_path}/a.sqlite3", asynchronous=True), AsyncSQLiteInbox)


def _stack_has(thread: threading.Thread, name: str) -> bool:
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_a_workers_write_waiting_for_the_lock_lets_an_acknowledgement_go_first(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    inbox.enqueue(make_entry(received_at=0))
    (claim,) = inbox.claim_due(LEASE)
    order: list[str] = []
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # a write transaction of this process in progress
        with inbox._write():
            held.set()
            release.wait(30)

    def settle() -> None:
        inbox._db.connection().set_trace_callback(lambda sql: order.append("worker") if sql == "COMMIT" else None)
        inbox.complete(claim.key, claim.token)

    def acknowledge() -> None:
        inbox._db.connection().set_trace_callback(lambda sql: order.append("ack") if sql == "COMMIT" else None)
        inbox.enqueue(make_entry())

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(30)
    worker = threading.Thread(target=settle)
    worker.start()
    _until(lambda: _stack_has(worker, "_write"), "the worker's write never waited for the lock")
    ack = threading.Thread(target=acknowledge)
    ack.start()
    _until(lambda: _stack_has(ack, "_commit"), "the acknowledgement never waited for the lock")
    release.set()
    for thread in (holder, worker, ack):
        thread.join(30)
    assert order == ["ack", "worker"]
    assert inbox.counts()[DeliveryState.DONE] == 1


def test_a_workers_write_goes_after_a_few_acknowledgements_at_most(tmp_path: Path) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    inbox.enqueue(make_entry(received_at=0))
    (claim,) = inbox.claim_due(LEASE)
    order: list[str] = []
    stop = threading.Event()

    def acknowledge() -> None:  # acknowledgements without a pause: the worker must still get its turn
        inbox._db.connection().set_trace_callback(lambda sql: order.append("ack") if sql == "COMMIT" else None)
        while not stop.is_set():
            inbox.enqueue(make_entry())

    acks = [threading.Thread(target=acknowledge) for _ in range(4)]
    for thread in acks:
        thread.start()
    _until(lambda: len(order) >= 20, "no acknowledgements were committed")
    inbox._db.connection().set_trace_callback(lambda sql: order.append("worker") if sql == "COMMIT" else None)
    assert inbox.complete(claim.key, claim.token) is True
    stop.set()
    for thread in acks:
        thread.join(30)
    assert inbox.get(claim.key).state is DeliveryState.DONE  # type: ignore[union-attr]


def test_acknowledgements_commit_without_a_checkpoint_and_the_wal_is_checkpointed_aside(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite3"
    inbox = SQLiteInbox(path)
    inbox.enqueue(make_entry())
    # The commit an acknowledgement waits for never copies the WAL into the file (SQLite's
    # automatic checkpoint, an fsync of the database file, runs inside COMMIT) ...
    assert inbox._db.connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    body = b"x" * (256 * 1024)
    for _ in range(64):  # 16 MiB through the WAL
        entry = make_entry()
        inbox.enqueue(dataclasses.replace(entry, body=body))
    # ... but the WAL still reaches the database file, checkpointed beside the writers.
    _until(lambda: path.stat().st_size > 8 * 1024 * 1024, "the WAL was never checkpointed into the file")
    assert inbox.counts()[DeliveryState.QUEUED] == 65


def _enqueue_in_child(inbox: AsyncSQLiteInbox) -> None:
    import asyncio

    sys.exit(0 if asyncio.run(inbox.enqueue(make_entry())) is True else 3)


def _use_then_fork(path: str, answers: multiprocessing.Queue[object]) -> None:
    """In a fresh interpreter: enqueue, fork a child that enqueues too, count what was committed."""
    import asyncio

    inbox = AsyncSQLiteInbox(path)
    answers.put(asyncio.run(inbox.enqueue(make_entry())))  # the parent's committer ran
    child = multiprocessing.get_context("fork").Process(target=_enqueue_in_child, args=(inbox,))
    child.start()
    child.join(30)
    answers.put(child.exitcode)  # 0: its enqueue committed a new delivery; None: it hung
    answers.put(inbox.sync.counts()[DeliveryState.QUEUED])


def test_an_async_inbox_used_before_a_fork_still_commits_in_the_child(tmp_path: Path) -> None:
    # The parent is a fresh interpreter of its own (spawned): a fork copies every thread's
    # locks, and the threads the other tests of this process leave behind (another inbox's
    # committer, a store's heartbeat) may be inside SQLite at that moment. What is under test
    # is the inbox's own state across fork(), not theirs.
    context = multiprocessing.get_context("spawn")
    answers: multiprocessing.Queue[object] = context.Queue()
    parent = context.Process(target=_use_then_fork, args=(str(tmp_path / "inbox.sqlite3"), answers))
    parent.start()
    try:
        assert answers.get(timeout=60) is True  # the parent's enqueue
        assert answers.get(timeout=60) == 0  # the child's, after the fork
        assert answers.get(timeout=60) == 2
    finally:
        parent.join(30)
        if parent.is_alive():
            parent.kill()
