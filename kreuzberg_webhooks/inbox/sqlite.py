"""An inbox in one SQLite file: the embedded default, shared by every process on one machine."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from .._backends.sqlite import SQLiteFile
from ..exceptions import ConfigurationError, StoreUnavailable
from ._rows import (
    COLUMNS,
    LISTED,
    check_lease,
    check_limit,
    check_purge,
    entry_values,
    record_from_listed_row,
    record_from_row,
    short_error,
)
from .base import DeliveryState, InboxClaim, InboxEntry, InboxRecord

__all__ = ["AsyncSQLiteInbox", "SQLiteInbox"]

logger = logging.getLogger("kreuzberg_webhooks")

TABLE = "kreuzberg_webhook_inbox"

_SCHEMA = (
    f"""
    CREATE TABLE IF NOT EXISTS {TABLE} (
        key TEXT PRIMARY KEY,
        scope TEXT NOT NULL,
        event_id TEXT,
        event_type TEXT NOT NULL,
        job_id TEXT NOT NULL,
        body BLOB NOT NULL,
        headers TEXT NOT NULL,
        received_at REAL NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,   -- for a running delivery: when its lease ends
        last_error TEXT,
        updated_at REAL NOT NULL,
        lease_token TEXT
    )
    """,
    f"CREATE INDEX IF NOT EXISTS {TABLE}_due ON {TABLE} (state, next_attempt_at)",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_event_id ON {TABLE} (event_id)",
)
_CLAIMABLE = "state IN ('queued', 'running') AND next_attempt_at <= ?"
_INSERT = f"INSERT OR IGNORE INTO {TABLE} ({COLUMNS}) VALUES "
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, NULL, ?)"
#: Rows per statement of a group commit (10 parameters each: under SQLite's oldest limit of 999).
_ROWS_PER_STATEMENT = 64
#: How many acknowledgement commits a worker's write waiting for the write lock lets go first.
YIELD_TO_ACKNOWLEDGEMENTS = 4
#: About how many bytes reach the WAL between two checkpoints (SQLite's own default: 1,000 pages).
CHECKPOINT_BYTES = 4 * 1024 * 1024
_PAGE = 4096  # a transaction writes whole pages: a row's table page and its two index pages


def _unavailable(error: BaseException) -> StoreUnavailable:
    """A fresh 503 for one waiter of a group whose commit failed (already named "SQLite inbox: …"
    when the file said so)."""
    return StoreUnavailable(str(error) if isinstance(error, StoreUnavailable) else f"SQLite inbox: {error}")


class _Slot:
    """One enqueue waiting for its group's commit."""

    __slots__ = ("done", "entry", "error", "new")

    def __init__(self, entry: InboxEntry) -> None:
        self.entry = entry
        self.done = False
        self.new = False
        self.error: BaseException | None = None


class _File:
    """What the threads of one process share about one inbox file.

    - The write lock, one transaction at a time (SQLite makes a waiting writer sleep and
      poll, up to 100 ms a time; a Python lock hands over at once). Acknowledgements go
      first: a worker's write waits while deliveries wait for their commit, for at most
      ``YIELD_TO_ACKNOWLEDGEMENTS`` of their commits, then takes its turn.
    - The group commit of the sync inbox: whoever holds ``committer`` writes every
      pending enqueue.
    - The checkpoints: the connections never checkpoint in a commit (SQLite's automatic
      checkpoint copies the WAL into the file and fsyncs it inside the COMMIT a delivery
      waits for); every ``CHECKPOINT_BYTES`` written, a thread of its own does it, beside
      the writers (a passive checkpoint takes no write lock).
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.turn = threading.Condition(threading.Lock())
        self.busy = False
        self.acknowledgements = 0  # enqueued and not yet committed (the group's, the loop's)
        self.acknowledged = 0  # acknowledgement commits so far
        self.group = threading.Lock()
        self.committer = threading.Lock()
        self.pending: list[_Slot] = []
        self.written = 0
        self.checkpointing = False

    def waiting(self, count: int) -> None:
        """*count* deliveries wait for a commit from now on (negative: no longer)."""
        with self.turn:
            self.acknowledgements += count
            if self.acknowledgements == 0:
                self.turn.notify_all()

    @contextmanager
    def lock(self, *, acknowledgement: bool) -> Iterator[None]:
        with self.turn:
            if acknowledgement:
                self.turn.wait_for(lambda: not self.busy)
                self.acknowledged += 1
            else:
                start = self.acknowledged
                # Bounded by the time-out too: deliveries counted as waiting whose commit never
                # comes (a thread that could not start) must not stop the worker for good.
                self.turn.wait_for(
                    lambda: (
                        not self.busy
                        and (self.acknowledgements == 0 or self.acknowledged - start >= YIELD_TO_ACKNOWLEDGEMENTS)
                    ),
                    timeout=self.timeout,
                )
                self.turn.wait_for(lambda: not self.busy)
            self.busy = True
        try:
            yield
        finally:
            with self.turn:
                self.busy = False
                self.turn.notify_all()

    def wrote(self, size: int) -> None:
        """*size* bytes went to the WAL: start a checkpoint when enough have (one at a time)."""
        with self.turn:
            self.written += size
            if self.written < CHECKPOINT_BYTES or self.checkpointing:
                return
            self.written, self.checkpointing = 0, True
        threading.Thread(target=self._checkpoint, name="kreuzberg-inbox-checkpoint", daemon=True).start()

    def _checkpoint(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # fsyncs the file (synchronous=FULL)
            finally:
                conn.close()
        except sqlite3.Error as error:  # the next one tries again; the WAL only grows meanwhile
            logger.warning("SQLite inbox checkpoint failed: %s", error)
        finally:
            with self.turn:
                self.checkpointing = False


# One per database file and process, shared by every SQLiteInbox on that file; a forked
# child starts with none (a lock copied while another thread held it would stay held).
_FILES: dict[str, _File] = {}
os.register_at_fork(after_in_child=_FILES.clear)


def _file(key: str, path: Path, timeout: float) -> _File:
    found = _FILES.get(key)
    if found is None:
        found = _FILES.setdefault(key, _File(path, timeout))  # atomic under the GIL
    return found


class SQLiteInbox:
    """Keeps deliveries in a SQLite database file until a worker has processed them.

    Safe across threads and across the worker processes of one machine: every
    write is one ``BEGIN IMMEDIATE`` transaction on a WAL-mode file (the
    processes queue on ``flock`` on a side file, ``<path>-lock``, first), and a
    delivery is acknowledged only after its transaction has committed (with
    ``synchronous=FULL`` by default, so the write survives a power cut, not
    only a crash). Not for several machines: use PostgreSQL or Redis there.

    :param path: the database file (created if missing). It may be the file the
        :class:`~kreuzberg_webhooks.stores.SQLiteStore` uses: the tables differ.
    :param timeout: seconds to wait for another process's write lock before
        the delivery is answered 503.
    :param synchronous: SQLite's ``synchronous`` setting for the writes an answer
        depends on (a new delivery, an operator's retry or purge): ``"FULL"``
        (fsync on every commit) or ``"NORMAL"`` (a power cut may lose the last
        commits, a crashed process loses nothing). The worker's bookkeeping
        always commits ``NORMAL``.
    :param clock: wall-clock unix time, shared by every process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = SQLiteFile(
            path,
            timeout=timeout,
            schema=_SCHEMA,
            what="SQLite inbox",
            autocheckpoint=False,
            in_memory="SQLiteInbox needs a file path: an in-memory inbox is not durable",
        )
        if synchronous not in ("FULL", "NORMAL"):
            raise ConfigurationError("synchronous must be 'FULL' or 'NORMAL'")
        self.path = self._db.path
        self.timeout = self._db.timeout
        self.synchronous = synchronous
        self._clock = clock
        self._key = str(self.path.resolve())
        with self._write():
            pass  # create the file and the table now: fail at start-up, not per delivery

    # -- connections -----------------------------------------------------------

    @property
    def _file(self) -> _File:
        # Looked up each time: a forked child finds a fresh one (see _FILES).
        return _FILES.get(self._key) or _file(self._key, self.path, self.timeout)

    @contextmanager
    def _write(self, *, durable: bool = False, size: int = 3 * _PAGE) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken with the write lock from its start (no upgrade deadlock).

        The threads of one process queue on a lock of their own first (see :class:`_File`:
        acknowledgements go first). *durable* (the writes a 2xx answer depends on) commits
        with the inbox's ``synchronous`` setting; the worker's bookkeeping commits without
        an fsync, since a lost "done" after a power cut only runs a delivery whose
        replay-store key says done. *size*: about how many bytes the transaction writes.
        """
        with (
            self._file.lock(acknowledgement=durable),
            self._db.transaction(self.synchronous if durable else "NORMAL") as conn,
        ):
            yield conn
        self._file.wrote(size)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._db.read(sql, params)

    # -- the writer --------------------------------------------------------------

    def enqueue(self, entry: InboxEntry) -> bool:
        """Write *entry* as queued; ``False`` if its key is already in the inbox (any state).

        Returns once the write is committed. Writes that arrive together from several
        threads are committed together (group commit): one transaction, one fsync, for
        every delivery waiting at that moment.
        """
        slot = _Slot(entry)
        group = self._file
        group.waiting(1)
        with group.group:
            group.pending.append(slot)
        while True:
            with group.committer:
                if slot.done:
                    break
                with group.group:
                    batch, group.pending = group.pending, []
                if batch:
                    self._commit(batch)
            if slot.done:
                break
        if slot.error is not None:
            # A fresh exception per caller: the threads of one group must not share a traceback.
            raise _unavailable(slot.error) from slot.error
        return slot.new

    def _commit(self, batch: list[_Slot]) -> None:
        """Write *batch* in one transaction (a few statements, however many deliveries: a
        thread holding the write lock waits for the GIL once per statement) and answer each
        slot; the file's count of waiting deliveries drops by ``len(batch)`` whatever happens."""
        try:
            now = self._clock()
            size = 3 * _PAGE + sum(len(slot.entry.body) for slot in batch)
            with self._write(durable=True, size=size) as conn:
                keys = [slot.entry.key for slot in batch]
                there = {
                    key
                    for start in range(0, len(keys), _ROWS_PER_STATEMENT)
                    for (key,) in conn.execute(
                        f"SELECT key FROM {TABLE} WHERE key IN "
                        f"({', '.join('?' * len(keys[start : start + _ROWS_PER_STATEMENT]))})",
                        keys[start : start + _ROWS_PER_STATEMENT],
                    )
                }
                for start in range(0, len(batch), _ROWS_PER_STATEMENT):
                    rows = batch[start : start + _ROWS_PER_STATEMENT]
                    conn.execute(
                        _INSERT + ", ".join([_ROW] * len(rows)),
                        [value for slot in rows for value in entry_values(slot.entry, now)],
                    )
        except BaseException as error:
            for slot in batch:  # every waiter hears of it, none waits for a commit that will not come
                slot.error, slot.done = error, True
            if not isinstance(error, Exception):
                raise
            return
        finally:
            self._file.waiting(-len(batch))
        for slot in batch:  # the first of two deliveries with one key in a batch is the new one
            slot.new = slot.entry.key not in there
            there.add(slot.entry.key)
            slot.done = True

    def acknowledging(self) -> bool:
        """Whether deliveries of this process wait for their commit to this file now (the
        embedded worker gives way to them: :class:`~kreuzberg_webhooks.inbox.worker.InboxWorker`)."""
        return self._file.acknowledgements > 0

    # -- the worker ----------------------------------------------------------------

    def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]:
        """Lease up to *limit* due deliveries, oldest due first."""
        lease, limit = check_lease(lease), check_limit(limit)
        now = self._clock()
        # A read first: an idle worker polling an empty inbox never takes the write lock.
        if not self._read(f"SELECT 1 FROM {TABLE} WHERE {_CLAIMABLE} LIMIT 1", (now,)):
            return []
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE {_CLAIMABLE} ORDER BY next_attempt_at LIMIT ?", (now, limit)
            ).fetchall()
            return [self._take(conn, row, now, lease) for row in rows]

    def claim(self, key: str, lease: float) -> InboxClaim | None:
        """Lease the delivery *key* whatever its next attempt time, unless it is done, dead or leased."""
        lease = check_lease(lease)
        now = self._clock()
        with self._write() as conn:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM {TABLE} WHERE key = ? "
                "AND (state = 'queued' OR (state = 'running' AND next_attempt_at <= ?))",
                (key, now),
            ).fetchone()
            return None if row is None else self._take(conn, row, now, lease)

    @staticmethod
    def _take(conn: sqlite3.Connection, row: Sequence[Any], now: float, lease: float) -> InboxClaim:
        token = secrets.token_hex(16)
        conn.execute(
            f"UPDATE {TABLE} SET state = 'running', attempts = attempts + 1, next_attempt_at = ?, "
            "updated_at = ?, lease_token = ? WHERE key = ?",
            (now + lease, now, token, row[0]),
        )
        record = record_from_row(row)
        claimed = InboxRecord(
            entry=record.entry,
            state=DeliveryState.RUNNING,
            attempts=record.attempts + 1,
            next_attempt_at=now + lease,
            last_error=record.last_error,
            updated_at=now,
            lease_expires_at=now + lease,
        )
        return InboxClaim(claimed, token)

    def _settle(self, key: str, token: str, assignments: str, params: Sequence[Any]) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE {TABLE} SET {assignments}, lease_token = NULL, updated_at = ? "
                "WHERE key = ? AND state = 'running' AND lease_token = ?",
                (*params, self._clock(), key, token),
            )
            return cursor.rowcount == 1

    def complete(self, key: str, token: str) -> bool:
        """Mark the claimed delivery done; ``False`` if *token* no longer holds it."""
        return self._settle(key, token, "state = 'done', last_error = NULL", ())

    def complete_many(self, claims: Sequence[tuple[str, str]]) -> list[bool]:
        """:meth:`complete` for each ``(key, token)`` in one transaction (the worker's batch):
        for each, whether its token still held it."""
        if not claims:
            return []
        now = self._clock()
        with self._write(size=len(claims) * _PAGE) as conn:
            return [
                conn.execute(
                    f"UPDATE {TABLE} SET state = 'done', last_error = NULL, lease_token = NULL, updated_at = ? "
                    "WHERE key = ? AND state = 'running' AND lease_token = ?",
                    (now, key, token),
                ).rowcount
                == 1
                for key, token in claims
            ]

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Extend the claim's lease to *lease* seconds from now (the worker's heartbeat while a
        handler runs); ``False`` if *token* no longer holds it."""
        lease = check_lease(lease)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE {TABLE} SET next_attempt_at = ? WHERE key = ? AND state = 'running' AND lease_token = ?",
                (self._clock() + lease, key, token),
            )
            return cursor.rowcount == 1

    def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt: queued again from *retry_at*, or dead when it is ``None``."""
        if retry_at is None:
            return self._settle(key, token, "state = 'dead', last_error = ?", (short_error(error),))
        return self._settle(
            key, token, "state = 'queued', next_attempt_at = ?, last_error = ?", (retry_at, short_error(error))
        )

    def release(self, key: str, token: str, retry_at: float) -> bool:
        """Give a claim back without counting its attempt (the work could not start)."""
        return self._settle(
            key, token, "state = 'queued', next_attempt_at = ?, attempts = MAX(attempts - 1, 0)", (retry_at,)
        )

    # -- operations ----------------------------------------------------------------

    def get(self, key_or_event_id: str) -> InboxRecord | None:
        """The delivery with this key, else the latest with this event id."""
        rows = self._read(
            f"SELECT {COLUMNS} FROM {TABLE} WHERE key = ? OR event_id = ? "
            "ORDER BY key = ? DESC, received_at DESC LIMIT 1",
            (key_or_event_id, key_or_event_id, key_or_event_id),
        )
        return record_from_row(rows[0]) if rows else None

    def list(self, state: DeliveryState | None = None, limit: int = 100) -> list[InboxRecord]:
        """Up to *limit* deliveries (in *state*), the latest received first, without their
        bodies (``entry.body`` is empty: :meth:`get` has it)."""
        limit = check_limit(limit)
        if state is None:
            rows = self._read(f"SELECT {LISTED} FROM {TABLE} ORDER BY received_at DESC, key LIMIT ?", (limit,))
        else:
            rows = self._read(
                f"SELECT {LISTED} FROM {TABLE} WHERE state = ? ORDER BY received_at DESC, key LIMIT ?",
                (DeliveryState(state).value, limit),
            )
        return [record_from_listed_row(row) for row in rows]

    def counts(self) -> dict[DeliveryState, int]:
        """How many deliveries are in each state."""
        counts = dict.fromkeys(DeliveryState, 0)
        for state, count in self._read(f"SELECT state, COUNT(*) FROM {TABLE} GROUP BY state"):
            counts[DeliveryState(state)] = int(count)
        return counts

    def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int:
        """Queue deliveries again now, with a fresh attempt count: those with these keys
        (or event ids), or every one in *state*. A running delivery is left alone."""
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not one string")
        now = self._clock()
        with self._write(durable=True) as conn:
            if state is not None:
                if DeliveryState(state) is DeliveryState.RUNNING:
                    return 0
                cursor = conn.execute(
                    f"UPDATE {TABLE} SET state = 'queued', attempts = 0, next_attempt_at = ?, updated_at = ?, "
                    "lease_token = NULL WHERE state = ?",
                    (now, now, DeliveryState(state).value),
                )
                return cursor.rowcount
            changed = 0
            for key in dict.fromkeys(keys):
                cursor = conn.execute(
                    f"UPDATE {TABLE} SET state = 'queued', attempts = 0, next_attempt_at = ?, updated_at = ?, "
                    "lease_token = NULL WHERE (key = ? OR event_id = ?) AND state != 'running'",
                    (now, now, key, key),
                )
                changed += cursor.rowcount
            return changed

    def purge(self, state: DeliveryState, older_than: float = 0.0) -> int:
        """Delete the deliveries in *state* unchanged for *older_than* seconds; how many went."""
        state, older_than = check_purge(state, older_than)
        with self._write(durable=True) as conn:
            cursor = conn.execute(
                f"DELETE FROM {TABLE} WHERE state = ? AND updated_at <= ?", (state.value, self._clock() - older_than)
            )
            return cursor.rowcount

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()


_ASYNC_INBOXES: weakref.WeakSet[AsyncSQLiteInbox] = weakref.WeakSet()


def _async_inboxes_forked() -> None:
    for inbox in list(_ASYNC_INBOXES):
        inbox._forked()


os.register_at_fork(after_in_child=_async_inboxes_forked)


def _answer(batch: list[tuple[_Slot, asyncio.Future[bool]]]) -> None:
    """On the loop: tell each request of a group how its commit went."""
    for slot, future in batch:
        if future.done():  # the request went away; its delivery was written all the same
            continue
        if slot.error is not None:
            future.set_exception(_unavailable(slot.error))
        else:
            future.set_result(slot.new)


class AsyncSQLiteInbox:
    """The :class:`SQLiteInbox` for an event loop (ASGI applications).

    Its operations run in worker threads. The enqueues of all the loop's requests
    are committed in groups by one thread of the inbox's own: while one group's
    transaction (and fsync) is under way, the deliveries that arrive wait together
    for the next, which starts as soon as the first has committed (the loop is not
    asked in between), so an acknowledgement costs a share of an fsync however many
    requests are in flight. Every delivery is still answered only after its commit.

    Parameters as :class:`SQLiteInbox`; the sync inbox is :attr:`sync`.
    """

    def __init__(self, path: str | os.PathLike[str], **options: Any) -> None:
        self.sync = SQLiteInbox(path, **options)
        self._forked()
        _ASYNC_INBOXES.add(self)

    def _forked(self) -> None:
        """Start afresh (and in a forked child: the committer thread did not come along, and
        its lock was copied in whatever state)."""
        self._queue = threading.Condition(threading.Lock())
        self._pending: list[tuple[_Slot, asyncio.Future[bool]]] = []
        self._committer: threading.Thread | None = None

    @property
    def path(self) -> Path:
        """The database file."""
        return self.sync.path

    async def enqueue(self, entry: InboxEntry) -> bool:
        """Write *entry* as queued (in the next group commit); ``False`` if its key is already there."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.sync._file.waiting(1)
        with self._queue:
            self._pending.append((_Slot(entry), future))
            if self._committer is None:  # none yet, or it ended after a quiet spell
                self._committer = threading.Thread(target=self._commits, name="kreuzberg-inbox-commit", daemon=True)
                self._committer.start()
            else:
                self._queue.notify()
        return await future

    def _commits(self) -> None:
        """The committer thread: one group commit after another while deliveries arrive; it
        ends after a second without any (the next enqueue starts another)."""
        while True:
            with self._queue:
                if not self._queue.wait_for(lambda: self._pending, timeout=1.0):
                    self._committer = None
                    return
                batch, self._pending = self._pending, []
            slots = [slot for slot, _ in batch]
            try:
                self.sync._commit(slots)
            except BaseException as error:  # _commit answers every slot; this is for the loop's sake
                for slot in slots:
                    if not slot.done:
                        slot.error, slot.done = error, True
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Slot, asyncio.Future[bool]]]] = {}
            for slot, future in batch:
                by_loop.setdefault(future.get_loop(), []).append((slot, future))
            for loop, answers in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(_answer, answers)

    async def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]:
        """See :meth:`SQLiteInbox.claim_due`."""
        return await asyncio.to_thread(self.sync.claim_due, lease, limit)

    async def claim(self, key: str, lease: float) -> InboxClaim | None:
        """See :meth:`SQLiteInbox.claim`."""
        return await asyncio.to_thread(self.sync.claim, key, lease)

    async def complete(self, key: str, token: str) -> bool:
        """See :meth:`SQLiteInbox.complete`."""
        return await asyncio.to_thread(self.sync.complete, key, token)

    def acknowledging(self) -> bool:
        """See :meth:`SQLiteInbox.acknowledging` (not a coroutine: it only reads a counter)."""
        return self.sync.acknowledging()

    async def complete_many(self, claims: Sequence[tuple[str, str]]) -> list[bool]:
        """See :meth:`SQLiteInbox.complete_many`."""
        return await asyncio.to_thread(self.sync.complete_many, claims)

    async def renew(self, key: str, token: str, lease: float) -> bool:
        """See :meth:`SQLiteInbox.renew`."""
        return await asyncio.to_thread(self.sync.renew, key, token, lease)

    async def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool:
        """See :meth:`SQLiteInbox.fail`."""
        return await asyncio.to_thread(self.sync.fail, key, token, error, retry_at)

    async def release(self, key: str, token: str, retry_at: float) -> bool:
        """See :meth:`SQLiteInbox.release`."""
        return await asyncio.to_thread(self.sync.release, key, token, retry_at)

    async def get(self, key_or_event_id: str) -> InboxRecord | None:
        """See :meth:`SQLiteInbox.get`."""
        return await asyncio.to_thread(self.sync.get, key_or_event_id)

    async def list(self, state: DeliveryState | None = None, limit: int = 100) -> list[InboxRecord]:
        """See :meth:`SQLiteInbox.list`."""
        return await asyncio.to_thread(self.sync.list, state, limit)

    async def counts(self) -> dict[DeliveryState, int]:
        """See :meth:`SQLiteInbox.counts`."""
        return await asyncio.to_thread(self.sync.counts)

    async def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int:
        """See :meth:`SQLiteInbox.retry`."""
        return await asyncio.to_thread(functools.partial(self.sync.retry, keys, state=state))

    async def purge(self, state: DeliveryState, older_than: float = 0.0) -> int:
        """See :meth:`SQLiteInbox.purge`."""
        return await asyncio.to_thread(self.sync.purge, state, older_than)

    async def aclose(self) -> None:
        """Close the calling thread's connection (the worker threads' close with them)."""
        self.sync.close()
