"""What the PostgreSQL store and inbox share: psycopg 3 connections, sync and async.

Sync: one connection per thread and per process (a connection inherited across
``fork()`` is never used by the child), opened on first use and opened again
after an error or when the server hung up on it while it was idle, so a
restarted server costs no failed operation on a connection that was idle. Async: a
small pool of connections on the running event loop. Every operation runs in
autocommit mode, or in one explicit transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import select
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

try:
    import psycopg
except ImportError as error:  # psycopg is the optional [postgres] extra
    raise ImportError('PostgreSQL support needs psycopg 3: pip install "kreuzberg-webhooks[postgres]"') from error

from ..exceptions import ConfigurationError, StoreUnavailable
from ..protocol.durations import duration

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "AsyncConnections", "SyncConnections", "check_table", "unavailable"]

#: Seconds to wait for a connection before the delivery is answered 503.
DEFAULT_CONNECT_TIMEOUT = 2

_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def check_table(name: str) -> str:
    """*name* if it is a plain lower-case SQL identifier (it is put into SQL text)."""
    if not (isinstance(name, str) and name and name[0].isalpha() and set(name) <= _IDENTIFIER_CHARS):
        raise ConfigurationError(f"table name {name!r} must be lower-case letters, digits and '_'")
    if len(name) > 50:
        raise ConfigurationError("table name must be at most 50 characters")
    return name


def _conninfo(url: str, connect_timeout: float) -> tuple[str, dict[str, Any]]:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("postgres", "postgresql"):
        raise ConfigurationError("a PostgreSQL URL starts with postgresql:// (or postgres://)")
    connect_timeout = duration(connect_timeout, "connect_timeout")  # also refuses True and "5"
    options: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in dict(parse_qsl(urlsplit(url).query)):
        options["connect_timeout"] = max(1, math.ceil(connect_timeout))
    return url, options


def unavailable(what: str, error: BaseException) -> NoReturn:
    """Raise :class:`StoreUnavailable` for a database error; the message names no host."""
    raise StoreUnavailable(f"The PostgreSQL {what} is unavailable ({type(error).__name__}); retry later.") from error


class SyncConnections:
    """One psycopg connection per thread and process."""

    def __init__(self, url: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        self.url, self._options = _conninfo(url, connect_timeout)
        self._local = threading.local()

    @contextlib.contextmanager
    def connection(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """This thread's connection; any database error becomes :class:`StoreUnavailable`
        and drops the connection (the next call reconnects)."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        try:
            if conn is not None and not self._alive(conn):
                self._drop()
                conn = None
            if conn is None:
                conn = psycopg.connect(self.url, **self._options)
                self._local.conn, self._local.pid = conn, os.getpid()
            yield conn
        except psycopg.Error as error:
            self._drop()
            unavailable(what, error)

    def _alive(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether this thread's connection can be used: this process's, open, and not hung up.

        A server that shuts down tells its idle clients so before it closes their
        sockets. A socket with something to read between two operations therefore
        means the connection may be dead: one round trip then settles it, and spares
        a delivery the 503 of a connection that outlived a server restart. A quiet
        socket costs a non-blocking ``select``, no round trip.
        """
        if conn.closed or self._local.pid != os.getpid():
            return False
        try:
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        if not readable:
            return True
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._local.pid == os.getpid():
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()


class AsyncConnections:
    """A small pool of async psycopg connections on the running event loop."""

    def __init__(self, url: str, *, max_size: int = 10, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        if type(max_size) is not int or max_size < 1:
            raise ConfigurationError("max_size must be a positive whole number")
        self.url, self._options = _conninfo(url, connect_timeout)
        self.max_size = max_size
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None

    def _bind(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._slots is None:
            # Connections belong to the loop that opened them: a new loop starts afresh.
            self._loop, self._slots, self._idle = loop, asyncio.Semaphore(self.max_size), []
        return self._slots

    @contextlib.asynccontextmanager
    async def connection(self, what: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; a database error becomes :class:`StoreUnavailable` and the
        connection is discarded."""
        async with self._bind():
            conn = self._idle.pop() if self._idle else None
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(self.url, **self._options)
                yield conn
            except psycopg.Error as error:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                if isinstance(error, psycopg.OperationalError):
                    # The server went away (or restarted): the idle connections are as dead as this one.
                    await self.aclose()
                unavailable(what, error)
            except BaseException:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                raise
            else:
                self._idle.append(conn)

    async def aclose(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                await conn.close()
