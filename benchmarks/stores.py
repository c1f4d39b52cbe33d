"""Row 9: replay-store operations per second (claim + complete of a new key), and Redis round trips."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kreuzberg_webhooks import MemoryStore, SQLiteStore
from kreuzberg_webhooks.stores.base import ReplayStore

from .servers import free_port, stop

LEASE = 120.0
RETENTION = 24 * 60 * 60 + 5 * 60


@dataclass(frozen=True)
class StoreResult:
    name: str
    #: claim + complete pairs per second (medians over rounds)
    pairs_per_second: float
    #: Redis only: server commands per store operation (1 = one round trip)
    commands_per_operation: float | None = None


def _pairs_per_second(store: ReplayStore, *, rounds: int, batch: int, prefix: str) -> float:
    rates = []
    for index in range(rounds):
        keys = [f"{prefix}:{index}:{n}" for n in range(batch)]
        start = time.perf_counter()
        for key in keys:
            claim = store.claim(key, LEASE)
            assert claim.token is not None
            store.complete(key, claim.token, RETENTION)
        rates.append(batch / (time.perf_counter() - start))
    rates.sort()
    return rates[len(rates) // 2]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[int]:
    """A throw-away redis-server on a free loopback port (nothing on disk), stopped on exit."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with (directory / "redis.log").open("wb") as log:
        proc = subprocess.Popen(argv, cwd=directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not _ping(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(directory / 'redis.log').read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        stop(proc)


def run(*, rounds: int, batch: int) -> list[StoreResult]:
    results = [StoreResult("memory", _pairs_per_second(MemoryStore(10**7), rounds=rounds, batch=batch, prefix="m"))]
    with tempfile.TemporaryDirectory(prefix="kreuzberg-bench-") as tmp:
        directory = Path(tmp)
        sqlite = SQLiteStore(directory / "replay.sqlite3")
        results.append(StoreResult("sqlite", _pairs_per_second(sqlite, rounds=rounds, batch=batch, prefix="s")))
        results.append(_redis(directory, rounds=rounds, batch=batch))
    return results


def _redis(directory: Path, *, rounds: int, batch: int) -> StoreResult:
    import redis

    from kreuzberg_webhooks.stores.redis import RedisStore

    sent = [0]

    class CountingConnection(redis.Connection):
        """Counts the requests written to the socket: one per round trip (no pipelining here)."""

        def send_packed_command(self, command: object, check_health: bool = True) -> None:
            sent[0] += 1
            super().send_packed_command(command, check_health)  # type: ignore[arg-type]

    with redis_server(directory) as port:
        pool = redis.ConnectionPool(host="127.0.0.1", port=port, connection_class=CountingConnection)
        store = RedisStore(redis.Redis(connection_pool=pool))
        try:
            _pairs_per_second(store, rounds=1, batch=10, prefix="warm")  # connects, loads the Lua script once
            before = sent[0]
            rate = _pairs_per_second(store, rounds=rounds, batch=batch, prefix="r")
            per_operation = (sent[0] - before) / (2 * rounds * batch)
        finally:
            pool.disconnect()
    return StoreResult("redis", rate, per_operation)
