"""The SQLite inbox written by several processes at once: the writers of every process queue
on ``flock`` on a side file beside the database, with the inbox's time-out."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import StoreUnavailable
from kreuzberg_webhooks._backends.sqlite import SQLiteFile, lock_path, process_lock
from kreuzberg_webhooks.cloud.tracking.sqlite import SQLiteTracker
from kreuzberg_webhooks.inbox import DeliveryState, InboxEntry
from kreuzberg_webhooks.inbox.sqlite import SQLiteInbox
from kreuzberg_webhooks.stores import SQLiteStore
from tests.inbox.contract import LEASE, make_entry
from tests.stores.contract import FrozenClock

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock exists on POSIX systems only")


def test_the_lock_file_sits_beside_the_database_and_every_user_of_the_file_shares_it(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    inbox, store, tracker = SQLiteInbox(path), SQLiteStore(path), SQLiteTracker(path)
    side = tmp_path / "shared.sqlite3-lock"
    assert inbox._db.lock_path == store._db.lock_path == tracker._db.lock_path == side
    assert side.is_file()  # made by the first write
    assert lock_path(path) == side
    assert process_lock(path) is process_lock(tmp_path / "." / "shared.sqlite3")  # one per file and process


@pytest.mark.parametrize("mode", [0o660, 0o600], ids=oct)
def test_the_lock_file_gets_the_permissions_of_its_database_as_sqlite_gives_its_wal(tmp_path: Path, mode: int) -> None:
    # A database shared by the processes of two users of one group (0660) must be lockable by
    # both; SQLite's own -wal and -shm files copy the database's mode whatever the umask.
    path = tmp_path / "shared.sqlite3"
    path.touch()  # an empty file is an empty database
    path.chmod(mode)
    old_umask = os.umask(0o077)
    try:
        store = SQLiteStore(path)
        store.claim("k", 10.0)
        assert (tmp_path / "shared.sqlite3-wal").stat().st_mode & 0o777 == mode  # what SQLite does
        store.close()
    finally:
        os.umask(old_umask)
    assert (tmp_path / "shared.sqlite3-lock").stat().st_mode & 0o777 == mode


def test_a_relative_path_names_the_same_lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert lock_path("inbox.sqlite3") == tmp_path.resolve() / "inbox.sqlite3-lock"


def test_without_the_process_lock_no_side_file_is_made_and_writes_go_on(tmp_path: Path) -> None:
    # The path taken where fcntl does not exist (Windows): SQLite's busy handler alone.
    db = SQLiteFile(tmp_path / "plain.sqlite3", timeout=1, schema=["CREATE TABLE t (v)"], what="x", process_lock=False)
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    db.write("INSERT INTO t VALUES (2)")
    assert db.lock_path is None
    assert db.read("SELECT count(*) FROM t") == [(2,)]
    assert not (tmp_path / "plain.sqlite3-lock").exists()


@pytest.mark.slow
def test_a_writer_waits_at_most_its_time_out_in_all_for_the_side_lock_and_sqlites_lock(tmp_path: Path) -> None:
    # The side lock comes late (another writer of ours held it), and then SQLite's lock is held
    # by a writer that does not take the side lock (the sqlite3 shell, an older version): the
    # time left, not a second full time-out, is what SQLite's busy handler may wait.
    path = tmp_path / "busy.sqlite3"
    timeout = 2.0
    store, other = SQLiteStore(path, timeout=timeout), SQLiteFile(path, timeout=30, schema=[], what="other")
    foreign = sqlite3.connect(path, isolation_level=None)
    foreign.execute("BEGIN IMMEDIATE")  # SQLite's write lock, without the side lock
    holding, release = threading.Event(), threading.Event()

    def hold_side_lock() -> None:
        with other._locked():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_side_lock)
    holder.start()
    try:
        assert holding.wait(10)
        threading.Timer(0.6 * timeout, release.set).start()
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.claim("k", 10.0)
        waited = time.monotonic() - began
    finally:
        release.set()
        holder.join()
        foreign.execute("ROLLBACK")
        foreign.close()
    assert 0.6 * timeout <= waited < 1.35 * timeout  # it was 1.6x: 0.6 for the side lock, then a full time-out


# -- a process that holds the lock --------------------------------------------------

_HOLDER = """
import os, sys, time
from kreuzberg_webhooks._backends.sqlite import process_lock
lock = process_lock(sys.argv[1])
assert lock.acquire(30)
if sys.argv[2] == "fork":  # a child that outlives its parent must not keep the parent's lock
    child = os.fork()
    if child == 0:
        time.sleep(600)
        os._exit(0)
    print(child, flush=True)
print("held", flush=True)
time.sleep(600)
"""


def _hold(path: Path, how: str = "plain") -> tuple[subprocess.Popen[str], int | None]:
    """A process holding the write lock of *path* (and, with "fork", the pid of a child it forked
    while holding it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), how], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert holder.stdout is not None
    child = int(holder.stdout.readline()) if how == "fork" else None
    assert holder.stdout.readline().strip() == "held"
    return holder, child


def _kill(holder: subprocess.Popen[str]) -> None:
    holder.kill()
    holder.wait(30)


def _poll(action: Any, deadline: float = 30.0) -> Any:
    """*action*'s result once it stops raising StoreUnavailable (each try waits its time-out)."""
    end = time.monotonic() + deadline
    while True:
        try:
            return action()
        except StoreUnavailable:
            if time.monotonic() > end:
                raise


@pytest.mark.slow
def test_writers_time_out_while_another_process_holds_the_lock_and_go_on_once_it_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite3"
    inbox, store = SQLiteInbox(path, timeout=0.3), SQLiteStore(path, timeout=0.3)
    holder, _ = _hold(path)
    try:
        with pytest.raises(StoreUnavailable, match=r"^SQLite inbox: another process held the write lock for 0\.3 s$"):
            inbox.enqueue(make_entry())
        with pytest.raises(StoreUnavailable, match="write lock"):
            store.claim("event:a", 60)
        assert inbox.counts()[DeliveryState.QUEUED] == 0  # reads need no lock
    finally:
        _kill(holder)  # SIGKILL: the kernel lets its lock go
    entry = make_entry()
    assert _poll(lambda: inbox.enqueue(entry)) is True
    assert store.claim("event:a", 60).token


@pytest.mark.slow
def test_a_child_forked_while_holding_the_lock_does_not_keep_it_after_its_parent_dies(tmp_path: Path) -> None:
    path = tmp_path / "inbox.sqlite3"
    inbox = SQLiteInbox(path, timeout=0.3)
    holder, child = _hold(path, "fork")
    assert child is not None
    try:
        with pytest.raises(StoreUnavailable):
            inbox.enqueue(make_entry())
        _kill(holder)
        os.kill(child, 0)  # the child lives on, with its copy of the parent's descriptors closed
        assert _poll(lambda: inbox.enqueue(make_entry())) is True
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # the child, in the holder's session


# -- processes writing together ------------------------------------------------------


def _enqueue_and_work(path: str, entries: list[InboxEntry], start: Any, results: Any) -> None:  # in a spawned process
    inbox = SQLiteInbox(path)  # the default time-out: normal contention must never reach it
    start.wait(60)
    new, taken, errors = [], [], []
    for index, entry in enumerate(entries):
        try:
            if inbox.enqueue(entry):
                new.append(entry.key)
            if index % 5 == 4:
                for claim in inbox.claim_due(LEASE, limit=3):
                    taken.append(claim.key)
                    assert inbox.complete(claim.key, claim.token)
        except StoreUnavailable as error:
            errors.append(str(error))
    try:
        while claims := inbox.claim_due(LEASE, limit=3):
            for claim in claims:
                taken.append(claim.key)
                assert inbox.complete(claim.key, claim.token)
    except StoreUnavailable as error:
        errors.append(str(error))
    results.put((new, taken, errors))


@pytest.mark.slow
def test_processes_enqueueing_and_claiming_one_file_together_handle_each_delivery_once(tmp_path: Path) -> None:
    path = str(tmp_path / "inbox.sqlite3")
    SQLiteInbox(path)  # the table, before the processes race to make it
    entries = [make_entry(received_at=0) for _ in range(240)]  # due at once for every process
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = context.Event()
    count = 4
    # Every process enqueues every delivery (a vendor retrying to each worker), each in its own order.
    processes = [
        context.Process(
            target=_enqueue_and_work,
            args=(path, entries[index * 60 :] + entries[: index * 60], start, results),
        )
        for index in range(count)
    ]
    for process in processes:
        process.start()
    start.set()
    found = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(60)
    new = Counter(key for mine, _, _ in found for key in mine)
    taken = Counter(key for _, mine, _ in found for key in mine)
    assert [error for _, _, errors in found for error in errors] == []
    assert new == Counter(entry.key for entry in entries)  # each delivery new exactly once
    assert taken == Counter(entry.key for entry in entries)  # and claimed exactly once
    counts = SQLiteInbox(path, clock=FrozenClock(0)).counts()
    assert counts[DeliveryState.DONE] == len(entries)
    assert sum(counts.values()) == len(entries)
