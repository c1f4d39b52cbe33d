"""Inboxes on Redis (or Valkey), sync and async: deliveries shared by every machine.

Keys, all under one prefix whose ``{…}`` hash tag keeps them in one cluster slot:

* ``<prefix>d:<key>`` — a hash per delivery (its entry and its state);
* ``<prefix>due`` — a sorted set of queued and running deliveries, scored by
  when each may be claimed (a running one: when its lease ends);
* ``<prefix>s:<state>`` — a sorted set per state, scored by arrival, for
  listing and counting;
* ``<prefix>e:<event id>`` — the key of the delivery with that event id.

Every operation is one Lua script, so it is atomic against every other
worker. A delivery is acknowledged once Redis has accepted the write: it is as
durable as Redis's persistence — run it with ``appendonly yes`` (and
``appendfsync always`` if a power cut must lose nothing) and
``maxmemory-policy noeviction``: an inbox on a Redis that may evict keys
(``allkeys-lru`` and the like) is refused with a ConfigurationError.

Needs the ``[redis]`` extra: ``pip install "kreuzberg-webhooks[redis]"``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

try:
    import redis
    import redis.asyncio
except ImportError as error:  # redis-py is the optional [redis] extra
    raise ImportError('the Redis inbox needs redis-py: pip install "kreuzberg-webhooks[redis]"') from error

from ..exceptions import ConfigurationError, StoreUnavailable
from ..stores.redis import EvictionCheck, _client_options, _split_url, _text
from ._rows import COLUMN_NAMES, check_lease, check_limit, check_purge, headers_to_text, record_from_row, short_error
from .base import DeliveryState, InboxClaim, InboxEntry, InboxRecord

__all__ = ["DEFAULT_PREFIX", "AsyncRedisInbox", "RedisInbox"]

logger = logging.getLogger("kreuzberg_webhooks")

#: Every key the inbox writes starts with this; the braces are a cluster hash tag.
DEFAULT_PREFIX = "{kreuzberg:inbox}:"

#: A delivery's hash: the SQL inboxes' columns after the key (the hash's name), and the lease's token.
_FIELDS = (*COLUMN_NAMES[1:], "lease_token")
_STATES = [state.value for state in DeliveryState]

# Helpers every script starts with. KEYS[1] is the prefix's "due" key; the prefix is ARGV[1].
_LIB = """
local P = ARGV[1]
local FIELDS = {'scope','event_id','event_type','job_id','body','headers','received_at','state',
                'attempts','next_attempt_at','last_error','updated_at','lease_token'}
-- A listing reads every field but the body ('-' is no field: HMGET answers nil for it).
local LISTED = {'scope','event_id','event_type','job_id','-','headers','received_at','state',
                'attempts','next_attempt_at','last_error','updated_at','lease_token'}
local function row(key, fields)
    local values = redis.call('HMGET', P .. 'd:' .. key, unpack(fields or FIELDS))
    table.insert(values, 1, key)
    return values
end
local function move(key, from, to, received)
    if from ~= to then
        redis.call('ZREM', P .. 's:' .. from, key)
        redis.call('ZADD', P .. 's:' .. to, received, key)
    end
end
local function take(key, now, lease, token)
    local d = P .. 'd:' .. key
    local state = redis.call('HGET', d, 'state')
    redis.call('HSET', d, 'state', 'running', 'next_attempt_at', now + lease, 'updated_at', now, 'lease_token', token)
    redis.call('HINCRBY', d, 'attempts', 1)
    redis.call('ZADD', P .. 'due', now + lease, key)
    move(key, state, 'running', redis.call('HGET', d, 'received_at'))
    return row(key)
end
"""

# ARGV: prefix, key, now, then the fields in _FIELDS order up to headers, received_at, event_id flag
_ENQUEUE = (
    _LIB
    + """
local key, now = ARGV[2], tonumber(ARGV[3])
local d = P .. 'd:' .. key
if redis.call('EXISTS', d) == 1 then return 0 end
redis.call('HSET', d, 'scope', ARGV[4], 'event_type', ARGV[6], 'job_id', ARGV[7], 'body', ARGV[8],
           'headers', ARGV[9], 'received_at', ARGV[10], 'state', 'queued', 'attempts', 0,
           'next_attempt_at', now, 'updated_at', now)
if ARGV[5] ~= '' then
    redis.call('HSET', d, 'event_id', ARGV[5])
    redis.call('SET', P .. 'e:' .. ARGV[5], key)
end
redis.call('ZADD', P .. 'due', now, key)
redis.call('ZADD', P .. 's:queued', ARGV[10], key)
return 1
"""
)

# ARGV: prefix, now, lease, limit, token base
_CLAIM_DUE = (
    _LIB
    + """
local now, lease, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local keys = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', now, 'LIMIT', 0, limit)
local out = {}
for i, key in ipairs(keys) do
    local due = redis.call('ZSCORE', P .. 'due', key)
    local claimed = take(key, now, lease, ARGV[5] .. ':' .. i)
    table.insert(claimed, due)
    table.insert(out, claimed)
end
return out
"""
)

# ARGV: prefix, key, now, lease, token
_CLAIM = (
    _LIB
    + """
local key, now, lease = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local d = P .. 'd:' .. key
local state = redis.call('HGET', d, 'state')
if state == 'queued' or (state == 'running' and tonumber(redis.call('HGET', d, 'next_attempt_at')) <= now) then
    return take(key, now, lease, ARGV[5])
end
return false
"""
)

# ARGV: prefix, key, token, now, new state, next attempt ('' = none), error ('' = keep), uncount (0/1)
_SETTLE = (
    _LIB
    + """
local key, token, now, to = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local d = P .. 'd:' .. key
if redis.call('HGET', d, 'state') ~= 'running' or redis.call('HGET', d, 'lease_token') ~= token then
    return 0
end
redis.call('HSET', d, 'state', to, 'updated_at', now)
redis.call('HDEL', d, 'lease_token')
if ARGV[7] ~= '' then redis.call('HSET', d, 'last_error', ARGV[7]) end
if to == 'done' then redis.call('HDEL', d, 'last_error') end
if ARGV[8] == '1' and tonumber(redis.call('HGET', d, 'attempts')) > 0 then redis.call('HINCRBY', d, 'attempts', -1) end
if to == 'queued' then
    redis.call('HSET', d, 'next_attempt_at', ARGV[6])
    redis.call('ZADD', P .. 'due', ARGV[6], key)
else
    redis.call('ZREM', P .. 'due', key)
end
move(key, 'running', to, redis.call('HGET', d, 'received_at'))
return 1
"""
)

# ARGV: prefix, key, token, lease end
_RENEW = (
    _LIB
    + """
local key, token, ends = ARGV[2], ARGV[3], ARGV[4]
local d = P .. 'd:' .. key
if redis.call('HGET', d, 'state') ~= 'running' or redis.call('HGET', d, 'lease_token') ~= token then
    return 0
end
redis.call('HSET', d, 'next_attempt_at', ends)
redis.call('ZADD', P .. 'due', ends, key)
return 1
"""
)

# ARGV: prefix, key or event id
_GET = (
    _LIB
    + """
local key = ARGV[2]
if redis.call('EXISTS', P .. 'd:' .. key) == 0 then
    key = redis.call('GET', P .. 'e:' .. ARGV[2])
    if not key or redis.call('EXISTS', P .. 'd:' .. key) == 0 then return false end
end
return row(key)
"""
)

# ARGV: prefix, state ('' = all), limit
_LIST = (
    _LIB
    + """
local limit = tonumber(ARGV[3])
local states = {'queued', 'running', 'done', 'dead'}
if ARGV[2] ~= '' then states = {ARGV[2]} end
local out = {}
for _, state in ipairs(states) do
    for _, key in ipairs(redis.call('ZREVRANGE', P .. 's:' .. state, 0, limit - 1)) do
        table.insert(out, row(key, LISTED))
    end
end
return out
"""
)

_COUNTS = (
    _LIB
    + """
return {redis.call('ZCARD', P .. 's:queued'), redis.call('ZCARD', P .. 's:running'),
        redis.call('ZCARD', P .. 's:done'), redis.call('ZCARD', P .. 's:dead')}
"""
)

# ARGV: prefix, now, state ('' = by keys), keys or event ids...
_RETRY = (
    _LIB
    + """
local now = tonumber(ARGV[2])
local targets = {}
if ARGV[3] ~= '' then
    targets = redis.call('ZRANGE', P .. 's:' .. ARGV[3], 0, -1)
else
    for i = 4, #ARGV do
        local key = ARGV[i]
        if redis.call('EXISTS', P .. 'd:' .. key) == 0 then key = redis.call('GET', P .. 'e:' .. ARGV[i]) end
        if key then table.insert(targets, key) end
    end
end
local changed, seen = 0, {}
for _, key in ipairs(targets) do
    local d = P .. 'd:' .. key
    local state = redis.call('HGET', d, 'state')
    if state and state ~= 'running' and not seen[key] then
        seen[key] = true
        redis.call('HSET', d, 'state', 'queued', 'attempts', 0, 'next_attempt_at', now, 'updated_at', now)
        redis.call('HDEL', d, 'lease_token')
        redis.call('ZADD', P .. 'due', now, key)
        move(key, state, 'queued', redis.call('HGET', d, 'received_at'))
        changed = changed + 1
    end
end
return changed
"""
)

# ARGV: prefix, state, cutoff
_PURGE = (
    _LIB
    + """
local state, cutoff = ARGV[2], tonumber(ARGV[3])
local deleted = 0
for _, key in ipairs(redis.call('ZRANGE', P .. 's:' .. state, 0, -1)) do
    local d = P .. 'd:' .. key
    if tonumber(redis.call('HGET', d, 'updated_at')) <= cutoff then
        local event_id = redis.call('HGET', d, 'event_id')
        if event_id and redis.call('GET', P .. 'e:' .. event_id) == key then
            redis.call('DEL', P .. 'e:' .. event_id)
        end
        redis.call('DEL', d)
        redis.call('ZREM', P .. 's:' .. state, key)
        redis.call('ZREM', P .. 'due', key)
        deleted = deleted + 1
    end
end
return deleted
"""
)


def _row(reply: Sequence[Any]) -> tuple[Any, ...]:
    """A script's ``row(key)`` reply in :data:`~._rows.COLUMNS` order, then the lease token."""
    key = _text(reply[0])
    values = dict(zip(_FIELDS, reply[1:], strict=False))
    return (
        key,
        _text(values["scope"]) or "",
        _text(values["event_id"]),
        _text(values["event_type"]),
        _text(values["job_id"]),
        values["body"] or b"",
        _text(values["headers"]) or "[]",
        float(values["received_at"]),
        _text(values["state"]),
        int(values["attempts"]),
        float(values["next_attempt_at"]),
        _text(values["last_error"]),
        float(values["updated_at"]),
        _text(values["lease_token"]),
    )


def _claims(reply: Sequence[Any]) -> list[InboxClaim]:
    rows = [(_row(item[:-1]), float(item[-1])) for item in reply]
    rows.sort(key=lambda pair: (pair[1], pair[0][0]))
    return [InboxClaim(record_from_row(row), row[13]) for row, _ in rows]


def _records(reply: Sequence[Any], limit: int) -> list[InboxRecord]:
    records = [record_from_row(_row(item)) for item in reply]
    records.sort(key=lambda r: (-r.entry.received_at, r.key))
    return records[:limit]


def _unavailable(error: Exception) -> NoReturn:
    logger.warning("Redis inbox: %s: %s", type(error).__name__, error)
    raise StoreUnavailable("The Redis inbox is unavailable; retry later.") from error


def _retry_args(keys: Sequence[str], state: DeliveryState | None) -> list[Any] | None:
    if state is not None:
        if DeliveryState(state) is DeliveryState.RUNNING:
            return None
        return [DeliveryState(state).value]
    if isinstance(keys, str):
        raise TypeError("keys must be a sequence of keys, not one string")
    return ["", *keys] if keys else None


def _purge_args(state: DeliveryState, older_than: float, now: float) -> list[Any]:
    state, older_than = check_purge(state, older_than)
    return [state.value, now - older_than]


def _enqueue_args(entry: InboxEntry, now: float) -> list[Any]:
    return [
        entry.key,
        now,
        entry.scope,
        entry.event_id or "",
        entry.event_type,
        entry.job_id,
        entry.body,
        headers_to_text(entry.headers),
        repr(float(entry.received_at)),
    ]


class _Scripts:
    def __init__(self, client: Any, prefix: str, clock: Callable[[], float]) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError("prefix must be a non-empty string")
        self.client = client
        self.prefix = prefix
        self._clock = clock
        self._owns_client = False
        # maxmemory-policy is checked on the first round trip that reaches Redis (and by
        # from_url at once): an inbox that Redis may evict from is refused.
        self._policy = EvictionCheck("Redis inbox", "acknowledged deliveries could vanish")
        self.scripts = {
            name: client.register_script(source)
            for name, source in (
                ("enqueue", _ENQUEUE),
                ("claim_due", _CLAIM_DUE),
                ("claim", _CLAIM),
                ("settle", _SETTLE),
                ("renew", _RENEW),
                ("get", _GET),
                ("list", _LIST),
                ("counts", _COUNTS),
                ("retry", _RETRY),
                ("purge", _PURGE),
            )
        }

    def _keys(self) -> list[str]:
        return [self.prefix + "due"]  # every key shares the hash tag: one slot

    @staticmethod
    def _settle_args(
        key: str, token: str, now: float, to: str, retry_at: float | None, error: str, uncount: bool
    ) -> list[Any]:
        return [key, token, now, to, "" if retry_at is None else repr(float(retry_at)), error, "1" if uncount else "0"]


class RedisInbox(_Scripts):
    """Keeps deliveries in Redis until a worker on any machine has processed them.

    :param client: a ``redis.Redis`` client (:meth:`from_url` makes one with short time-outs).
    :param prefix: prepended to every key (default ``{kreuzberg:inbox}:``).
    :param clock: wall-clock unix time; every machine's should agree.
    """

    def __init__(
        self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, prefix, clock)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str | None = None, clock: Callable[[], float] = time.time, **options: Any
    ) -> RedisInbox:
        """An inbox with its own client for *url*; the prefix may come from ``?key_prefix=``."""
        from redis.retry import Retry

        url, prefix = _split_url(url, prefix)
        if prefix == "kreuzberg:webhook:":  # the store's default: give the inbox its own
            prefix = DEFAULT_PREFIX
        inbox = cls(redis.Redis.from_url(url, **_client_options(options, Retry)), prefix=prefix, clock=clock)
        inbox._owns_client = True
        inbox._policy.ask(inbox.client)  # refused at start-up, not per delivery
        return inbox

    def _run(self, name: str, *args: Any) -> Any:
        if self._policy.due():
            self._policy.ask(self.client)
        try:
            return self.scripts[name](keys=self._keys(), args=[self.prefix, *args])
        except (redis.RedisError, OSError) as error:
            _unavailable(error)

    def enqueue(self, entry: InboxEntry) -> bool:
        """Write *entry* as queued; ``False`` if its key is already in the inbox (any state)."""
        return int(self._run("enqueue", *_enqueue_args(entry, self._clock()))) == 1

    def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]:
        """Lease up to *limit* due deliveries, oldest due first."""
        lease, limit = check_lease(lease), check_limit(limit)
        return _claims(self._run("claim_due", self._clock(), lease, limit, secrets.token_hex(12)))

    def claim(self, key: str, lease: float) -> InboxClaim | None:
        """Lease the delivery *key* unless it is done, dead or leased."""
        reply = self._run("claim", key, self._clock(), check_lease(lease), secrets.token_hex(16))
        if not reply:
            return None
        row = _row(reply)
        return InboxClaim(record_from_row(row), row[13])

    def complete(self, key: str, token: str) -> bool:
        """Mark the claimed delivery done."""
        return int(self._run("settle", *self._settle_args(key, token, self._clock(), "done", None, "", False))) == 1

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Extend the claim's lease to *lease* seconds from now (the worker's heartbeat)."""
        until = repr(self._clock() + check_lease(lease))
        return int(self._run("renew", key, token, until)) == 1

    def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt: queued again from *retry_at*, or dead."""
        to = "dead" if retry_at is None else "queued"
        args = self._settle_args(key, token, self._clock(), to, retry_at, short_error(error) or "-", False)
        return int(self._run("settle", *args)) == 1

    def release(self, key: str, token: str, retry_at: float) -> bool:
        """Give a claim back without counting its attempt."""
        args = self._settle_args(key, token, self._clock(), "queued", retry_at, "", True)
        return int(self._run("settle", *args)) == 1

    def get(self, key_or_event_id: str) -> InboxRecord | None:
        """The delivery with this key, else the one with this event id."""
        reply = self._run("get", key_or_event_id)
        return record_from_row(_row(reply)) if reply else None

    def list(self, state: DeliveryState | None = None, limit: int = 100) -> list[InboxRecord]:
        """Up to *limit* deliveries (in *state*), the latest received first, without their bodies."""
        limit = check_limit(limit)
        return _records(self._run("list", "" if state is None else DeliveryState(state).value, limit), limit)

    def counts(self) -> dict[DeliveryState, int]:
        """How many deliveries are in each state."""
        return dict(zip(DeliveryState, (int(n) for n in self._run("counts")), strict=True))

    def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int:
        """Queue deliveries again now with a fresh attempt count."""
        args = _retry_args(keys, state)
        return 0 if args is None else int(self._run("retry", self._clock(), *args))

    def purge(self, state: DeliveryState, older_than: float = 0.0) -> int:
        """Delete the deliveries in *state* unchanged for *older_than* seconds."""
        return int(self._run("purge", *_purge_args(state, older_than, self._clock())))

    def close(self) -> None:
        """Close the client's connections if this inbox created the client."""
        if self._owns_client:
            self.client.close()


class AsyncRedisInbox(_Scripts):
    """The :class:`RedisInbox` on ``redis.asyncio``, for async receivers and workers."""

    def __init__(
        self, client: redis.asyncio.Redis, *, prefix: str = DEFAULT_PREFIX, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, prefix, clock)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str | None = None, clock: Callable[[], float] = time.time, **options: Any
    ) -> AsyncRedisInbox:
        """An inbox with its own client for *url*; see :meth:`RedisInbox.from_url`."""
        from redis.asyncio.retry import Retry

        url, prefix = _split_url(url, prefix)
        if prefix == "kreuzberg:webhook:":
            prefix = DEFAULT_PREFIX
        client = redis.asyncio.Redis.from_url(url, **_client_options(options, Retry))
        inbox = cls(client, prefix=prefix, clock=clock)
        inbox._owns_client = True
        return inbox

    async def _run(self, name: str, *args: Any) -> Any:
        if self._policy.due():
            await self._policy.ask_async(self.client)
        try:
            return await self.scripts[name](keys=self._keys(), args=[self.prefix, *args])
        except (redis.RedisError, OSError) as error:
            _unavailable(error)

    async def enqueue(self, entry: InboxEntry) -> bool:
        """Write *entry* as queued; ``False`` if its key is already in the inbox."""
        return int(await self._run("enqueue", *_enqueue_args(entry, self._clock()))) == 1

    async def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]:
        """Lease up to *limit* due deliveries, oldest due first."""
        lease, limit = check_lease(lease), check_limit(limit)
        return _claims(await self._run("claim_due", self._clock(), lease, limit, secrets.token_hex(12)))

    async def claim(self, key: str, lease: float) -> InboxClaim | None:
        """Lease the delivery *key* unless it is done, dead or leased."""
        reply = await self._run("claim", key, self._clock(), check_lease(lease), secrets.token_hex(16))
        if not reply:
            return None
        row = _row(reply)
        return InboxClaim(record_from_row(row), row[13])

    async def complete(self, key: str, token: str) -> bool:
        """Mark the claimed delivery done."""
        args = self._settle_args(key, token, self._clock(), "done", None, "", False)
        return int(await self._run("settle", *args)) == 1

    async def renew(self, key: str, token: str, lease: float) -> bool:
        """Extend the claim's lease to *lease* seconds from now (the worker's heartbeat)."""
        until = repr(self._clock() + check_lease(lease))
        return int(await self._run("renew", key, token, until)) == 1

    async def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt: queued again from *retry_at*, or dead."""
        to = "dead" if retry_at is None else "queued"
        args = self._settle_args(key, token, self._clock(), to, retry_at, short_error(error) or "-", False)
        return int(await self._run("settle", *args)) == 1

    async def release(self, key: str, token: str, retry_at: float) -> bool:
        """Give a claim back without counting its attempt."""
        args = self._settle_args(key, token, self._clock(), "queued", retry_at, "", True)
        return int(await self._run("settle", *args)) == 1

    async def get(self, key_or_event_id: str) -> InboxRecord | None:
        """The delivery with this key, else the one with this event id."""
        reply = await self._run("get", key_or_event_id)
        return record_from_row(_row(reply)) if reply else None

    async def list(self, state: DeliveryState | None = None, limit: int = 100) -> list[InboxRecord]:
        """Up to *limit* deliveries (in *state*), the latest received first, without their bodies."""
        limit = check_limit(limit)
        return _records(await self._run("list", "" if state is None else DeliveryState(state).value, limit), limit)

    async def counts(self) -> dict[DeliveryState, int]:
        """How many deliveries are in each state."""
        return dict(zip(DeliveryState, (int(n) for n in await self._run("counts")), strict=True))

    async def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int:
        """Queue deliveries again now with a fresh attempt count."""
        args = _retry_args(keys, state)
        return 0 if args is None else int(await self._run("retry", self._clock(), *args))

    async def purge(self, state: DeliveryState, older_than: float = 0.0) -> int:
        """Delete the deliveries in *state* unchanged for *older_than* seconds."""
        return int(await self._run("purge", *_purge_args(state, older_than, self._clock())))

    async def aclose(self) -> None:
        """Close the client's connections if this inbox created the client."""
        if self._owns_client:
            await self.client.aclose()
