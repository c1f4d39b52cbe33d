"""A job tracker in a SQLite file: the replay store's file can hold it too (its own table)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ...exceptions import ConfigurationError, StoreUnavailable
from .base import TrackedJob

__all__ = ["SQLiteTracker"]

_TABLE = "kreuzberg_tracked_jobs"
_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
    job_id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    tracked_at REAL NOT NULL,
    next_check REAL NOT NULL,   -- closed rows: when they are forgotten
    checks INTEGER NOT NULL DEFAULT 0,
    closed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID""",
    f"CREATE INDEX IF NOT EXISTS {_TABLE}_due ON {_TABLE} (closed, next_check)",
)
_COLUMNS = "job_id, scope, tracked_at, next_check, checks, closed"


def _entry(row: tuple[str, str, float, float, int, int]) -> TrackedJob:
    return TrackedJob(row[0], row[1], row[2], row[3], row[4], bool(row[5]))


class SQLiteTracker:
    """Tracked jobs in a SQLite file, shared by the processes of one machine.

    :param path: the database file (created if missing); the replay store's file works.
    :param timeout: seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        if os.fspath(path) in ("", ":memory:"):
            raise ConfigurationError("SQLiteTracker needs a file path; use MemoryTracker for one process")
        if not timeout > 0:
            raise ConfigurationError("timeout must be positive")
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        with self._transaction():
            pass  # create the file and table now: fail at start-up, not mid-pass

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != pid:  # never a connection inherited across fork()
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in _SCHEMA:
                conn.execute(statement)
            self._local.conn, self._local.pid = conn, pid
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite job tracker: {error}") from error

    def track(self, entries: Sequence[TrackedJob]) -> None:
        """Add the entries not tracked yet (one transaction)."""
        with self._transaction() as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO {_TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0)",
                [(e.job_id, e.scope, e.tracked_at, e.next_check, e.checks) for e in entries],
            )

    def due(self, now: float, limit: int, lease: float) -> list[TrackedJob]:
        """Up to *limit* open entries due at *now*, oldest first, leased for *lease* seconds."""
        with self._transaction() as conn:
            conn.execute(f"DELETE FROM {_TABLE} WHERE closed = 1 AND next_check <= ?", (now,))
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM {_TABLE} WHERE closed = 0 AND next_check <= ? ORDER BY next_check LIMIT ?",
                (now, limit),
            ).fetchall()
            conn.executemany(
                f"UPDATE {_TABLE} SET next_check = ? WHERE job_id = ?", [(now + lease, row[0]) for row in rows]
            )
        return [_entry(row) for row in rows]

    def reschedule(self, entries: Sequence[TrackedJob]) -> None:
        """Set the open entries' next check and check count."""
        with self._transaction() as conn:
            conn.executemany(
                f"UPDATE {_TABLE} SET next_check = ?, checks = ? WHERE job_id = ? AND closed = 0",
                [(e.next_check, e.checks, e.job_id) for e in entries],
            )

    def close(self, job_ids: Sequence[str], until: float) -> None:
        """Mark closed (or add a closed marker) and forget at *until*."""
        with self._transaction() as conn:
            conn.executemany(
                f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES (?, '', ?, ?, 0, 1) "
                "ON CONFLICT (job_id) DO UPDATE SET closed = 1, next_check = excluded.next_check",
                [(job_id, until, until) for job_id in job_ids],
            )

    def get(self, job_id: str) -> TrackedJob | None:
        """The entry for *job_id*, if any."""
        try:
            row = self._connection().execute(f"SELECT {_COLUMNS} FROM {_TABLE} WHERE job_id = ?", (job_id,)).fetchone()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"SQLite job tracker: {error}") from error
        return None if row is None else _entry(row)

    def close_connection(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None
