"""PostgresInbox and AsyncPostgresInbox: the inbox contract against a real PostgreSQL, plus what is theirs."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from kreuzberg_webhooks import ConfigurationError, StoreUnavailable
from kreuzberg_webhooks.inbox import DeliveryState, Inbox, open_inbox
from kreuzberg_webhooks.inbox.postgres import AsyncPostgresInbox, PostgresInbox
from tests.inbox.contract import LEASE, InboxContract, make_entry
from tests.stores.contract import FrozenClock

if TYPE_CHECKING:
    from tests.postgres_server import PostgresServer

pytest_plugins = ["tests.postgres_server"]


def fresh_table() -> str:
    return f"inbox_{uuid.uuid4().hex[:12]}"


class OnLoopThread:
    """Drives an async inbox on one event loop in a thread, synchronously: every contract case
    (thread races included) runs against the async flavour too."""

    def __init__(self, inbox: AsyncPostgresInbox) -> None:
        self.inbox = inbox
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inbox, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(method(*args, **kwargs), self.loop).result(timeout=30)

        return call

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.inbox.aclose(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class _Server:
    @pytest.fixture(autouse=True)
    def _server(self, postgres_server: PostgresServer) -> None:
        self.url = postgres_server.url


class TestPostgresInbox(_Server, InboxContract):
    def make_inbox(self, clock: FrozenClock) -> Inbox:
        return PostgresInbox(self.url, table=fresh_table(), clock=clock)


class TestAsyncPostgresInbox(_Server, InboxContract):
    def make_inbox(self, clock: FrozenClock) -> Inbox:
        return OnLoopThread(AsyncPostgresInbox(self.url, table=fresh_table(), clock=clock))  # type: ignore[return-value]


def test_open_inbox_reads_a_postgresql_url(postgres_url: str) -> None:
    inbox = open_inbox(postgres_url, table=fresh_table())
    assert isinstance(inbox, PostgresInbox)
    assert isinstance(open_inbox(postgres_url, asynchronous=True), AsyncPostgresInbox)
    inbox.close()


def test_a_table_name_that_is_not_a_plain_identifier_is_refused(postgres_url: str) -> None:
    with pytest.raises(ConfigurationError, match="table name"):
        PostgresInbox(postgres_url, table="inbox; DROP TABLE users")


@pytest.mark.slow
def test_a_stopped_server_is_unavailable_and_queued_deliveries_survive_its_restart(
    own_postgres_server: PostgresServer,
) -> None:
    inbox = PostgresInbox(own_postgres_server.url)
    entries = [make_entry() for _ in range(5)]
    for entry in entries:
        assert inbox.enqueue(entry)
    own_postgres_server.stop()
    with pytest.raises(StoreUnavailable):
        inbox.enqueue(make_entry())
    own_postgres_server.start()
    claims = inbox.claim_due(LEASE, limit=10)
    assert {c.key for c in claims} == {e.key for e in entries}
    for claim in claims:
        assert inbox.complete(claim.key, claim.token)
    assert inbox.counts()[DeliveryState.DONE] == 5
    inbox.close()


def test_an_async_worker_on_postgres_runs_each_delivery_once(postgres_url: str) -> None:
    from kreuzberg_webhooks import Receiver
    from kreuzberg_webhooks.inbox.worker import InboxWorker
    from kreuzberg_webhooks.stores.postgres import AsyncPostgresStore
    from kreuzberg_webhooks.testing import job_event_payload
    from tests.inbox.support import SECRET, CountingHandler, entry_for

    handler = CountingHandler()

    async def scenario() -> dict[DeliveryState, int]:
        inbox = AsyncPostgresInbox(postgres_url, table=fresh_table())
        store = AsyncPostgresStore(postgres_url, table=f"deliveries_{uuid.uuid4().hex[:12]}")
        receiver = Receiver(SECRET, store=store, inbox=inbox)
        receiver.on()(handler)
        import time

        entries = [entry_for(job_event_payload(), received_at=time.time()) for _ in range(20)]
        for entry in entries:
            assert await inbox.enqueue(entry)
            assert not await inbox.enqueue(entry)
        workers = [InboxWorker(receiver, batch=3, poll_interval=0.05) for _ in range(3)]
        for worker in workers:
            await worker.start_async()
        async with asyncio.timeout(60):
            while (await inbox.counts())[DeliveryState.DONE] < len(entries):
                await asyncio.sleep(0.02)
        for worker in workers:
            await worker.stop_async()
        counts = await inbox.counts()
        await inbox.aclose()
        await store.aclose()
        return counts

    counts = asyncio.run(scenario())
    assert counts[DeliveryState.DONE] == 20
    assert sorted(handler.calls.values()) == [1] * 20
