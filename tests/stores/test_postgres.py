"""PostgresStore and AsyncPostgresStore: the store contract against a real PostgreSQL, plus what is theirs."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import pytest

from kreuzberg_webhooks import AsyncReplayStore, Claim, ClaimState, ConfigurationError, ReplayStore, StoreUnavailable
from kreuzberg_webhooks.stores import open_store
from kreuzberg_webhooks.stores.postgres import AsyncPostgresStore, PostgresStore

from .contract import FrozenClock, StoreContract, new_key

if TYPE_CHECKING:
    from tests.postgres_server import PostgresServer

pytest_plugins = ["tests.postgres_server"]

T = TypeVar("T")


def fresh_table() -> str:
    return f"deliveries_{uuid.uuid4().hex[:12]}"


class _Server:
    @pytest.fixture(autouse=True)
    def _server(self, postgres_server: PostgresServer) -> None:
        self.url = postgres_server.url


class TestPostgresStore(_Server, StoreContract):
    def make_store(self, clock: FrozenClock) -> ReplayStore:
        return PostgresStore(self.url, table=fresh_table(), clock=clock)

    def make_async_store(self, clock: FrozenClock) -> ReplayStore | AsyncReplayStore:
        return AsyncPostgresStore(self.url, table=fresh_table(), clock=clock)


class LoopThread:
    """Runs an :class:`AsyncPostgresStore` on one event loop in a thread and exposes it
    synchronously, so that the whole contract (thread races included) drives the async store."""

    def __init__(self, store: AsyncPostgresStore) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.store = store

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def claim(self, key: str, lease: float) -> Claim:
        return self.run(self.store.claim(key, lease))

    def complete(self, key: str, token: str, retention: float) -> None:
        self.run(self.store.complete(key, token, retention))

    def release(self, key: str, token: str) -> None:
        self.run(self.store.release(key, token))

    def renew(self, key: str, token: str, lease: float) -> bool:
        return self.run(self.store.renew(key, token, lease))

    def close(self) -> None:
        self.run(self.store.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class TestAsyncPostgresStore(_Server, StoreContract):
    def make_store(self, clock: FrozenClock) -> ReplayStore:
        return LoopThread(AsyncPostgresStore(self.url, table=fresh_table(), clock=clock))

    def make_async_store(self, clock: FrozenClock) -> ReplayStore | AsyncReplayStore:
        return AsyncPostgresStore(self.url, table=fresh_table(), clock=clock)


def test_open_store_builds_the_sync_or_the_async_store(postgres_url: str) -> None:
    sync_store = open_store(postgres_url)
    async_store = open_store(postgres_url, asynchronous=True)
    assert isinstance(sync_store, PostgresStore)
    assert isinstance(async_store, AsyncPostgresStore)
    sync_store.close()


def test_the_table_is_created_once_by_racing_processes_threads(postgres_url: str) -> None:
    table, errors = fresh_table(), []

    def open_one() -> None:
        try:
            PostgresStore(postgres_url, table=table).close()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []


def test_expired_rows_are_purged(postgres_url: str) -> None:
    clock, table = FrozenClock(), fresh_table()
    store = PostgresStore(postgres_url, table=table, clock=clock, purge_interval=10)
    old = new_key()
    token = store.claim(old, 5).token
    assert token is not None
    store.complete(old, token, 5)
    clock.advance(20)
    store.claim(new_key(), 5)
    with psycopg.connect(postgres_url) as conn:
        keys = [row[0] for row in conn.execute(f"SELECT key FROM {table}")]
    assert old not in keys
    assert len(keys) == 1
    store.close()


@pytest.mark.parametrize(
    "options",
    [{"table": "Robert'); DROP TABLE x; --"}, {"table": ""}, {"purge_interval": 0}, {"connect_timeout": float("inf")}],
    ids=["injection", "empty-table", "purge-zero", "timeout-inf"],
)
def test_settings_that_cannot_work_are_refused(postgres_url: str, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        PostgresStore(postgres_url, **options)


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="postgresql://"):
        PostgresStore("redis://localhost/0")


@pytest.mark.slow
def test_a_stopped_server_is_store_unavailable_and_a_restarted_one_serves_again(
    own_postgres_server: PostgresServer,
) -> None:
    store = PostgresStore(own_postgres_server.url)
    key = new_key()
    token = store.claim(key, 60).token
    assert token is not None
    store.complete(key, token, 600)
    own_postgres_server.stop()
    with pytest.raises(StoreUnavailable) as caught:
        store.claim(new_key(), 60)
    assert str(own_postgres_server.port) not in caught.value.detail
    own_postgres_server.start()
    assert store.claim(key, 60).state is ClaimState.DONE  # durable: the restart forgot nothing
    store.close()


def test_a_connection_idle_through_a_restart_costs_no_failed_operation(own_postgres_server: PostgresServer) -> None:
    store = PostgresStore(own_postgres_server.url)
    key = new_key()
    token = store.claim(key, 60).token
    assert token is not None
    store.complete(key, token, 600)
    # The connection sits idle while the server restarts: its next use must not be a 503.
    own_postgres_server.stop()
    own_postgres_server.start()
    assert store.claim(key, 60).state is ClaimState.DONE
    assert store.claim(new_key(), 60).state is ClaimState.NEW
    store.close()


@pytest.mark.slow
def test_the_async_store_is_unavailable_while_the_server_is_down(own_postgres_server: PostgresServer) -> None:
    async def scenario() -> None:
        store = AsyncPostgresStore(own_postgres_server.url)
        key = new_key()
        assert (await store.claim(key, 60)).state is ClaimState.NEW
        own_postgres_server.stop()
        with pytest.raises(StoreUnavailable):
            await store.claim(new_key(), 60)
        own_postgres_server.start()
        assert (await store.claim(key, 60)).state is ClaimState.IN_FLIGHT
        await store.aclose()

    asyncio.run(scenario())


def test_without_psycopg_the_import_error_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from kreuzberg_webhooks.stores import open_store\n"
        "try:\n    open_store('postgresql://127.0.0.1/x')\n"
        "except ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert 'pip install "kreuzberg-webhooks[postgres]"' in result.stdout
