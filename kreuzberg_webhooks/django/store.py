"""A replay store on Django's cache framework.

What it guarantees depends on the cache backend, because the one atomic
operation it relies on is ``cache.add`` (store only if absent):

- Redis (``django.core.cache.backends.redis.RedisCache``, django-redis) and
  Memcached: ``add`` is atomic on a server every worker shares, so a claim is
  exactly-once across processes and machines.
- The database cache: shared; ``add`` of a new key is settled by the table's
  unique key.
- ``FileBasedCache``: shared by the processes of one machine, but its ``add``
  checks, then writes: two workers can both win a claim. Not exactly-once.
- ``LocMemCache``: atomic, but per process: several workers deduplicate
  nothing between them.
- ``DummyCache`` remembers nothing: every copy of an event is processed.

The system checks flag the last three. A cache that evicts keys under memory
pressure (``MAX_ENTRIES`` culling, an LRU Redis) forgets events early; give
the store a cache, or a Redis ``maxmemory-policy``, that does not evict them.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import caches

from ..exceptions import ConfigurationError, StoreUnavailable
from ..protocol.durations import refuse_duration
from ..stores.base import Claim, ClaimState

__all__ = ["DEFAULT_KEY_PREFIX", "DjangoCacheStore"]

DEFAULT_KEY_PREFIX = "kreuzberg_webhooks:"
_DONE = "done"
_LEASE = "lease"
_DONE_CLAIM = Claim(ClaimState.DONE)
# Delivery keys are printable ASCII; anything else (a new status with a space,
# a very long id) is hashed so that every backend accepts the key (Memcached:
# at most 250 characters, no spaces or control characters).
_MAX_PLAIN_KEY = 200
_INF = float("inf")
# Renewal is a read and a write, like release; these serialise it with the completion and the
# release of the same key in this process (where the receiver's heartbeat and its handlers run),
# so a renewal never writes a lease back over the "done" its own request has just set.
_LOCKS = tuple(threading.Lock() for _ in range(64))


def _lock(cache_key: str) -> threading.Lock:
    return _LOCKS[hash(cache_key) % len(_LOCKS)]


def _timeout(seconds: float) -> int:
    # Memcached and Redis backends truncate timeouts to whole seconds (0.5 -> 0,
    # "expire now"); round up so a lease or a retention is never shortened.
    return max(1, math.ceil(seconds))


class DjangoCacheStore:
    """Remembers deliveries in one of the project's ``CACHES``.

    :param alias: the cache alias (``settings.CACHES`` key).
    :param key_prefix: put before every key, to keep these keys apart from the
        project's own.
    :param clock: the current unix time; the cache's own expiry uses real time,
        so this only computes ``Retry-After`` and the release margin.

    Claim is ``cache.add`` (atomic on shared backends), completion is
    ``cache.set`` for the retention. Release deletes the key only if it still
    holds this request's token: plain caches have no compare-and-delete, so
    the read and the delete are two steps. To keep a lease that expired between
    them (and was taken by another request) from being deleted, release leaves
    a lease with less than ``min(1 s, lease / 10)`` left to expire on its own;
    only a pause longer than that between the two steps could delete someone
    else's claim, letting a third copy run the handler again.

    Renew is the same read, then a ``cache.set`` of the lease with its new
    expiry, under the same margin: a lease with less than that left is not
    renewed (``False``), and one that ran out is gone with its cache key
    (``False``). Within a process, a renewal never interleaves with the
    completion or the release of the same key, so it cannot write a lease
    back over the key's "done".
    """

    def __init__(
        self,
        alias: str = "default",
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(alias, str) or not alias:
            raise ConfigurationError("the cache alias must be a non-empty string")
        if not isinstance(key_prefix, str):
            raise ConfigurationError("key_prefix must be a string")
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning unix seconds")
        self.alias = alias
        self.key_prefix = key_prefix
        self._clock = clock

    @property
    def cache(self) -> Any:
        """The Django cache, looked up per call: cache connections are per thread."""
        return caches[self.alias]

    def cache_key(self, key: str) -> str:
        """The cache key a delivery key is stored under."""
        if len(key) <= _MAX_PLAIN_KEY and key.isascii() and key.isprintable() and " " not in key:
            return self.key_prefix + key
        return self.key_prefix + "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def claim(self, key: str, lease: float) -> Claim:
        """Take a lease on *key* with ``cache.add`` unless it is done or leased."""
        if not 0.0 < lease < _INF:  # also NaN; an infinite timeout overflows every backend
            raise refuse_duration("lease", lease)
        cache, cache_key = self.cache, self.cache_key(key)
        seconds = _timeout(lease)
        token = secrets.token_hex(16)
        # add() failing and get() then finding nothing means the other lease
        # expired (or was released) in between: try again, a few times.
        for _ in range(3):
            now = self._clock()
            if cache.add(cache_key, f"{_LEASE} {now + seconds!r} {seconds} {token}", timeout=seconds):
                return Claim(ClaimState.NEW, token)
            value = cache.get(cache_key)
            if value is None:
                continue
            if value == _DONE:
                return _DONE_CLAIM
            expires_at, _, _ = _parse_lease(value)
            return Claim(ClaimState.IN_FLIGHT, retry_after=max(expires_at - now, 0.001))
        return Claim(ClaimState.IN_FLIGHT, retry_after=1.0)

    def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds."""
        if not 0.0 < retention < _INF:
            raise refuse_duration("retention", retention)
        cache_key = self.cache_key(key)
        with _lock(cache_key):
            self.cache.set(cache_key, _DONE, timeout=_timeout(retention))

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Move *key*'s claim to expire *lease* seconds from now if *token* still holds it; whether
        it does (see the class docstring: a lease about to run out, or gone, answers ``False``)."""
        if not 0.0 < lease < _INF:
            raise refuse_duration("lease", lease)
        cache, cache_key = self.cache, self.cache_key(key)
        seconds = _timeout(lease)
        with _lock(cache_key):
            value = cache.get(cache_key)
            if value is None or value == _DONE:
                return False
            expires_at, held_for, holder = _parse_lease(value)
            now = self._clock()
            if holder != token or expires_at - now <= min(1.0, held_for / 10):
                return False
            cache.set(cache_key, f"{_LEASE} {now + seconds!r} {seconds} {token}", timeout=seconds)
            return True

    def release(self, key: str, token: str) -> None:
        """Forget *key*'s claim if *token* still holds it (see the class docstring)."""
        cache, cache_key = self.cache, self.cache_key(key)
        with _lock(cache_key):
            value = cache.get(cache_key)
            if value is None or value == _DONE:
                return
            expires_at, lease, holder = _parse_lease(value)
            if holder == token and expires_at - self._clock() > min(1.0, lease / 10):
                cache.delete(cache_key)


def _parse_lease(value: object) -> tuple[float, float, str]:
    """``(expires_at, lease, token)`` of a stored lease; anything else is a corrupt key."""
    if isinstance(value, str):
        parts = value.split(" ")
        if len(parts) == 4 and parts[0] == _LEASE:
            try:
                return float(parts[1]), float(parts[2]), parts[3]
            except ValueError:
                pass
    # Something else wrote this key: answer 503 (the sender retries) rather than guess.
    raise StoreUnavailable("the replay store's cache key holds an unexpected value")
