"""A replay store in one SQLite file, shared by every process on one machine."""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..exceptions import ConfigurationError, StoreUnavailable
from ..protocol.durations import duration, refuse_duration
from .base import Claim, ClaimState

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kreuzberg_webhook_deliveries (
    key TEXT PRIMARY KEY,
    token TEXT,            -- NULL once done
    expires_at REAL NOT NULL
) WITHOUT ROWID
"""
_TABLE = "kreuzberg_webhook_deliveries"
_INF = float("inf")


class SQLiteStore:
    """Remembers deliveries in a SQLite database file.

    Safe across threads and across the worker processes of one machine
    (gunicorn, uvicorn ``--workers``): each claim is one ``BEGIN IMMEDIATE``
    transaction, and the file is in WAL mode. Not for several machines: a
    SQLite file on a network share does not lock reliably; use Redis there.

    :param path: the database file (created if missing).
    :param timeout: seconds to wait for another process's write lock before
        the delivery is answered 503.
    :param purge_interval: how often (seconds) a process deletes expired rows.
    :param clock: wall-clock unix time; shared by every process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 5.0,
        purge_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Checked before Path(), which turns "" into "." (the current directory).
        if os.fspath(path) in ("", ":memory:"):
            raise ConfigurationError("SQLiteStore needs a file path; use MemoryStore for one process")
        path = Path(path)
        self.path = path
        self.timeout = duration(timeout, "timeout")
        self.purge_interval = duration(purge_interval, "purge_interval", allow_zero=True)
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning unix seconds")
        self._clock = clock
        self._local = threading.local()
        self._next_purge = 0.0
        self._execute_write("", ())  # create the file and table now: fail at start-up, not per delivery

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and per process: a connection inherited
        # across fork() must never be used by the child.
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != pid:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._local.conn = conn
            self._local.pid = pid
        return conn

    def _execute_write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            conn = self._connection()
            if sql:
                conn.execute(sql, params)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite replay store: {error}") from error

    def claim(self, key: str, lease: float) -> Claim:
        """Take a lease on *key* unless it is done or leased (one transaction)."""
        if not 0.0 < lease < _INF:  # also NaN: refused before anything is written
            raise refuse_duration("lease", lease)
        try:
            conn = self._connection()
            now = self._clock()
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(f"SELECT token, expires_at FROM {_TABLE} WHERE key = ?", (key,)).fetchone()
                if row is not None and row[1] > now:
                    conn.execute("COMMIT")
                    if row[0] is None:
                        return Claim(ClaimState.DONE)
                    return Claim(ClaimState.IN_FLIGHT, retry_after=row[1] - now)
                token = secrets.token_hex(8)
                conn.execute(
                    f"INSERT OR REPLACE INTO {_TABLE} (key, token, expires_at) VALUES (?, ?, ?)",
                    (key, token, now + lease),
                )
                if now >= self._next_purge:
                    conn.execute(f"DELETE FROM {_TABLE} WHERE expires_at <= ?", (now,))
                    self._next_purge = now + self.purge_interval
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite replay store: {error}") from error
        return Claim(ClaimState.NEW, token)

    def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds."""
        if not 0.0 < retention < _INF:
            raise refuse_duration("retention", retention)
        self._execute_write(
            f"INSERT OR REPLACE INTO {_TABLE} (key, token, expires_at) VALUES (?, NULL, ?)",
            (key, self._clock() + retention),
        )

    def release(self, key: str, token: str) -> None:
        """Forget *key*'s claim if *token* still holds it."""
        self._execute_write(f"DELETE FROM {_TABLE} WHERE key = ? AND token = ?", (key, token))

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None
