"""A job tracker in a SQLite file: the replay store's file can hold it too (its own table)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..._backends.sqlite import SQLiteFile
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
        # SQLite's default synchronous setting: a tracked job is worth an fsync.
        self._db = SQLiteFile(
            path,
            timeout=timeout,
            schema=_SCHEMA,
            what="SQLite job tracker",
            synchronous=None,
            in_memory="SQLiteTracker needs a file path; use MemoryTracker for one process",
        )
        self.path = self._db.path
        self.timeout = self._db.timeout
        with self._db.transaction():
            pass  # create the file and table now: fail at start-up, not mid-pass

    def track(self, entries: Sequence[TrackedJob]) -> None:
        """Add the entries not tracked yet (one transaction)."""
        with self._db.transaction() as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO {_TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 0)",
                [(e.job_id, e.scope, e.tracked_at, e.next_check, e.checks) for e in entries],
            )

    def due(self, now: float, limit: int, lease: float) -> list[TrackedJob]:
        """Up to *limit* open entries due at *now*, oldest first, leased for *lease* seconds."""
        with self._db.transaction() as conn:
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
        with self._db.transaction() as conn:
            conn.executemany(
                f"UPDATE {_TABLE} SET next_check = ?, checks = ? WHERE job_id = ? AND closed = 0",
                [(e.next_check, e.checks, e.job_id) for e in entries],
            )

    def close(self, job_ids: Sequence[str], until: float) -> None:
        """Mark closed (or add a closed marker) and forget at *until*."""
        with self._db.transaction() as conn:
            conn.executemany(
                f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES (?, '', ?, ?, 0, 1) "
                "ON CONFLICT (job_id) DO UPDATE SET closed = 1, next_check = excluded.next_check",
                [(job_id, until, until) for job_id in job_ids],
            )

    def get(self, job_id: str) -> TrackedJob | None:
        """The entry for *job_id*, if any."""
        rows = self._db.read(f"SELECT {_COLUMNS} FROM {_TABLE} WHERE job_id = ?", (job_id,))
        return _entry(rows[0]) if rows else None

    def close_connection(self) -> None:
        """Close this thread's connection."""
        self._db.close()
