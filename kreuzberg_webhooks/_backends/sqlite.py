"""One SQLite file shared by the threads and processes of one machine: a connection per
thread and per process, WAL mode, and write transactions that take the write lock at
their start (``BEGIN IMMEDIATE``); a database error is :class:`StoreUnavailable` (a 503).

The writers of every process queue on a lock of their own before SQLite's write lock:
``flock`` on a side file beside the database (``<database>-lock``, :class:`ProcessLock`).
SQLite makes a writer that finds the database locked sleep between tries (1, 2, 5, 10 …
up to 100 ms a time), so with writers in several processes a delivery could wait a tenth
of a second after the lock was free; a writer waiting for the side file's lock tries
every 50 µs to 1 ms, and the kernel lets the lock go for a process that dies holding it.
Where ``fcntl`` does not exist (Windows) the writers wait on SQLite's busy handler alone.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError, StoreUnavailable
from ..protocol.durations import duration

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy handler alone
    _flock = None
else:
    _flock = fcntl.flock

__all__ = ["ProcessLock", "SQLiteFile", "lock_path", "process_lock"]


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The side file whose ``flock`` the writers of the database *path* queue on."""
    resolved = Path(path).resolve()
    return resolved.with_name(resolved.name + "-lock")


#: How long a waiting writer first sleeps between two tries at the lock; each miss doubles it,
#: up to ``_POLL_MAX`` (SQLite's own busy handler sleeps 1, 2, 5, 10 … up to 100 ms).
_POLL_MIN = 0.00005
#: A wait for the side lock this long shortens SQLite's busy time-out for the statement that follows.
_WAITED_LONG = 0.01
_POLL_MAX = 0.001
#: A writer that has waited this long asks the others to let it in first ("starving") and
#: tries every ``_STARVING_POLL`` from then on; the request lapses ``_ASK_FOR`` after it was
#: last renewed (a process that died asking stops no one for longer).
_STARVING_AFTER = 0.003
_STARVING_POLL = 0.00025
_ASK_FOR = 0.01
_ASK = struct.Struct("d")  # the side file's first 8 bytes: until when (time.monotonic()) a writer asks


class ProcessLock:
    """The write lock of one database file across the processes of one machine: a thread
    lock for this process's threads, then ``flock`` on the side file (:func:`lock_path`).

    One per database file and process (:func:`process_lock`): the stores, trackers and
    inboxes of one process on one file share it. A blocking ``flock`` has no time-out, so a
    waiter tries again and again without blocking, sleeping 50 µs at first and at most
    1 ms between two tries, until its deadline. A process that lets the lock go and takes
    it again at once would win nearly every time against waiters that only try now and
    then, so a waiter that has waited 3 ms asks for its turn: it writes a deadline into
    the side file (mapped into memory by every process), and while that deadline has not
    passed the others do not try the lock; the asking waiter tries every 0.25 ms and gets
    it when its holder lets go. (A blocking ``flock`` in a helper thread, given up at the
    deadline, was measured too: slower, for the thread each wait starts.)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._fd = -1  # this process's descriptor of the side file
        self._asks: mmap.mmap | None = None

    def _open(self) -> None:
        # The side file gets the database's permissions, as SQLite gives its -wal and -shm
        # files whatever the umask: whoever may write the database may take its lock.
        try:
            mode = os.stat(self.path.with_name(self.path.name.removesuffix("-lock"))).st_mode & 0o777
        except OSError:
            mode = 0o644
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
        try:
            made = os.fstat(fd)
            if made.st_size < _ASK.size:  # a new file
                if made.st_uid == os.geteuid() and made.st_mode & 0o777 != mode:
                    os.fchmod(fd, mode)  # the umask took bits the database has
                os.ftruncate(fd, _ASK.size)  # zeros: nobody asks
            self._asks = mmap.mmap(fd, _ASK.size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def acquire(self, timeout: float) -> bool:
        """Take the lock within *timeout* seconds; ``False`` if it did not come."""
        assert _flock is not None
        began = time.monotonic()
        deadline = began + timeout
        if not self._mutex.acquire(timeout=timeout):
            return False
        try:
            if self._fd < 0:
                self._open()
            asks = self._asks
            assert asks is not None
            delay, starving = _POLL_MIN, False
            while True:
                if starving or _ASK.unpack_from(asks)[0] < time.monotonic():
                    try:
                        _flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        pass
                    else:
                        if starving:
                            _ASK.pack_into(asks, 0, 0.0)
                        return True
                now = time.monotonic()
                if now >= deadline:
                    if starving:
                        _ASK.pack_into(asks, 0, 0.0)  # nobody need wait for a writer that gave up
                    self._mutex.release()
                    return False
                if starving or now - began >= _STARVING_AFTER:
                    starving, delay = True, _STARVING_POLL
                    _ASK.pack_into(asks, 0, now + _ASK_FOR)
                time.sleep(min(delay, deadline - now))
                delay = min(delay * 2, _POLL_MAX) if not starving else delay
        except BaseException:
            self._mutex.release()
            raise

    def release(self) -> None:
        """Let the lock go."""
        assert _flock is not None
        try:
            _flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def forked(self) -> None:
        """In a forked child: close the copy of the parent's descriptor, never unlocking it (it may
        hold the parent's lock, and a copy would keep it held after the parent died)."""
        if self._asks is not None:
            self._asks.close()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)


# One per database file and process; a forked child starts with none.
_LOCKS: dict[Path, ProcessLock] = {}


def _forked() -> None:
    for lock in _LOCKS.values():
        lock.forked()
    _LOCKS.clear()


os.register_at_fork(after_in_child=_forked)


def process_lock(path: str | os.PathLike[str]) -> ProcessLock | None:
    """This process's :class:`ProcessLock` of the database *path*; ``None`` without ``fcntl``."""
    return None if _flock is None else _lock_at(lock_path(path))


def _lock_at(side: Path) -> ProcessLock:
    found = _LOCKS.get(side)
    if found is None:
        found = _LOCKS.setdefault(side, ProcessLock(side))  # atomic under the GIL
    return found


class SQLiteFile:
    """The connections to one SQLite file, each with *schema* applied once.

    :param path: the database file (created if missing); ``""`` and ``":memory:"`` are refused.
    :param timeout: seconds to wait for another process's write lock.
    :param schema: the statements that create the tables (``IF NOT EXISTS``).
    :param what: how errors name the file's user ("SQLite inbox").
    :param synchronous: the connection's ``synchronous`` setting, or ``None`` for SQLite's default.
    :param autocheckpoint: whether a commit copies the WAL into the file when it has grown
        (SQLite's default); ``False`` leaves the checkpoints to the caller.
    :param process_lock: whether the write transactions queue on the side file's ``flock``
        (:class:`ProcessLock`) before SQLite's lock; ignored where ``fcntl`` does not exist.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float,
        schema: Sequence[str],
        what: str,
        synchronous: str | None = "NORMAL",
        autocheckpoint: bool = True,
        in_memory: str = "",
        process_lock: bool = True,
    ) -> None:
        # Checked before Path(), which turns "" into "." (the current directory).
        if os.fspath(path) in ("", ":memory:"):
            raise ConfigurationError(in_memory or f"{what} needs a file path")
        self.path = Path(path)
        self.timeout = duration(timeout, "timeout")
        self.schema = tuple(schema)
        self.what = what
        self._synchronous = synchronous
        self._autocheckpoint = autocheckpoint
        self._local = threading.local()
        self.lock_path = lock_path(path) if process_lock and _flock is not None else None

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (a new one in a forked child: one inherited across fork() is never used)."""
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != pid:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            if self._synchronous is not None:
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
            if not self._autocheckpoint:
                conn.execute("PRAGMA wal_autocheckpoint=0")
            for statement in self.schema:
                conn.execute(statement)
            self._local.conn = conn
            self._local.pid = pid
            self._local.synchronous = self._synchronous
        return conn

    def unavailable(self, error: sqlite3.Error | OSError) -> StoreUnavailable:
        """The 503 for a database error."""
        return StoreUnavailable(f"{self.what}: {error}")

    @contextmanager
    def _locked(self) -> Iterator[float]:
        """This process's turn at the side file's lock, for at most the time-out; gives the
        seconds spent waiting for it."""
        if self.lock_path is None:
            yield 0.0
            return
        lock = _lock_at(self.lock_path)  # looked up each time: a forked child finds a fresh one
        began = time.monotonic()
        try:
            acquired = lock.acquire(self.timeout)
        except OSError as error:
            raise self.unavailable(error) from error
        if not acquired:
            raise StoreUnavailable(f"{self.what}: another process held the write lock for {self.timeout:g} s")
        try:
            yield time.monotonic() - began
        finally:
            lock.release()

    @contextmanager
    def _busy_for_the_rest(self, conn: sqlite3.Connection, waited: float) -> Iterator[None]:
        """After a wait for the side lock, SQLite's own busy handler waits only what is left of the
        time-out (for a writer that does not take the side lock), not a second time-out."""
        if waited < _WAITED_LONG:  # nearly always: no statement more
            yield
            return
        conn.execute(f"PRAGMA busy_timeout={max(1, int((self.timeout - waited) * 1000))}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")

    @contextmanager
    def transaction(self, synchronous: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from its start (no upgrade deadlock);
        committed at the end of the block, rolled back if it raises. *synchronous* switches this
        thread's connection to that setting first."""
        with self._locked() as waited:
            try:
                conn = self.connection()
                if synchronous is not None and self._local.synchronous != synchronous:
                    conn.execute(f"PRAGMA synchronous={synchronous}")
                    self._local.synchronous = synchronous
                with self._busy_for_the_rest(conn, waited):
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise self.unavailable(error) from error

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one statement run on its own."""
        try:
            return self.connection().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as error:
            raise self.unavailable(error) from error

    def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement, committed on its own (autocommit)."""
        with self._locked() as waited:
            try:
                conn = self.connection()
                with self._busy_for_the_rest(conn, waited):
                    conn.execute(sql, tuple(params))
            except sqlite3.Error as error:
                raise self.unavailable(error) from error

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None
