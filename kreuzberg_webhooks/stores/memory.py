"""An in-process replay store: thread-safe, bounded, with TTLs."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

from ..exceptions import ConfigurationError, StoreUnavailable
from ..protocol.durations import refuse_duration
from .base import Claim, ClaimState

__all__ = ["MemoryStore"]

logger = logging.getLogger("kreuzberg_webhooks")

_DONE = Claim(ClaimState.DONE)
_NEW = ClaimState.NEW
_IN_FLIGHT = ClaimState.IN_FLIGHT
#: The share of ``max_entries`` at which the store warns that it is filling up.
_WARN_AT = 0.8
_INF = float("inf")


class MemoryStore:
    """Remembers deliveries in this process's memory.

    Correct for one process (any number of threads). Several worker processes
    each get their own memory and deduplicate nothing between them: use
    :class:`~kreuzberg_webhooks.stores.SQLiteStore` or the Redis store there.

    :param max_entries: the most keys kept at once.
    :param when_full: what a claim for a new key does when every key is still
        live. ``"evict"`` (the default) forgets the oldest *processed* key to
        make room, so a busy process never turns a new event into a 503; a
        replay of the forgotten event would be processed again, so the store
        warns loudly at 80 % and at every eviction run — use
        :class:`~kreuzberg_webhooks.stores.SQLiteStore` or raise
        *max_entries* when you see it. ``"refuse"`` keeps every live key and
        answers new events 503 (the sender retries later) until keys expire.
        Keys being processed (in flight) are never evicted.
    :param clock: a monotonic clock in seconds; inject one in tests.
    """

    #: Operations never block, so an async receiver may call them on the event loop.
    nonblocking = True

    def __init__(
        self,
        max_entries: int = 100_000,
        *,
        when_full: Literal["evict", "refuse"] = "evict",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if type(max_entries) is not int or max_entries <= 0:
            raise ConfigurationError("max_entries must be a positive integer")
        if when_full not in ("evict", "refuse"):
            raise ConfigurationError(f"when_full must be 'evict' or 'refuse', not {when_full!r}")
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning monotonic seconds")
        self.max_entries = max_entries
        self.when_full = when_full
        # Past it the store warns once; then no count reaches it (one comparison per claim).
        self._warn_at: float = max(1, int(max_entries * _WARN_AT))
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (token or None when done, expires_at)
        self._entries: dict[str, tuple[str | None, float]] = {}
        self._tokens = map(str, itertools.count(1))
        self._next_purge = float("-inf")

    def __len__(self) -> int:
        return len(self._entries)

    def claim(self, key: str, lease: float) -> Claim:
        """Take a lease on *key* unless it is done or leased."""
        if not 0.0 < lease < _INF:  # also NaN: refused before anything is stored
            raise refuse_duration("lease", lease)
        # acquire/release rather than ``with``: a third of the cost, and both run on every delivery.
        self._lock.acquire()
        try:
            now = self._clock()
            entries = self._entries
            entry = entries.get(key)
            if entry is None:
                if len(entries) >= self.max_entries:
                    self._make_room(now)
            elif entry[1] > now:
                if entry[0] is None:
                    return _DONE
                return Claim(_IN_FLIGHT, None, entry[1] - now)
            else:
                del entries[key]  # expired: re-added at the end, in the order of its new expiry
            token = next(self._tokens)
            expires_at = now + lease
            entries[key] = (token, expires_at)
            if expires_at < self._next_purge:
                self._next_purge = expires_at
            if len(entries) >= self._warn_at:
                self._warn()
        finally:
            self._lock.release()
        return Claim(_NEW, token)

    def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds."""
        if not 0.0 < retention < _INF:
            raise refuse_duration("retention", retention)
        self._lock.acquire()
        try:
            expires_at = self._clock() + retention
            entries = self._entries
            entries.pop(key, None)  # re-added at the end: oldest processed keys come first
            entries[key] = (None, expires_at)
            # Keep the next purge no later than the earliest expiry: an entry
            # added after the last purge may expire before the ones that were there.
            if expires_at < self._next_purge:
                self._next_purge = expires_at
        finally:
            self._lock.release()

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Move *key*'s claim to expire *lease* seconds from now if *token* still holds it (the
        receiver's heartbeat while the event's handlers run); whether it does. A claim whose
        lease ran out is still held, and renewed, until another claim takes the key over (or a
        full store purges it to make room)."""
        if not 0.0 < lease < _INF:
            raise refuse_duration("lease", lease)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != token:
                return False  # done (token None), released, or taken over
            expires_at = self._clock() + lease
            self._entries[key] = (token, expires_at)
            if expires_at < self._next_purge:  # a shorter lease than the one it had
                self._next_purge = expires_at
            return True

    def _warn(self) -> None:
        self._warn_at = _INF
        logger.warning(
            "the in-memory replay store holds %d of its %d keys: past that, %s; "
            "use SQLiteStore (or Redis, PostgreSQL) or raise max_entries",
            len(self._entries),
            self.max_entries,
            "the oldest processed events are forgotten" if self.when_full == "evict" else "new events get 503",
        )

    def release(self, key: str, token: str) -> None:
        """Forget *key*'s claim if *token* still holds it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == token:
                del self._entries[key]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

    def _make_room(self, now: float) -> None:
        # Scan for expired keys at most once per earliest expiry, so a store
        # full of live keys does not rescan on every claim.
        if now >= self._next_purge:
            expired = [k for k, (_, expires_at) in self._entries.items() if expires_at <= now]
            for k in expired:
                del self._entries[k]
            self._next_purge = min((e for _, e in self._entries.values()), default=float("inf"))
        if len(self._entries) < self.max_entries:
            return
        if self.when_full == "evict":
            # Entries are in the order they were added or completed: the first done one is the oldest.
            oldest = next((k for k, (token, _) in self._entries.items() if token is None), None)
            if oldest is not None:
                del self._entries[oldest]
                logger.warning(
                    "the in-memory replay store is full (%d keys): forgot the oldest processed event "
                    "(a replay of it would be processed again); use SQLiteStore or raise max_entries",
                    self.max_entries,
                )
                return
        raise StoreUnavailable("the in-memory replay store is full of unexpired keys")
