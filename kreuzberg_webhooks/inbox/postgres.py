"""Inboxes on PostgreSQL (psycopg 3), sync and async: deliveries kept in your database.

One row per delivery key. Workers on any number of machines claim due rows
with ``SELECT … FOR UPDATE SKIP LOCKED`` inside one ``UPDATE``, so two workers
never take the same delivery and neither waits for the other's rows; a
delivery is acknowledged once its ``INSERT`` has committed (with PostgreSQL's
default ``synchronous_commit``, that is after the WAL is flushed).

Needs the ``[postgres]`` extra: ``pip install "kreuzberg-webhooks[postgres]"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .._backends.postgres import DEFAULT_CONNECT_TIMEOUT, AsyncConnections, SyncConnections, check_table
from ._rows import (
    COLUMN_NAMES,
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

__all__ = ["DEFAULT_TABLE", "AsyncPostgresInbox", "PostgresInbox"]

#: The table the inbox keeps deliveries in (created if missing).
DEFAULT_TABLE = "kreuzberg_webhook_inbox"

_WHAT = "inbox"


class _Statements:
    """The SQL, written once for both flavours; each method returns ``(sql, params)``."""

    def __init__(self, table: str) -> None:
        t = self.table = check_table(table)
        self.columns = ", ".join(COLUMN_NAMES)
        self.qualified = ", ".join(f"{t}.{name}" for name in COLUMN_NAMES)
        self.schema = (
            f"""CREATE TABLE IF NOT EXISTS {t} (
                key TEXT PRIMARY KEY,
                scope TEXT NOT NULL,
                event_id TEXT,
                event_type TEXT NOT NULL,
                job_id TEXT NOT NULL,
                body BYTEA NOT NULL,
                headers TEXT NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                state TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at DOUBLE PRECISION NOT NULL,
                last_error TEXT,
                updated_at DOUBLE PRECISION NOT NULL,
                lease_token TEXT
            )""",
            f"CREATE INDEX IF NOT EXISTS {t}_due ON {t} (state, next_attempt_at)",
            f"CREATE INDEX IF NOT EXISTS {t}_event_id ON {t} (event_id)",
        )
        self.lock = f"SELECT pg_advisory_xact_lock(hashtext('kreuzberg_webhooks:{t}'))"

    def enqueue(self, entry: InboxEntry, now: float) -> tuple[str, tuple[Any, ...]]:
        return (
            f"INSERT INTO {self.table} ({self.columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'queued', 0, %s, "
            "NULL, %s) ON CONFLICT (key) DO NOTHING",
            entry_values(entry, now),
        )

    def claim_due(self, now: float, lease: float, limit: int) -> tuple[str, tuple[Any, ...]]:
        t = self.table
        return (
            f"WITH due AS (SELECT key, next_attempt_at AS due_at FROM {t} "
            f"WHERE state IN ('queued', 'running') AND next_attempt_at <= %s "
            "ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"UPDATE {t} SET state = 'running', attempts = {t}.attempts + 1, next_attempt_at = %s, "
            "updated_at = %s, lease_token = md5(random()::text || clock_timestamp()::text || due.key) "
            f"FROM due WHERE {t}.key = due.key RETURNING {self.qualified}, {t}.lease_token, due.due_at",
            (now, limit, now + lease, now),
        )

    def claim(self, key: str, now: float, lease: float) -> tuple[str, tuple[Any, ...]]:
        t = self.table
        return (
            f"UPDATE {t} SET state = 'running', attempts = attempts + 1, next_attempt_at = %s, updated_at = %s, "
            "lease_token = md5(random()::text || clock_timestamp()::text || key) "
            "WHERE key = %s AND (state = 'queued' OR (state = 'running' AND next_attempt_at <= %s)) "
            f"RETURNING {self.columns}, lease_token",
            (now + lease, now, key, now),
        )

    def settle(
        self, key: str, token: str, assignments: str, params: Sequence[Any], now: float
    ) -> tuple[str, tuple[Any, ...]]:
        return (
            f"UPDATE {self.table} SET {assignments}, lease_token = NULL, updated_at = %s "
            "WHERE key = %s AND state = 'running' AND lease_token = %s",
            (*params, now, key, token),
        )

    def complete(self, key: str, token: str, now: float) -> tuple[str, tuple[Any, ...]]:
        return self.settle(key, token, "state = 'done', last_error = NULL", (), now)

    def renew(self, key: str, token: str, lease: float, now: float) -> tuple[str, tuple[Any, ...]]:
        return (
            f"UPDATE {self.table} SET next_attempt_at = %s WHERE key = %s AND state = 'running' AND lease_token = %s",
            (now + check_lease(lease), key, token),
        )

    def fail(self, key: str, token: str, error: str, retry_at: float | None, now: float) -> tuple[str, tuple[Any, ...]]:
        if retry_at is None:
            return self.settle(key, token, "state = 'dead', last_error = %s", (short_error(error),), now)
        return self.settle(
            key, token, "state = 'queued', next_attempt_at = %s, last_error = %s", (retry_at, short_error(error)), now
        )

    def release(self, key: str, token: str, retry_at: float, now: float) -> tuple[str, tuple[Any, ...]]:
        return self.settle(
            key, token, "state = 'queued', next_attempt_at = %s, attempts = GREATEST(attempts - 1, 0)", (retry_at,), now
        )

    def get(self, key_or_event_id: str) -> tuple[str, tuple[Any, ...]]:
        return (
            f"SELECT {self.columns} FROM {self.table} WHERE key = %s OR event_id = %s "
            "ORDER BY (key = %s) DESC, received_at DESC LIMIT 1",
            (key_or_event_id, key_or_event_id, key_or_event_id),
        )

    def list(self, state: DeliveryState | None, limit: int) -> tuple[str, tuple[Any, ...]]:
        limit = check_limit(limit)
        if state is None:
            return f"SELECT {LISTED} FROM {self.table} ORDER BY received_at DESC, key LIMIT %s", (limit,)
        return (
            f"SELECT {LISTED} FROM {self.table} WHERE state = %s ORDER BY received_at DESC, key LIMIT %s",
            (DeliveryState(state).value, limit),
        )

    def counts(self) -> tuple[str, tuple[Any, ...]]:
        return f"SELECT state, COUNT(*) FROM {self.table} GROUP BY state", ()

    def retry(self, keys: Sequence[str], state: DeliveryState | None, now: float) -> tuple[str, tuple[Any, ...]] | None:
        reset = f"UPDATE {self.table} SET state = 'queued', attempts = 0, next_attempt_at = %s, updated_at = %s, "
        if state is not None:
            if DeliveryState(state) is DeliveryState.RUNNING:
                return None
            return reset + "lease_token = NULL WHERE state = %s", (now, now, DeliveryState(state).value)
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not one string")
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return None
        return (
            reset + "lease_token = NULL WHERE (key = ANY(%s) OR event_id = ANY(%s)) AND state != 'running'",
            (now, now, wanted, wanted),
        )

    def purge(self, state: DeliveryState, older_than: float, now: float) -> tuple[str, tuple[Any, ...]]:
        state, older_than = check_purge(state, older_than)
        return f"DELETE FROM {self.table} WHERE state = %s AND updated_at <= %s", (state.value, now - older_than)


def _claims(rows: Sequence[Sequence[Any]]) -> list[InboxClaim]:
    ordered = sorted(rows, key=lambda row: (row[len(COLUMN_NAMES) + 1], row[0]))  # oldest due first
    return [InboxClaim(record_from_row(row), row[len(COLUMN_NAMES)]) for row in ordered]


def _claim(row: Sequence[Any] | None) -> InboxClaim | None:
    return None if row is None else InboxClaim(record_from_row(row), row[len(COLUMN_NAMES)])


def _counts(rows: Sequence[Sequence[Any]]) -> dict[DeliveryState, int]:
    counts = dict.fromkeys(DeliveryState, 0)
    for state, count in rows:
        counts[DeliveryState(state)] = int(count)
    return counts


class PostgresInbox:
    """Keeps deliveries in a PostgreSQL table until a worker on any machine has processed them.

    ::

        inbox = PostgresInbox("postgresql://app@db.internal/app")
        receiver = Receiver(secret, store=PostgresStore(url), inbox=inbox)

    :param url: a ``postgresql://`` URL.
    :param table: the table name (created if missing).
    :param connect_timeout: seconds to wait for the server before a delivery is answered 503.
    :param clock: wall-clock unix time; every machine's should agree.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sql = _Statements(table)
        self._connections = SyncConnections(url, connect_timeout=connect_timeout)
        self._clock = clock
        self.create_table()

    @property
    def table(self) -> str:
        """The table's name."""
        return self._sql.table

    def create_table(self) -> None:
        """Create the table if it is missing (done at construction)."""
        with self._connections.connection(_WHAT) as conn, conn.transaction():
            conn.execute(self._sql.lock)
            for statement in self._sql.schema:
                conn.execute(statement)

    def _rowcount(self, statement: tuple[str, tuple[Any, ...]]) -> int:
        with self._connections.connection(_WHAT) as conn:
            return conn.execute(*statement).rowcount

    def _rows(self, statement: tuple[str, tuple[Any, ...]]) -> list[Any]:
        with self._connections.connection(_WHAT) as conn:
            return conn.execute(*statement).fetchall()

    def enqueue(self, entry: InboxEntry) -> bool:
        """Write *entry* as queued; ``False`` if its key is already in the inbox (any state)."""
        return self._rowcount(self._sql.enqueue(entry, self._clock())) == 1

    def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]:
        """Lease up to *limit* due deliveries, oldest due first."""
        lease, limit = check_lease(lease), check_limit(limit)
        return _claims(self._rows(self._sql.claim_due(self._clock(), lease, limit)))

    def claim(self, key: str, lease: float) -> InboxClaim | None:
        """Lease the delivery *key* whatever its next attempt time, unless it is done, dead or leased."""
        rows = self._rows(self._sql.claim(key, self._clock(), check_lease(lease)))
        return _claim(rows[0] if rows else None)

    def complete(self, key: str, token: str) -> bool:
        """Mark the claimed delivery done; ``False`` if *token* no longer holds it."""
        return self._rowcount(self._sql.complete(key, token, self._clock())) == 1

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Extend the claim's lease to *lease* seconds from now (the worker's heartbeat)."""
        return self._rowcount(self._sql.renew(key, token, lease, self._clock())) == 1

    def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt: queued again from *retry_at*, or dead when it is ``None``."""
        return self._rowcount(self._sql.fail(key, token, error, retry_at, self._clock())) == 1

    def release(self, key: str, token: str, retry_at: float) -> bool:
        """Give a claim back without counting its attempt."""
        return self._rowcount(self._sql.release(key, token, retry_at, self._clock())) == 1

    def get(self, key_or_event_id: str) -> InboxRecord | None:
        """The delivery with this key, else the latest with this event id."""
        rows = self._rows(self._sql.get(key_or_event_id))
        return record_from_row(rows[0]) if rows else None

    def list(self, state: DeliveryState | None = None, limit: int = 100) -> list[InboxRecord]:
        """Up to *limit* deliveries (in *state*), the latest received first, without their bodies."""
        return [record_from_listed_row(row) for row in self._rows(self._sql.list(state, limit))]

    def counts(self) -> dict[DeliveryState, int]:
        """How many deliveries are in each state."""
        return _counts(self._rows(self._sql.counts()))

    def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int:
        """Queue deliveries again now with a fresh attempt count (by key or event id, or all in *state*)."""
        statement = self._sql.retry(keys, state, self._clock())
        return 0 if statement is None else self._rowcount(statement)

    def purge(self, state: DeliveryState, older_than: float = 0.0) -> int:
        """Delete the deliveries in *state* unchanged for *older_than* seconds; how many went."""
        return self._rowcount(self._sql.purge(state, older_than, self._clock()))

    def close(self) -> None:
        """Close this thread's connection."""
        self._connections.close()


class AsyncPostgresInbox:
    """The :class:`PostgresInbox` on psycopg's async connections, for async receivers and workers.

    :param max_connections: connections the inbox opens at most (a pool on the running loop).

    Other parameters as :class:`PostgresInbox`.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        max_connections: int = 10,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sql = _Statements(table)
        self._connections = AsyncConnections(url, max_size=max_connections, connect_timeout=connect_timeout)
        self._clock = clock
        self._ready = False

    @property
    def table(self) -> str:
        """The table's name."""
        return self._sql.table

    async def create_table(self) -> None:
        """Create the table if it is missing (done before the first operation)."""
        async with self._connections.connection(_WHAT) as conn, conn.transaction():
            await conn.execute(self._sql.lock)
            for statement in self._sql.schema:
                await conn.execute(statement)
        self._ready = True

    async def _rowcount(self, statement: tuple[str, tuple[Any, ...]]) -> int:
        if not self._ready:
            await self.create_table()
        async with self._connections.connection(_WHAT) as conn:
            return (await conn.execute(*statement)).rowcount

    async def _rows(self, statement: tuple[str, tuple[Any, ...]]) -> list[Any]:
        if not self._ready:
            await self.create_table()
        async with self._connections.connection(_WHAT) as conn:
            return await (await conn.execute(*statement)).fetchall()

    async def enqueue(self, entry: InboxEntry) -> bool:
        """Write *entry* as queued; ``False`` if its key is already in the inbox."""
        return await self._rowcount(self._sql.enqueue(entry, self._clock())) == 1

    async def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]:
        """Lease up to *limit* due deliveries, oldest due first."""
        lease, limit = check_lease(lease), check_limit(limit)
        return _claims(await self._rows(self._sql.claim_due(self._clock(), lease, limit)))

    async def claim(self, key: str, lease: float) -> InboxClaim | None:
        """Lease the delivery *key* unless it is done, dead or leased."""
        rows = await self._rows(self._sql.claim(key, self._clock(), check_lease(lease)))
        return _claim(rows[0] if rows else None)

    async def complete(self, key: str, token: str) -> bool:
        """Mark the claimed delivery done."""
        return await self._rowcount(self._sql.complete(key, token, self._clock())) == 1

    async def renew(self, key: str, token: str, lease: float) -> bool:
        """Extend the claim's lease to *lease* seconds from now (the worker's heartbeat)."""
        return await self._rowcount(self._sql.renew(key, token, lease, self._clock())) == 1

    async def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt: queued again from *retry_at*, or dead."""
        return await self._rowcount(self._sql.fail(key, token, error, retry_at, self._clock())) == 1

    async def release(self, key: str, token: str, retry_at: float) -> bool:
        """Give a claim back without counting its attempt."""
        return await self._rowcount(self._sql.release(key, token, retry_at, self._clock())) == 1

    async def get(self, key_or_event_id: str) -> InboxRecord | None:
        """The delivery with this key, else the latest with this event id."""
        rows = await self._rows(self._sql.get(key_or_event_id))
        return record_from_row(rows[0]) if rows else None

    async def list(self, state: DeliveryState | None = None, limit: int = 100) -> list[InboxRecord]:
        """Up to *limit* deliveries (in *state*), the latest received first, without their bodies."""
        return [record_from_listed_row(row) for row in await self._rows(self._sql.list(state, limit))]

    async def counts(self) -> dict[DeliveryState, int]:
        """How many deliveries are in each state."""
        return _counts(await self._rows(self._sql.counts()))

    async def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int:
        """Queue deliveries again now with a fresh attempt count."""
        statement = self._sql.retry(keys, state, self._clock())
        return 0 if statement is None else await self._rowcount(statement)

    async def purge(self, state: DeliveryState, older_than: float = 0.0) -> int:
        """Delete the deliveries in *state* unchanged for *older_than* seconds."""
        return await self._rowcount(self._sql.purge(state, older_than, self._clock()))

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._connections.aclose()
