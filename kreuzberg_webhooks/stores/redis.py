"""Replay stores on Redis (or Valkey), shared by every worker on every machine.

Each delivery key holds one short string value:

* ``inflight:<token>`` with a TTL of the lease — a request is running the
  handlers; the TTL is the lease, so Redis itself frees the key of a worker
  that died mid-handler;
* ``done`` with a TTL of the retention — the event has been processed.

Every operation is one round trip that touches one key, so the store works on
Redis Cluster (each key lives on one shard) and no operation can interleave
with another on the same key:

* claim — a Lua script (sent with ``EVALSHA``, cached on the server): free →
  ``SET … PX lease`` and ``NEW``; ``done`` → ``DONE``; leased → ``IN_FLIGHT``
  with the lease's ``PTTL`` as the ``Retry-After``;
* complete — a plain ``SET key done PX retention``;
* release — a Lua compare-and-delete on the token;
* renew — a Lua compare-and-``PEXPIRE`` on the token (a lease that ran out is
  gone with its key: its renewal answers ``False``).

Needs the ``[redis]`` extra: ``pip install "kreuzberg-webhooks[redis]"``.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlunsplit

try:
    import redis
    import redis.asyncio
    import redis.asyncio.retry
    import redis.cluster
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry
except ImportError as error:  # redis-py is the optional [redis] extra
    raise ImportError('the Redis replay store needs redis-py: pip install "kreuzberg-webhooks[redis]"') from error

from ..exceptions import ConfigurationError, StoreUnavailable
from ..protocol.durations import duration
from ._url import check_url
from .base import Claim, ClaimState

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_SOCKET_TIMEOUT",
    "PREFIX_QUERY_PARAMETER",
    "RECHECK_POLICY",
    "AsyncRedisStore",
    "EvictionCheck",
    "RedisStore",
]

logger = logging.getLogger("kreuzberg_webhooks")

#: Every key the store writes starts with this (one Redis can serve several apps).
DEFAULT_PREFIX = "kreuzberg:webhook:"
#: Seconds to connect to, or wait for, Redis before the delivery is answered 503.
#: Far below the sender's 30 s time-out, so an unreachable Redis costs a quick
#: retry instead of a hanging request.
DEFAULT_SOCKET_TIMEOUT = 2.0
#: The URL query parameter that sets the key prefix (``redis://host/0?key_prefix=app:``).
PREFIX_QUERY_PARAMETER = "key_prefix"

_DONE = "done"
_INFLIGHT = "inflight:"
_STATES = (ClaimState.NEW, ClaimState.DONE, ClaimState.IN_FLIGHT)
_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")

# KEYS[1] the delivery key; ARGV[1] "inflight:<token>"; ARGV[2] the lease in ms.
# Returns {0, 0} NEW, {1, 0} DONE or {2, pttl} IN_FLIGHT. A value equal to
# ARGV[1] is this very claim, sent again by the client after a time-out whose
# first attempt did reach the server: it is still ours, so the retry is NEW.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if not value or value == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return {0, 0}
end
if value == 'done' then
    return {1, 0}
end
return {2, redis.call('PTTL', KEYS[1])}
"""

# KEYS[1] the delivery key; ARGV[1] "inflight:<token>". Deletes only our own
# lease: after it expired, another request may hold the key.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


# KEYS[1] the delivery key; ARGV[1] "inflight:<token>"; ARGV[2] the new lease in ms.
# Returns 1 when our lease was extended, 0 when the key is done, free or someone else's.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def _milliseconds(seconds: float, what: str) -> int:
    if not seconds > 0 or math.isinf(seconds):
        raise ConfigurationError(f"{what} must be a positive, finite number of seconds")
    return max(1, math.ceil(seconds * 1000))


def _url_timeout(value: str, name: str) -> None:
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigurationError(f"{name} in the Redis URL must be a number of seconds, got {value!r}") from None
    duration(seconds, name)


def _claim_from_reply(reply: Any) -> Claim:
    state, pttl = int(reply[0]), int(reply[1])
    return Claim(_STATES[state], retry_after=max(pttl, 0) / 1000)


def _split_url(url: str, prefix: str | None) -> tuple[str, str]:
    """Take the ``key_prefix`` query parameter out of *url* (redis-py would refuse it)."""
    parts = check_url(url, "Redis")
    query = parse_qsl(parts.query, keep_blank_values=True)
    for name, value in query:
        if name in _TIMEOUTS:
            _url_timeout(value, name)
    from_url = [value for name, value in query if name == PREFIX_QUERY_PARAMETER]
    if from_url:
        rest = [(name, value) for name, value in query if name != PREFIX_QUERY_PARAMETER]
        url = urlunsplit(parts._replace(query=urlencode(rest)))
    if prefix is None:
        prefix = from_url[-1] if from_url else DEFAULT_PREFIX
    return url, prefix


def _client_options(options: dict[str, Any], retry_class: type[Any]) -> dict[str, Any]:
    # Short time-outs and one quick retry (a pooled connection that went stale
    # when Redis restarted fails once, then reconnects), so a down Redis is
    # answered 503 within about two time-outs; redis-py's own default retries
    # ten times. URL query options and explicit keyword options win.
    # None (wait forever) is refused too: a request stuck on Redis outlives the
    # sender's 30 s time-out, and the sender's retry joins the same wait.
    for name in _TIMEOUTS:
        options[name] = duration(options.get(name, DEFAULT_SOCKET_TIMEOUT), name)
    options.setdefault("retry", retry_class(ExponentialBackoff(cap=0.5, base=0.05), 1))
    return options


def _unavailable(error: Exception) -> NoReturn:
    # The Redis error names hosts and ports: log it for the operator, but send
    # the sender only the fixed message.
    logger.warning("Redis replay store: %s: %s", type(error).__name__, error)
    raise StoreUnavailable("The Redis replay store is unavailable; retry later.") from error


#: Seconds between tries to read ``maxmemory-policy`` from a Redis that could not be reached.
RECHECK_POLICY = 30.0


class EvictionCheck:
    """Whether a Redis keeps every key it is given (``maxmemory-policy noeviction``).

    Asked once, on the first use of a store or an inbox (and by their
    ``from_url`` at once): a Redis that may evict keys under memory pressure is
    refused with a :class:`ConfigurationError` naming the fix, on every use
    until it is fixed (the operator may run ``CONFIG SET`` while the app runs).
    A Redis that cannot be reached is asked again after :data:`RECHECK_POLICY`
    seconds, not before every operation: a Redis that is down costs each 503
    one round trip, not two.

    :param owner: what keeps its keys there (``"Redis inbox"``).
    :param risk: what an eviction would do.
    """

    __slots__ = ("_not_before", "owner", "passed", "risk")

    def __init__(self, owner: str, risk: str) -> None:
        self.owner = owner
        self.risk = risk
        #: True once the Redis answered that it evicts nothing: no more checks.
        self.passed = False
        self._not_before = 0.0

    def due(self) -> bool:
        """Whether to ask the Redis now (it has not passed, and was not just found unreachable)."""
        return not self.passed and time.monotonic() >= self._not_before

    def ask(self, client: Any) -> None:
        """Ask a sync client's Redis (``INFO memory``): pass it, refuse it, or ask again later."""
        try:
            info = client.info("memory")
        except (redis.RedisError, OSError) as error:
            self.unreachable(error)
        else:
            self.judge(info)

    async def ask_async(self, client: Any) -> None:
        """The async :meth:`ask`, for a ``redis.asyncio`` client."""
        try:
            info = await client.info("memory")
        except (redis.RedisError, OSError) as error:
            self.unreachable(error)
        else:
            self.judge(info)

    def unreachable(self, error: Exception) -> None:
        """The question could not reach the Redis: ask again in a while (the operation itself will tell)."""
        self._not_before = time.monotonic() + RECHECK_POLICY
        logger.warning("%s: maxmemory-policy not checked yet: %s: %s", self.owner, type(error).__name__, error)

    def judge(self, info: Any) -> None:
        """Pass the Redis or refuse it, from its ``INFO memory`` (one node's, or a cluster's per node)."""
        if isinstance(info, dict) and "maxmemory_policy" not in info:
            policies = [_text(node.get("maxmemory_policy")) for node in info.values() if isinstance(node, dict)]
        else:
            policies = [_text(info.get("maxmemory_policy")) if isinstance(info, dict) else None]
        evicting = sorted({policy for policy in policies if policy is not None and policy != "noeviction"})
        if not evicting:
            self.passed = True
            return
        refusal = ConfigurationError(
            f"this Redis evicts keys under memory pressure (maxmemory-policy {', '.join(evicting)}): {self.risk}. "
            f"The {self.owner} needs maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, "
            "or in redis.conf), or a Redis of its own"
        )
        logger.error("%s refused: %s", self.owner, refusal)
        raise refusal


def _text(value: Any) -> str | None:
    return None if value is None else value.decode() if isinstance(value, bytes) else str(value)


class _Keys:
    """What the sync and async stores share: the key prefix, the values and the eviction check."""

    def __init__(self, prefix: str) -> None:
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a string")
        self.prefix = prefix
        self._policy = EvictionCheck(
            "Redis replay store", "a processed event's key could vanish, and a replay of it run its handlers again"
        )

    def key(self, key: str) -> str:
        """The Redis key that holds delivery *key*."""
        return self.prefix + key

    @staticmethod
    def _new_lease() -> tuple[str, str]:
        token = secrets.token_hex(16)
        return token, _INFLIGHT + token


class RedisStore(_Keys):
    """Remembers deliveries in Redis: one store for every worker on every machine.

    Build it from a URL, or hand it a client you already have so that it
    shares that client's connection pool::

        store = RedisStore.from_url("redis://localhost:6379/0")
        store = RedisStore(redis.Redis(connection_pool=pool), prefix="myapp:webhook:")

    What it guarantees: a claim, a completion, a release and a renewal are each atomic on
    the server, so across any number of processes one request at a time runs an
    event's handlers, and a processed event is answered as a duplicate for the
    whole retention. What it does not: Redis must keep the keys. It needs
    ``maxmemory-policy noeviction`` (an evicted ``done`` key would let a replay
    be processed again; a full Redis under ``noeviction`` refuses writes, which
    the receiver answers 503): a Redis with any other policy is refused with a
    :class:`ConfigurationError` by :meth:`from_url`, or by the first claim of a
    store given a client (answered 503, nothing claimed). Run it with
    persistence if a restart must not forget which events were processed.

    :param client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` client; its own
        time-out and retry settings apply (:meth:`from_url` sets short ones).
    :param prefix: prepended to every key (default ``kreuzberg:webhook:``).
    """

    def __init__(self, client: redis.Redis | redis.cluster.RedisCluster, *, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(prefix)
        self.client = client
        self._owns_client = False
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> RedisStore:
        """A store with its own client for *url* (``redis://``, ``rediss://``, ``unix://``).

        *options* go to ``redis.Redis.from_url``; socket time-outs default to
        :data:`DEFAULT_SOCKET_TIMEOUT`. The prefix may also come from the URL:
        ``redis://host:6379/0?key_prefix=myapp:``.
        """
        url, prefix = _split_url(url, prefix)
        store = cls(redis.Redis.from_url(url, **_client_options(options, Retry)), prefix=prefix)
        store._owns_client = True
        store._policy.ask(store.client)  # refused at start-up, not at the first delivery
        return store

    def claim(self, key: str, lease: float) -> Claim:
        """Take a lease on *key* unless it is done or leased (one Lua script, one round trip)."""
        lease_ms = _milliseconds(lease, "lease")
        if self._policy.due():
            self._policy.ask(self.client)
        token, value = self._new_lease()
        try:
            reply = self._claim(keys=[self.key(key)], args=[value, lease_ms])
        except (redis.RedisError, OSError) as error:
            _unavailable(error)
        claim = _claim_from_reply(reply)
        return Claim(ClaimState.NEW, token) if claim.state is ClaimState.NEW else claim

    def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds.

        Unconditional, whatever became of the lease: the handlers have run, and
        that is what the key must say from now on. Were it conditional on the
        token, a lease that expired while the handler was still running would
        leave no trace, and the next retry would run the handler again.
        """
        retention_ms = _milliseconds(retention, "retention")
        try:
            self.client.set(self.key(key), _DONE, px=retention_ms)
        except (redis.RedisError, OSError) as error:
            _unavailable(error)

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Move *key*'s claim to expire *lease* seconds from now if *token* still holds it; whether
        it does (compare-and-``PEXPIRE`` in one script). A claim whose lease ran out is gone
        (Redis deleted the key with its TTL): renewing it answers ``False``."""
        lease_ms = _milliseconds(lease, "lease")
        try:
            reply = self._renew(keys=[self.key(key)], args=[_INFLIGHT + token, lease_ms])
        except (redis.RedisError, OSError) as error:
            _unavailable(error)
        return int(reply) == 1

    def release(self, key: str, token: str) -> None:
        """Forget *key*'s claim if *token* still holds it (compare-and-delete in one script)."""
        try:
            self._release(keys=[self.key(key)], args=[_INFLIGHT + token])
        except (redis.RedisError, OSError) as error:
            _unavailable(error)

    def close(self) -> None:
        """Close the client's connections if this store created the client."""
        if self._owns_client:
            self.client.close()


class AsyncRedisStore(_Keys):
    """The :class:`RedisStore` on ``redis.asyncio``, for async receivers.

    Use it from one event loop (the server's): an asyncio Redis client's
    connections belong to the loop that opened them.

    :param client: a ``redis.asyncio.Redis`` or ``redis.asyncio.RedisCluster`` client.
    :param prefix: prepended to every key (default ``kreuzberg:webhook:``).
    """

    def __init__(
        self, client: redis.asyncio.Redis | redis.asyncio.RedisCluster, *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        super().__init__(prefix)
        self.client = client
        self._owns_client = False
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, **options: Any) -> AsyncRedisStore:
        """A store with its own client for *url*; see :meth:`RedisStore.from_url`."""
        url, prefix = _split_url(url, prefix)
        client = redis.asyncio.Redis.from_url(url, **_client_options(options, redis.asyncio.retry.Retry))
        store = cls(client, prefix=prefix)
        store._owns_client = True
        return store

    async def claim(self, key: str, lease: float) -> Claim:
        """Take a lease on *key* unless it is done or leased (one Lua script, one round trip)."""
        lease_ms = _milliseconds(lease, "lease")
        if self._policy.due():
            await self._policy.ask_async(self.client)
        token, value = self._new_lease()
        try:
            reply = await self._claim(keys=[self.key(key)], args=[value, lease_ms])
        except (redis.RedisError, OSError) as error:
            _unavailable(error)
        claim = _claim_from_reply(reply)
        return Claim(ClaimState.NEW, token) if claim.state is ClaimState.NEW else claim

    async def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds (unconditional; see :meth:`RedisStore.complete`)."""
        retention_ms = _milliseconds(retention, "retention")
        try:
            await self.client.set(self.key(key), _DONE, px=retention_ms)
        except (redis.RedisError, OSError) as error:
            _unavailable(error)

    async def renew(self, key: str, token: str, lease: float) -> bool:
        """Move *key*'s claim to expire *lease* seconds from now if *token* still holds it; whether
        it does (see :meth:`RedisStore.renew`)."""
        lease_ms = _milliseconds(lease, "lease")
        try:
            reply = await self._renew(keys=[self.key(key)], args=[_INFLIGHT + token, lease_ms])
        except (redis.RedisError, OSError) as error:
            _unavailable(error)
        return int(reply) == 1

    async def release(self, key: str, token: str) -> None:
        """Forget *key*'s claim if *token* still holds it."""
        try:
            await self._release(keys=[self.key(key)], args=[_INFLIGHT + token])
        except (redis.RedisError, OSError) as error:
            _unavailable(error)

    async def aclose(self) -> None:
        """Close the client's connections if this store created the client."""
        if self._owns_client:
            await self.client.aclose()
