"""RedisInbox and AsyncRedisInbox: the inbox contract against a real redis-server, plus what is Redis's own."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
import redis

from kreuzberg_webhooks import ConfigurationError, StoreUnavailable
from kreuzberg_webhooks.inbox import DeliveryState, Inbox, open_inbox
from kreuzberg_webhooks.inbox.redis import AsyncRedisInbox, RedisInbox
from tests.inbox.contract import LEASE, InboxContract, make_entry
from tests.inbox.test_postgres import OnLoopThread
from tests.stores.contract import FrozenClock

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

pytest_plugins = ["tests.redis_server"]


def fresh_prefix() -> str:
    return f"{{inbox-test-{uuid.uuid4().hex[:12]}}}:"


class _Server:
    @pytest.fixture(autouse=True)
    def _server(self, redis_server: RedisServer) -> None:
        self.url = redis_server.url


class TestRedisInbox(_Server, InboxContract):
    def make_inbox(self, clock: FrozenClock) -> Inbox:
        return RedisInbox.from_url(self.url, prefix=fresh_prefix(), clock=clock)


class TestAsyncRedisInbox(_Server, InboxContract):
    def make_inbox(self, clock: FrozenClock) -> Inbox:
        inbox = AsyncRedisInbox.from_url(self.url, prefix=fresh_prefix(), clock=clock)
        return OnLoopThread(inbox)  # type: ignore[arg-type,return-value]


def test_open_inbox_reads_a_redis_url_and_keeps_apart_from_the_store(redis_server: RedisServer) -> None:
    inbox = open_inbox(redis_server.url)
    assert isinstance(inbox, RedisInbox)
    assert inbox.prefix == "{kreuzberg:inbox}:"
    assert isinstance(open_inbox(redis_server.url, asynchronous=True), AsyncRedisInbox)
    prefixed = open_inbox(f"{redis_server.url}?key_prefix=app:")
    assert isinstance(prefixed, RedisInbox)
    assert prefixed.prefix == "app:"
    inbox.close()
    prefixed.close()


def test_every_key_shares_one_hash_tag(redis_server: RedisServer) -> None:
    prefix = fresh_prefix()
    inbox = RedisInbox.from_url(redis_server.url, prefix=prefix)
    entry = make_entry()
    inbox.enqueue(entry)
    claim = inbox.claim(entry.key, LEASE)
    assert claim is not None
    inbox.complete(claim.key, claim.token)
    client = redis.Redis.from_url(redis_server.url)
    keys = client.keys(prefix.replace("{", "\\{").replace("}", "\\}") + "*")
    assert keys
    assert all(key.decode().startswith(prefix) for key in keys)
    client.close()
    inbox.close()


@pytest.mark.slow
def test_a_stopped_server_is_unavailable_and_a_restarted_one_serves_again(own_redis_server: RedisServer) -> None:
    inbox = RedisInbox.from_url(own_redis_server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    inbox.enqueue(make_entry())
    own_redis_server.stop()
    with pytest.raises(StoreUnavailable) as caught:
        inbox.enqueue(make_entry())
    assert str(own_redis_server.port) not in caught.value.detail
    own_redis_server.start()
    assert inbox.enqueue(make_entry()) is True
    assert inbox.counts()[DeliveryState.QUEUED] == 1  # this test server keeps nothing across restarts
    inbox.close()


def test_the_async_inbox_raises_store_unavailable_when_the_server_is_gone() -> None:
    async def scenario() -> None:
        inbox = AsyncRedisInbox.from_url("redis://127.0.0.1:1/0", socket_timeout=0.3, socket_connect_timeout=0.3)
        with pytest.raises(StoreUnavailable):
            await inbox.enqueue(make_entry())
        await inbox.aclose()

    asyncio.run(scenario())


@pytest.mark.slow
def test_an_inbox_on_a_redis_that_may_evict_its_deliveries_is_refused(evicting_redis: str) -> None:
    # Under allkeys-lru an acknowledged delivery can vanish: the docs require noeviction.
    with pytest.raises(ConfigurationError, match="noeviction"):
        RedisInbox.from_url(evicting_redis, prefix=fresh_prefix())
    with pytest.raises(ConfigurationError, match="noeviction"):
        open_inbox(evicting_redis)

    async def first_write() -> None:
        inbox = AsyncRedisInbox.from_url(evicting_redis, prefix=fresh_prefix())
        try:
            await inbox.enqueue(make_entry())
        finally:
            await inbox.aclose()

    with pytest.raises(ConfigurationError, match="noeviction"):
        asyncio.run(first_write())
    assert redis.Redis.from_url(evicting_redis).dbsize() == 0  # nothing was acknowledged


@pytest.mark.slow
def test_an_inbox_given_an_evicting_client_refuses_every_write_until_the_policy_is_fixed(evicting_redis: str) -> None:
    client = redis.Redis.from_url(evicting_redis)
    inbox = RedisInbox(client, prefix=fresh_prefix())
    for _ in range(2):  # refused again: the first refusal does not let the next write through
        with pytest.raises(ConfigurationError, match="allkeys-lru"):
            inbox.enqueue(make_entry())
    assert client.dbsize() == 0
    client.config_set("maxmemory-policy", "noeviction")  # the operator fixes it while the app runs
    assert inbox.enqueue(make_entry()) is True
    client.close()
