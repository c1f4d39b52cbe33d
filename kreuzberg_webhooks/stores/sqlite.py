"""A replay store in one SQLite file, shared by every process on one machine."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable

from .._backends.sqlite import SQLiteFile
from ..exceptions import ConfigurationError
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
    transaction, and the file is in WAL mode; the processes' writes queue on
    ``flock`` on a side file, ``<path>-lock``, first. Not for several machines: a
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
        self._db = SQLiteFile(
            path,
            timeout=timeout,
            schema=(_SCHEMA,),
            what="SQLite replay store",
            in_memory="SQLiteStore needs a file path; use MemoryStore for one process",
        )
        self.path = self._db.path
        self.timeout = self._db.timeout
        self.purge_interval = duration(purge_interval, "purge_interval", allow_zero=True)
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning unix seconds")
        self._clock = clock
        self._next_purge = 0.0
        self._db.write("SELECT 1")  # create the file and table now: fail at start-up, not per delivery

    def claim(self, key: str, lease: float) -> Claim:
        """Take a lease on *key* unless it is done or leased (one transaction)."""
        if not 0.0 < lease < _INF:  # also NaN: refused before anything is written
            raise refuse_duration("lease", lease)
        now = self._clock()
        with self._db.transaction() as conn:
            row = conn.execute(f"SELECT token, expires_at FROM {_TABLE} WHERE key = ?", (key,)).fetchone()
            if row is not None and row[1] > now:
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
        return Claim(ClaimState.NEW, token)

    def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds."""
        if not 0.0 < retention < _INF:
            raise refuse_duration("retention", retention)
        self._db.write(
            f"INSERT OR REPLACE INTO {_TABLE} (key, token, expires_at) VALUES (?, NULL, ?)",
            (key, self._clock() + retention),
        )

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Move *key*'s claim to expire *lease* seconds from now if *token* still holds it; whether
        it does (one ``UPDATE … WHERE key AND token``). A claim whose lease ran out is still held,
        and renewed, until another claim takes the key over or a purge deletes its row."""
        if not 0.0 < lease < _INF:
            raise refuse_duration("lease", lease)
        with self._db.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE {_TABLE} SET expires_at = ? WHERE key = ? AND token = ?", (self._clock() + lease, key, token)
            )
            return cursor.rowcount == 1

    def release(self, key: str, token: str) -> None:
        """Forget *key*'s claim if *token* still holds it."""
        self._db.write(f"DELETE FROM {_TABLE} WHERE key = ? AND token = ?", (key, token))

    def close(self) -> None:
        """Close this thread's connection."""
        self._db.close()
