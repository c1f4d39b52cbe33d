"""SQLiteStore: the store contract, plus several processes sharing one file."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import ClaimState, ConfigurationError, ReplayStore, SQLiteStore, StoreUnavailable

from .contract import FrozenClock, StoreContract

PROCESSES = 4
KEYS = 60


class TestSQLiteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.path = tmp_path / "replay.sqlite3"

    def make_store(self, clock: FrozenClock) -> ReplayStore:
        return SQLiteStore(self.path, clock=clock)


def _claim_every_key(path: str, keys: list[str], barrier: Any, results: Any) -> None:
    # Runs in a freshly spawned interpreter: a worker process with its own store.
    store = SQLiteStore(path, timeout=30)
    barrier.wait(timeout=60)
    won = [key for key in keys if store.claim(key, 600).state is ClaimState.NEW]
    results.put((os.getpid(), won))


def test_processes_racing_for_the_same_keys_get_one_new_per_key(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite3")
    SQLiteStore(path).close()
    keys = [f"event:{n}" for n in range(KEYS)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    # Each process walks the keys from a different starting point, so claims really interleave.
    workers = [
        context.Process(target=_claim_every_key, args=(path, keys[n:] + keys[:n], barrier, results))
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert len({pid for pid, _ in answers}) == PROCESSES
    wins = Counter(key for _, won in answers for key in won)
    assert wins == Counter(keys)


def _claim_after_fork(store: SQLiteStore, key: str, results: Any) -> None:
    inherited = store._db._local.conn
    claim = store.claim(key, 600)
    results.put((claim.state.value, store._db._local.conn is not inherited, store._db._local.pid == os.getpid()))


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fork.sqlite3")
    assert store.claim("event:parent", 600).state is ClaimState.NEW  # the parent's connection is open
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_claim_after_fork, args=(store, "event:child", results))
    child.start()
    state, fresh_connection, owned_by_child = results.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert (state, fresh_connection, owned_by_child) == ("new", True, True)
    # The parent's connection still works and sees the child's claim.
    assert store.claim("event:child", 600).state is ClaimState.IN_FLIGHT
    assert store.claim("event:parent", 600).state is ClaimState.IN_FLIGHT


def test_two_stores_on_one_file_share_their_claims(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    first, second = SQLiteStore(path), SQLiteStore(path)
    token = first.claim("event:a", 600).token
    assert token is not None
    assert second.claim("event:a", 600).state is ClaimState.IN_FLIGHT
    first.complete("event:a", token, 600)
    assert second.claim("event:a", 600).state is ClaimState.DONE


def test_expired_rows_are_purged(tmp_path: Path) -> None:
    clock = FrozenClock()
    path = tmp_path / "purge.sqlite3"
    store = SQLiteStore(path, clock=clock, purge_interval=10)
    for n in range(5):
        store.claim(f"event:{n}", 30)
    clock.advance(31)
    store.claim("event:fresh", 30)
    with sqlite3.connect(path) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM kreuzberg_webhook_deliveries").fetchone()
    assert rows == 1


def test_a_locked_database_is_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    store = SQLiteStore(path, timeout=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreUnavailable):
            store.claim("event:a", 600)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.claim("event:a", 600).state is ClaimState.NEW


def test_an_unwritable_path_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path / "missing-directory" / "replay.sqlite3")


@pytest.mark.parametrize(
    ("path", "options"),
    [
        pytest.param(":memory:", {}, id="memory-database"),
        pytest.param("", {}, id="empty-path"),
        pytest.param("x.sqlite3", {"timeout": 0}, id="zero-timeout"),
    ],
)
def test_invalid_configuration_is_refused(tmp_path: Path, path: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SQLiteStore(tmp_path / path if path not in ("", ":memory:") else path, **options)
