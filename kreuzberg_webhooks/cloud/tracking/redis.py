"""A job tracker on Redis (or Valkey): one tracker for every worker on every machine.

Each job is a hash ``<prefix>job:<id>`` (scope, tracked_at, checks, closed);
open jobs are also members of the sorted set ``<prefix>due`` scored by their
next check. Closing a job removes it from the set and gives its hash a TTL.
Every key shares the hash tag in the default prefix, so the multi-key scripts
also run on Redis Cluster. Needs the ``[redis]`` extra.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

try:
    import redis
except ImportError as error:  # redis-py is the optional [redis] extra
    raise ImportError('the Redis job tracker needs redis-py: pip install "kreuzberg-webhooks[redis]"') from error

from ...exceptions import ConfigurationError, StoreUnavailable
from .base import TrackedJob

__all__ = ["DEFAULT_TRACKER_PREFIX", "RedisTracker"]

#: The braces are a Redis Cluster hash tag: every key of the tracker lives on one shard.
DEFAULT_TRACKER_PREFIX = "kreuzberg:webhook:{tracked}:"

# KEYS[1] the job hash, KEYS[2] the due set; ARGV job_id, scope, tracked_at, next_check, checks.
_TRACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'scope', ARGV[2], 'tracked_at', ARGV[3], 'checks', ARGV[5], 'closed', '0')
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
"""

# KEYS[1] the due set; ARGV now, limit, lease, prefix. Returns {id, scope, tracked_at, next_check, checks, ...}.
_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for i = 1, #ids, 2 do
  local id, score = ids[i], ids[i + 1]
  local fields = redis.call('HMGET', ARGV[4] .. 'job:' .. id, 'scope', 'tracked_at', 'checks')
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
  table.insert(out, id)
  table.insert(out, fields[1] or '')
  table.insert(out, fields[2] or score)
  table.insert(out, score)
  table.insert(out, fields[3] or '0')
end
return out
"""

# KEYS[1] the job hash, KEYS[2] the due set; ARGV job_id, next_check, checks.
_RESCHEDULE = """
if redis.call('HGET', KEYS[1], 'closed') ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'checks', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS[1] the job hash, KEYS[2] the due set; ARGV job_id, until (ms), until (s).
_CLOSE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'scope', '', 'tracked_at', ARGV[3], 'checks', '0')
end
redis.call('HSET', KEYS[1], 'closed', '1', 'forget_at', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisTracker:
    """Tracked jobs in Redis.

    :param client: a ``redis.Redis`` client (or build one with :meth:`from_url`).
    :param prefix: every key starts with it.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_TRACKER_PREFIX) -> None:
        if not isinstance(prefix, str):
            raise ConfigurationError("prefix must be a string")
        self.client = client
        self.prefix = prefix
        self._due_key = prefix + "due"
        self._track = client.register_script(_TRACK)
        self._due = client.register_script(_DUE)
        self._reschedule = client.register_script(_RESCHEDULE)
        self._close = client.register_script(_CLOSE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_TRACKER_PREFIX, **options: Any) -> RedisTracker:
        """A tracker on the Redis at *url* (``redis://``, ``rediss://``, ``unix://``)."""
        options.setdefault("socket_timeout", 5.0)
        options.setdefault("socket_connect_timeout", 5.0)
        return cls(redis.Redis.from_url(url, **options), prefix=prefix)

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}job:{job_id}"

    def _pipeline(self, calls: list[tuple[Any, list[str], list[Any]]]) -> None:
        if not calls:
            return
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for script, keys, args in calls:
                    script(keys=keys, args=args, client=pipe)
                pipe.execute()
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis job tracker: {type(error).__name__}") from error

    def track(self, entries: Sequence[TrackedJob]) -> None:
        """Add the entries not tracked yet."""
        self._pipeline(
            [
                (
                    self._track,
                    [self._job_key(e.job_id), self._due_key],
                    [e.job_id, e.scope, repr(e.tracked_at), repr(e.next_check), e.checks],
                )
                for e in entries
            ]
        )

    def due(self, now: float, limit: int, lease: float) -> list[TrackedJob]:
        """Up to *limit* open entries due at *now*, oldest first, leased for *lease* seconds."""
        try:
            reply = self._due(keys=[self._due_key], args=[repr(now), int(limit), repr(lease), self.prefix])
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis job tracker: {type(error).__name__}") from error
        values = [_text(value) for value in reply]
        return [
            TrackedJob(values[i], values[i + 1], float(values[i + 2]), float(values[i + 3]), int(values[i + 4]))
            for i in range(0, len(values), 5)
        ]

    def reschedule(self, entries: Sequence[TrackedJob]) -> None:
        """Set the open entries' next check and check count."""
        self._pipeline(
            [
                (self._reschedule, [self._job_key(e.job_id), self._due_key], [e.job_id, repr(e.next_check), e.checks])
                for e in entries
            ]
        )

    def close(self, job_ids: Sequence[str], until: float) -> None:
        """Mark closed (or add a closed marker) and forget at *until*."""
        millis = max(1, math.ceil(until * 1000))
        self._pipeline(
            [(self._close, [self._job_key(job_id), self._due_key], [job_id, millis, repr(until)]) for job_id in job_ids]
        )

    def get(self, job_id: str) -> TrackedJob | None:
        """The entry for *job_id*, if any."""
        try:
            fields = self.client.hgetall(self._job_key(job_id))
            score = self.client.zscore(self._due_key, job_id)
        except redis.RedisError as error:
            raise StoreUnavailable(f"Redis job tracker: {type(error).__name__}") from error
        if not fields:
            return None
        data = {_text(k): _text(v) for k, v in fields.items()}
        closed = data.get("closed") == "1"
        next_check = float(data.get("forget_at", 0)) if closed else float(score or 0)
        return TrackedJob(
            job_id, data.get("scope", ""), float(data.get("tracked_at", 0)), next_check, int(data["checks"]), closed
        )
