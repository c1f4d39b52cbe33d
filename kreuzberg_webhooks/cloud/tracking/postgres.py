"""A job tracker in a PostgreSQL table (psycopg 3): one tracker for every machine.

``due`` leases its rows with ``FOR UPDATE SKIP LOCKED``, so reconcilers on
several machines split the due jobs between them instead of fetching each
twice. Needs the ``[postgres]`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._backends.postgres import DEFAULT_CONNECT_TIMEOUT, SyncConnections, check_table
from .base import TrackedJob

__all__ = ["DEFAULT_TRACKER_TABLE", "PostgresTracker"]

DEFAULT_TRACKER_TABLE = "kreuzberg_tracked_jobs"
_COLUMNS = "job_id, scope, tracked_at, next_check, checks, closed"


def _entry(row: Any) -> TrackedJob:
    return TrackedJob(row[0], row[1], float(row[2]), float(row[3]), int(row[4]), bool(row[5]))


class PostgresTracker:
    """Tracked jobs in a PostgreSQL table.

    :param url: a ``postgresql://`` URL.
    :param table: the table name (created if missing).
    """

    def __init__(
        self, url: str, *, table: str = DEFAULT_TRACKER_TABLE, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    ) -> None:
        self.table = t = check_table(table)
        self._connections = SyncConnections(url, connect_timeout=connect_timeout)
        with self._connections.connection("job tracker") as conn, conn.transaction():
            conn.execute(f"SELECT pg_advisory_xact_lock(hashtext('kreuzberg_webhooks:{t}'))")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (job_id TEXT PRIMARY KEY, scope TEXT NOT NULL, "
                "tracked_at DOUBLE PRECISION NOT NULL, next_check DOUBLE PRECISION NOT NULL, "
                "checks INTEGER NOT NULL DEFAULT 0, closed BOOLEAN NOT NULL DEFAULT FALSE)"
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_due ON {t} (closed, next_check)")

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresTracker:
        """The tracker for *url* (as :func:`~kreuzberg_webhooks.cloud.tracking.open_tracker` calls it)."""
        return cls(url, **options)

    def track(self, entries: Sequence[TrackedJob]) -> None:
        """Add the entries not tracked yet."""
        if not entries:
            return
        with self._connections.connection("job tracker") as conn, conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {self.table} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, FALSE) "
                "ON CONFLICT (job_id) DO NOTHING",
                [(e.job_id, e.scope, e.tracked_at, e.next_check, e.checks) for e in entries],
            )

    def due(self, now: float, limit: int, lease: float) -> list[TrackedJob]:
        """Up to *limit* open entries due at *now*, oldest first, leased for *lease* seconds."""
        t = self.table
        with self._connections.connection("job tracker") as conn, conn.transaction():
            conn.execute(f"DELETE FROM {t} WHERE closed AND next_check <= %s", (now,))
            rows = conn.execute(
                f"WITH due AS (SELECT job_id, next_check FROM {t} WHERE NOT closed AND next_check <= %s "
                "ORDER BY next_check LIMIT %s FOR UPDATE SKIP LOCKED) "
                f"UPDATE {t} SET next_check = %s FROM due WHERE {t}.job_id = due.job_id "
                f"RETURNING {t}.job_id, {t}.scope, {t}.tracked_at, due.next_check, {t}.checks, {t}.closed",
                (now, limit, now + lease),
            ).fetchall()
        return sorted((_entry(row) for row in rows), key=lambda e: e.next_check)

    def reschedule(self, entries: Sequence[TrackedJob]) -> None:
        """Set the open entries' next check and check count."""
        if not entries:
            return
        with self._connections.connection("job tracker") as conn, conn.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {self.table} SET next_check = %s, checks = %s WHERE job_id = %s AND NOT closed",
                [(e.next_check, e.checks, e.job_id) for e in entries],
            )

    def close(self, job_ids: Sequence[str], until: float) -> None:
        """Mark closed (or add a closed marker) and forget at *until*."""
        if not job_ids:
            return
        with self._connections.connection("job tracker") as conn, conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {self.table} ({_COLUMNS}) VALUES (%s, '', %s, %s, 0, TRUE) "
                "ON CONFLICT (job_id) DO UPDATE SET closed = TRUE, next_check = EXCLUDED.next_check",
                [(job_id, until, until) for job_id in job_ids],
            )

    def get(self, job_id: str) -> TrackedJob | None:
        """The entry for *job_id*, if any."""
        with self._connections.connection("job tracker") as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM {self.table} WHERE job_id = %s", (job_id,)).fetchone()
        return None if row is None else _entry(row)

    def close_connection(self) -> None:
        """Close this thread's connection."""
        self._connections.close()
