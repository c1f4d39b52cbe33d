"""RedisStore and AsyncRedisStore: the store contract against a real redis-server, plus what is Redis's own."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import redis
import redis.asyncio
import redis.cluster

from kreuzberg_webhooks import AsyncReplayStore, Claim, ClaimState, ConfigurationError, ReplayStore, StoreUnavailable
from kreuzberg_webhooks.stores import open_store
from kreuzberg_webhooks.stores.redis import DEFAULT_PREFIX, DEFAULT_SOCKET_TIMEOUT, AsyncRedisStore, RedisStore

from .contract import FrozenClock, StoreContract, new_key

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

pytest_plugins = ["tests.redis_server"]

T = TypeVar("T")


class _RealTime:
    """Redis keeps TTLs on the server: the contract's time passes for real, scaled down."""

    LEASE, RETENTION, TICK = 0.4, 0.8, 0.15

    @pytest.fixture(autouse=True)
    def _server(self, redis_server: RedisServer) -> None:
        self.url = redis_server.url

    def advance(self, clock: FrozenClock, seconds: float) -> None:
        time.sleep(seconds)  # waiting for a server-side TTL to run out, not for a race


class TestRedisStore(_RealTime, StoreContract):
    def make_store(self, clock: FrozenClock) -> ReplayStore:
        return RedisStore.from_url(self.url)

    def make_async_store(self, clock: FrozenClock) -> ReplayStore | AsyncReplayStore:
        return AsyncRedisStore.from_url(self.url)


class LoopThread:
    """Runs an :class:`AsyncRedisStore` on one event loop in a thread and exposes it
    synchronously, so that the whole contract (thread races included) drives the async store."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.store = self.run(self._open(url))

    @staticmethod
    async def _open(url: str) -> AsyncRedisStore:
        return AsyncRedisStore.from_url(url)

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


class TestAsyncRedisStore(_RealTime, StoreContract):
    def make_store(self, clock: FrozenClock) -> ReplayStore:
        return LoopThread(self.url)

    def make_async_store(self, clock: FrozenClock) -> ReplayStore | AsyncReplayStore:
        return AsyncRedisStore.from_url(self.url)


# -- what the store writes ----------------------------------------------------


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_a_claim_is_an_inflight_key_that_expires_with_the_lease(redis_url: str, client: redis.Redis) -> None:
    store, key = RedisStore.from_url(redis_url), new_key()
    claim = store.claim(key, 60)
    assert claim.token is not None
    assert client.get(DEFAULT_PREFIX + key) == f"inflight:{claim.token}".encode()
    assert 59_000 < client.pttl(DEFAULT_PREFIX + key) <= 60_000
    store.close()


def test_completion_writes_done_for_the_retention(redis_url: str, client: redis.Redis) -> None:
    store, key = RedisStore.from_url(redis_url), new_key()
    token = store.claim(key, 60).token
    assert token is not None
    store.complete(key, token, 86_700)
    assert client.get(DEFAULT_PREFIX + key) == b"done"
    assert 86_699_000 < client.pttl(DEFAULT_PREFIX + key) <= 86_700_000
    store.close()


def test_completion_after_the_lease_expired_still_marks_the_event_done(redis_url: str, client: redis.Redis) -> None:
    # The handler outlived its lease and nobody took the key over: the work is done,
    # and only an unconditional write keeps the next retry from redoing it.
    store, key = RedisStore.from_url(redis_url), new_key()
    token = store.claim(key, 0.05).token
    assert token is not None
    deadline = time.monotonic() + 5
    while client.exists(DEFAULT_PREFIX + key):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    store.complete(key, token, 600)
    assert store.claim(key, 60).state is ClaimState.DONE
    store.close()


def test_in_flight_retry_after_comes_from_the_lease_left(redis_url: str) -> None:
    store, key = RedisStore.from_url(redis_url), new_key()
    store.claim(key, 120)
    claim = store.claim(key, 120)
    assert claim.state is ClaimState.IN_FLIGHT
    assert 119 < claim.retry_after <= 120
    store.close()


def test_a_claim_sent_twice_by_the_client_retry_still_belongs_to_its_sender(redis_url: str) -> None:
    # redis-py retries a command after a time-out; if the first attempt reached the
    # server, the retried claim meets its own lease and must not see it as another's.
    store, key = RedisStore.from_url(redis_url), new_key()
    args = ["inflight:same-token", 60_000]
    first = store._claim(keys=[store.key(key)], args=args)
    again = store._claim(keys=[store.key(key)], args=args)
    assert [int(x) for x in first] == [int(x) for x in again] == [0, 0]
    assert store.claim(key, 60).state is ClaimState.IN_FLIGHT
    store.close()


def test_keys_live_under_the_configured_prefix(redis_url: str, client: redis.Redis) -> None:
    prefix = f"app-{uuid.uuid4().hex}:"
    store, key = RedisStore.from_url(redis_url, prefix=prefix), new_key()
    store.claim(key, 60)
    assert client.keys(prefix + "*") == [(prefix + key).encode()]
    store.close()


def test_the_prefix_can_come_from_the_url(redis_url: str, client: redis.Redis) -> None:
    prefix = f"env-{uuid.uuid4().hex}:"
    store = open_store(f"{redis_url}?key_prefix={prefix}&socket_timeout=1.5")
    assert isinstance(store, RedisStore)
    assert store.prefix == prefix
    assert store.client.connection_pool.connection_kwargs["socket_timeout"] == 1.5
    store.claim("event:x", 60)
    assert client.exists(prefix + "event:x") == 1
    store.close()


def test_two_prefixes_on_one_server_do_not_share_events(redis_url: str) -> None:
    one = RedisStore.from_url(redis_url, prefix=f"one-{uuid.uuid4().hex}:")
    two = RedisStore.from_url(redis_url, prefix=f"two-{uuid.uuid4().hex}:")
    assert one.claim("event:same", 60).state is ClaimState.NEW
    assert two.claim("event:same", 60).state is ClaimState.NEW
    one.close()
    two.close()


def test_open_store_builds_the_sync_or_the_async_store(redis_url: str) -> None:
    sync_store = open_store(redis_url)
    async_store = open_store(redis_url, asynchronous=True)
    assert isinstance(sync_store, RedisStore)
    assert isinstance(async_store, AsyncRedisStore)
    sync_store.close()
    asyncio.run(async_store.aclose())


def test_from_url_sets_short_socket_time_outs() -> None:
    # Far under the sender's 30 s: an unreachable Redis is a quick 503, not a hung request.
    for store in (RedisStore.from_url("redis://127.0.0.1:1/0"), AsyncRedisStore.from_url("redis://127.0.0.1:1/0")):
        kwargs = store.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == DEFAULT_SOCKET_TIMEOUT == 2.0
        assert kwargs["retry"].get_retries() == 1


def test_explicit_options_win_over_the_defaults() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0", socket_timeout=0.25)
    assert store.client.connection_pool.connection_kwargs["socket_timeout"] == 0.25


def test_an_existing_client_is_used_and_left_open(redis_url: str, client: redis.Redis) -> None:
    store = RedisStore(client, prefix="shared-pool:")
    key = new_key()
    assert store.claim(key, 60).state is ClaimState.NEW
    store.close()
    assert client.ping() is True
    assert client.exists("shared-pool:" + key) == 1


def test_an_existing_async_client_is_used_and_left_open(redis_url: str) -> None:
    async def scenario() -> tuple[ClaimState, bool]:
        client = redis.asyncio.Redis.from_url(redis_url)
        store = AsyncRedisStore(client)
        state = (await store.claim(new_key(), 60)).state
        await store.aclose()
        alive = bool(await client.ping())
        await client.aclose()
        return state, alive

    assert asyncio.run(scenario()) == (ClaimState.NEW, True)


def test_scripts_are_loaded_again_when_the_server_forgot_them(redis_url: str, client: redis.Redis) -> None:
    store, key = RedisStore.from_url(redis_url), new_key()
    assert store.claim(key, 60).state is ClaimState.NEW
    client.script_flush()
    assert store.claim(key, 60).state is ClaimState.IN_FLIGHT
    store.close()


@pytest.mark.parametrize("lease", [0, -1, float("inf"), float("nan")], ids=["zero", "negative", "inf", "nan"])
def test_a_lease_that_is_not_a_positive_time_is_refused(redis_url: str, lease: float) -> None:
    store = RedisStore.from_url(redis_url)
    with pytest.raises(Exception, match="lease must be"):
        store.claim(new_key(), lease)
    store.close()


def test_without_redis_py_the_import_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from kreuzberg_webhooks.stores import open_store\n"
        "try:\n    open_store('redis://127.0.0.1:6379/0')\n"
        "except ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert 'pip install "kreuzberg-webhooks[redis]"' in result.stdout


# -- Redis down ---------------------------------------------------------------


def test_an_unreachable_server_raises_store_unavailable_quickly(own_redis_server: RedisServer) -> None:
    store = RedisStore.from_url(own_redis_server.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    own_redis_server.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        store.claim(new_key(), 60)
    assert time.monotonic() - started < 2
    assert str(own_redis_server.port) not in caught.value.detail  # never tell the sender where Redis lives
    store.close()


def test_a_hung_server_raises_store_unavailable_after_the_time_out(own_redis_server: RedisServer) -> None:
    store = RedisStore.from_url(own_redis_server.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    assert store.claim(new_key(), 60).state is ClaimState.NEW
    own_redis_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.claim(new_key(), 60)
        assert time.monotonic() - started < 3
    finally:
        own_redis_server.resume()
    assert store.claim(new_key(), 60).state is ClaimState.NEW
    store.close()


def test_the_async_store_raises_store_unavailable_when_the_server_is_gone(own_redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = AsyncRedisStore.from_url(own_redis_server.url, socket_timeout=0.3, socket_connect_timeout=0.3)
        key = new_key()
        token = (await store.claim(key, 60)).token
        assert token is not None
        own_redis_server.stop()
        for operation in (store.claim(new_key(), 60), store.complete(key, token, 60), store.release(key, token)):
            with pytest.raises(StoreUnavailable):
                await operation
        own_redis_server.start()
        assert (await store.claim(key, 60)).state is ClaimState.NEW  # the restarted server forgot everything
        await store.aclose()

    asyncio.run(scenario())


# -- a Redis that may evict keys ------------------------------------------------


def test_a_store_on_a_redis_that_may_evict_processed_events_is_refused_at_start_up(evicting_redis: str) -> None:
    # An evicted "done" key would let a replay run the handlers again: noeviction is required.
    with pytest.raises(ConfigurationError, match="noeviction") as caught:
        RedisStore.from_url(evicting_redis)
    assert "allkeys-lru" in str(caught.value)
    with pytest.raises(ConfigurationError, match="noeviction"):
        open_store(evicting_redis)


@pytest.mark.parametrize("policy", ["volatile-lru", "allkeys-lfu", "volatile-ttl"])
def test_a_store_given_an_evicting_client_refuses_every_claim_until_the_policy_is_fixed(
    evicting_redis: str, policy: str
) -> None:
    # Every key the store writes has a TTL, so the volatile-* policies may evict them too.
    client = redis.Redis.from_url(evicting_redis)
    client.config_set("maxmemory-policy", policy)
    store, key = RedisStore(client, prefix="evicting:"), new_key()
    for _ in range(2):  # refused again: the first refusal does not let the next claim through
        with pytest.raises(ConfigurationError, match=policy):
            store.claim(key, 60)
    assert client.dbsize() == 0  # nothing was claimed
    client.config_set("maxmemory-policy", "noeviction")  # the operator fixes it while the app runs
    assert store.claim(key, 60).state is ClaimState.NEW
    client.close()


def test_the_async_store_refuses_an_evicting_redis_at_its_first_claim(evicting_redis: str) -> None:
    async def scenario() -> None:
        store = AsyncRedisStore.from_url(evicting_redis)
        try:
            with pytest.raises(ConfigurationError, match="noeviction"):
                await store.claim(new_key(), 60)
        finally:
            await store.aclose()

    asyncio.run(scenario())
    assert redis.Redis.from_url(evicting_redis).dbsize() == 0


def test_a_receiver_on_an_evicting_redis_answers_503_and_keeps_nothing(evicting_redis: str) -> None:
    # The refusal reaches the sender as a retry-later, never as a processed event.
    from kreuzberg_webhooks import Receiver
    from kreuzberg_webhooks.testing import signed_delivery

    client = redis.Redis.from_url(evicting_redis)
    receiver = Receiver("whsec_" + "e" * 32, store=RedisStore(client))
    ran: list[object] = []
    receiver.on()(ran.append)
    body, headers = signed_delivery("whsec_" + "e" * 32)
    outcome = receiver.handle(body, headers)
    assert (outcome.status_code, ran, client.dbsize()) == (503, [], 0)
    client.close()


def test_a_store_on_a_redis_that_cannot_be_reached_yet_is_checked_at_its_first_claim(
    own_redis_server: RedisServer,
) -> None:
    own_redis_server.stop()
    store = RedisStore.from_url(own_redis_server.url, socket_timeout=0.3, socket_connect_timeout=0.3)  # no refusal
    own_redis_server.start()
    redis.Redis.from_url(own_redis_server.url).config_set("maxmemory-policy", "allkeys-random")
    store._policy._not_before = 0.0  # the re-check is due (it waits RECHECK_POLICY seconds otherwise)
    with pytest.raises(ConfigurationError, match="allkeys-random"):
        store.claim(new_key(), 60)
    store.close()


# -- Redis Cluster --------------------------------------------------------------


def test_every_operation_works_on_redis_cluster(redis_cluster_node: RedisServer) -> None:
    cluster = redis.cluster.RedisCluster(host="127.0.0.1", port=redis_cluster_node.port)
    store = RedisStore(cluster)
    keys = [new_key() for _ in range(20)]  # spread over many hash slots
    for key in keys:
        token = store.claim(key, 60).token
        assert token is not None
        assert store.claim(key, 60).state is ClaimState.IN_FLIGHT
        store.release(key, token)
        token = store.claim(key, 60).token
        assert token is not None
        store.complete(key, token, 600)
        assert store.claim(key, 60).state is ClaimState.DONE
    cluster.close()
