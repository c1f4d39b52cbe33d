"""Replay stores on PostgreSQL (psycopg 3), sync and async: one table for every machine.

Each delivery key is one row ``(key, token, expires_at)``: a lease while
``token`` is set, *done* once it is ``NULL``, forgotten once ``expires_at`` has
passed. A claim is one ``INSERT … ON CONFLICT DO UPDATE … WHERE expired``
statement, so PostgreSQL's row lock decides between racing requests on any
number of machines. Times come from the client's clock (keep machines on NTP:
leases are minutes long, a second of skew is harmless).

Needs the ``[postgres]`` extra: ``pip install "kreuzberg-webhooks[postgres]"``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from .._backends.postgres import DEFAULT_CONNECT_TIMEOUT, AsyncConnections, SyncConnections, check_table
from ..protocol.durations import duration
from .base import Claim, ClaimState

__all__ = ["DEFAULT_TABLE", "AsyncPostgresStore", "PostgresStore"]

#: The table the store keeps its rows in (created if missing).
DEFAULT_TABLE = "kreuzberg_webhook_deliveries"

_DONE = Claim(ClaimState.DONE)


class _Statements:
    """The SQL, written once for both flavours."""

    def __init__(self, table: str, clock: Callable[[], float], purge_interval: float) -> None:
        self.table = check_table(table)
        self.clock = clock
        self.purge_interval = duration(purge_interval, "purge_interval")
        self.next_purge = 0.0
        t = self.table
        self.schema = (
            f"CREATE TABLE IF NOT EXISTS {t} (key TEXT PRIMARY KEY, token TEXT, expires_at DOUBLE PRECISION NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {t}_expires ON {t} (expires_at)",
        )
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalogue: serialise it.
        self.lock = f"SELECT pg_advisory_xact_lock(hashtext('kreuzberg_webhooks:{t}'))"
        self.claim = (
            f"INSERT INTO {t} AS existing (key, token, expires_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at "
            "WHERE existing.expires_at <= %s RETURNING token"
        )
        self.look = f"SELECT token, expires_at FROM {t} WHERE key = %s"
        self.complete = (
            f"INSERT INTO {t} (key, token, expires_at) VALUES (%s, NULL, %s) "
            "ON CONFLICT (key) DO UPDATE SET token = NULL, expires_at = EXCLUDED.expires_at"
        )
        self.release = f"DELETE FROM {t} WHERE key = %s AND token = %s"
        # A done row's token is NULL, which equals nothing: only a claim in flight is renewed.
        self.renew = f"UPDATE {t} SET expires_at = %s WHERE key = %s AND token = %s"
        self.purge = f"DELETE FROM {t} WHERE expires_at <= %s"

    def refused(self, row: Any, now: float) -> Claim | None:
        """The claim for a live row found after a failed upsert; ``None`` when it just went away."""
        if row is None:
            return None
        token, expires_at = row
        if expires_at <= now:
            return None
        return _DONE if token is None else Claim(ClaimState.IN_FLIGHT, retry_after=expires_at - now)

    def due_for_purge(self, now: float) -> bool:
        if now < self.next_purge:
            return False
        self.next_purge = now + self.purge_interval
        return True


class PostgresStore:
    """Remembers deliveries in a PostgreSQL table: one store for every worker on every machine.

    ::

        store = PostgresStore("postgresql://app@db.internal/app")

    :param url: a ``postgresql://`` URL (libpq's options may ride in its query).
    :param table: the table name (created if missing).
    :param connect_timeout: seconds to wait for the server before a delivery is answered 503.
    :param purge_interval: how often (seconds) a process deletes expired rows.
    :param clock: wall-clock unix time; every machine's should agree.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        purge_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sql = _Statements(table, clock, purge_interval)
        self._connections = SyncConnections(url, connect_timeout=connect_timeout)
        self.create_table()

    def create_table(self) -> None:
        """Create the table if it is missing (done at construction: fail at start-up, not per delivery)."""
        with self._connections.connection("replay store") as conn, conn.transaction():
            conn.execute(self._sql.lock)
            for statement in self._sql.schema:
                conn.execute(statement)

    def claim(self, key: str, lease: float) -> Claim:
        """Take a lease on *key* unless it is done or leased (one upsert decides)."""
        lease = duration(lease, "lease")
        sql = self._sql
        with self._connections.connection("replay store") as conn:
            for _ in range(3):
                now = sql.clock()
                token = secrets.token_hex(16)
                if conn.execute(sql.claim, (key, token, now + lease, now)).fetchone() is not None:
                    if sql.due_for_purge(now):
                        conn.execute(sql.purge, (now,))
                    return Claim(ClaimState.NEW, token)
                refused = sql.refused(conn.execute(sql.look, (key,)).fetchone(), now)
                if refused is not None:
                    return refused
        return Claim(ClaimState.IN_FLIGHT, retry_after=1.0)

    def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds (unconditionally: the handlers have run)."""
        retention = duration(retention, "retention")
        with self._connections.connection("replay store") as conn:
            conn.execute(self._sql.complete, (key, self._sql.clock() + retention))

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Move *key*'s claim to expire *lease* seconds from now if *token* still holds it; whether
        it does (one ``UPDATE … WHERE key AND token``). A claim whose lease ran out is still held,
        and renewed, until another claim takes the key over or a purge deletes its row."""
        lease = duration(lease, "lease")
        with self._connections.connection("replay store") as conn:
            return conn.execute(self._sql.renew, (self._sql.clock() + lease, key, token)).rowcount == 1

    def release(self, key: str, token: str) -> None:
        """Forget *key*'s claim if *token* still holds it."""
        with self._connections.connection("replay store") as conn:
            conn.execute(self._sql.release, (key, token))

    def close(self) -> None:
        """Close this thread's connection."""
        self._connections.close()


class AsyncPostgresStore:
    """The :class:`PostgresStore` on psycopg's async connections, for async receivers.

    :param max_connections: connections the store opens at most (a pool on the running loop).

    Other parameters as :class:`PostgresStore`.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        max_connections: int = 10,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        purge_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sql = _Statements(table, clock, purge_interval)
        self._connections = AsyncConnections(url, max_size=max_connections, connect_timeout=connect_timeout)
        self._ready = False

    async def create_table(self) -> None:
        """Create the table if it is missing (done before the first claim)."""
        async with self._connections.connection("replay store") as conn, conn.transaction():
            await conn.execute(self._sql.lock)
            for statement in self._sql.schema:
                await conn.execute(statement)
        self._ready = True

    async def claim(self, key: str, lease: float) -> Claim:
        """Take a lease on *key* unless it is done or leased."""
        lease = duration(lease, "lease")
        if not self._ready:
            await self.create_table()
        sql = self._sql
        async with self._connections.connection("replay store") as conn:
            for _ in range(3):
                now = sql.clock()
                token = secrets.token_hex(16)
                cursor = await conn.execute(sql.claim, (key, token, now + lease, now))
                if await cursor.fetchone() is not None:
                    if sql.due_for_purge(now):
                        await conn.execute(sql.purge, (now,))
                    return Claim(ClaimState.NEW, token)
                cursor = await conn.execute(sql.look, (key,))
                refused = sql.refused(await cursor.fetchone(), now)
                if refused is not None:
                    return refused
        return Claim(ClaimState.IN_FLIGHT, retry_after=1.0)

    async def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds."""
        retention = duration(retention, "retention")
        if not self._ready:
            await self.create_table()
        async with self._connections.connection("replay store") as conn:
            await conn.execute(self._sql.complete, (key, self._sql.clock() + retention))

    async def renew(self, key: str, token: str, lease: float) -> bool:
        """Move *key*'s claim to expire *lease* seconds from now if *token* still holds it; whether
        it does (see :meth:`PostgresStore.renew`)."""
        lease = duration(lease, "lease")
        if not self._ready:
            await self.create_table()
        async with self._connections.connection("replay store") as conn:
            cursor = await conn.execute(self._sql.renew, (self._sql.clock() + lease, key, token))
            return cursor.rowcount == 1

    async def release(self, key: str, token: str) -> None:
        """Forget *key*'s claim if *token* still holds it."""
        if not self._ready:
            await self.create_table()
        async with self._connections.connection("replay store") as conn:
            await conn.execute(self._sql.release, (key, token))

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._connections.aclose()
