"""One SQLite file shared by the threads and processes of one machine: a connection per
thread and per process, WAL mode, and write transactions that take the write lock at
their start (``BEGIN IMMEDIATE``); a database error is :class:`StoreUnavailable` (a 503)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError, StoreUnavailable
from ..protocol.durations import duration

__all__ = ["SQLiteFile"]


class SQLiteFile:
    """The connections to one SQLite file, each with *schema* applied once.

    :param path: the database file (created if missing); ``""`` and ``":memory:"`` are refused.
    :param timeout: seconds to wait for another process's write lock.
    :param schema: the statements that create the tables (``IF NOT EXISTS``).
    :param what: how errors name the file's user ("SQLite inbox").
    :param synchronous: the connection's ``synchronous`` setting, or ``None`` for SQLite's default.
    :param autocheckpoint: whether a commit copies the WAL into the file when it has grown
        (SQLite's default); ``False`` leaves the checkpoints to the caller.
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

    def unavailable(self, error: sqlite3.Error) -> StoreUnavailable:
        """The 503 for a database error."""
        return StoreUnavailable(f"{self.what}: {error}")

    @contextmanager
    def transaction(self, synchronous: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from its start (no upgrade deadlock);
        committed at the end of the block, rolled back if it raises. *synchronous* switches this
        thread's connection to that setting first."""
        try:
            conn = self.connection()
            if synchronous is not None and self._local.synchronous != synchronous:
                conn.execute(f"PRAGMA synchronous={synchronous}")
                self._local.synchronous = synchronous
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
        try:
            self.connection().execute(sql, tuple(params))
        except sqlite3.Error as error:
            raise self.unavailable(error) from error

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None
