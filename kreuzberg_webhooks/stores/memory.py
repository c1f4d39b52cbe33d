"""An in-process replay store: thread-safe, bounded, with TTLs."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from .._slots import slot_setter
from ..exceptions import ConfigurationError, StoreUnavailable
from .base import Claim, ClaimState

__all__ = ["MemoryStore"]

_DONE = Claim(ClaimState.DONE)
# Module constants: an enum member look-up costs as much as a dict operation.
_NEW = ClaimState.NEW
_IN_FLIGHT = ClaimState.IN_FLIGHT
_set_state = slot_setter(Claim, "state")
_set_token = slot_setter(Claim, "token")
_set_retry_after = slot_setter(Claim, "retry_after")


_new = Claim.__new__


class MemoryStore:
    """Remembers deliveries in this process's memory.

    Correct for one process (any number of threads). Several worker processes
    each get their own memory and deduplicate nothing between them: use
    :class:`~kreuzberg_webhooks.stores.SQLiteStore` or the Redis store there.

    :param max_entries: the most keys kept at once. Keys are never evicted
        before they expire (that would let a replay through); when the store
        is full of live keys a claim raises :class:`StoreUnavailable` and the
        delivery is answered 503, so the sender retries later.
    :param clock: a monotonic clock in seconds; inject one in tests.
    """

    #: Operations never block, so an async receiver may call them on the event loop.
    nonblocking = True

    def __init__(self, max_entries: int = 100_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        if type(max_entries) is not int or max_entries <= 0:
            raise ConfigurationError("max_entries must be a positive integer")
        self.max_entries = max_entries
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
        # acquire/release instead of `with`: half the cost on CPython 3.11,
        # and claim and complete run on every delivery.
        lock = self._lock
        lock.acquire()
        try:
            now = self._clock()
            entries = self._entries
            entry = entries.get(key)
            if entry is None:
                if len(entries) >= self.max_entries:
                    self._purge(now)
            elif entry[1] > now:
                if entry[0] is None:
                    return _DONE
                return Claim(_IN_FLIGHT, retry_after=entry[1] - now)
            token = next(self._tokens)
            expires_at = now + lease
            entries[key] = (token, expires_at)
            # Keep the next purge no later than the earliest expiry: an entry
            # added after the last purge may expire before the ones that were there.
            if expires_at < self._next_purge:
                self._next_purge = expires_at
        finally:
            lock.release()
        # Claim(ClaimState.NEW, token) built through the slots: half the cost, once per delivery.
        claim = _new(Claim)
        _set_state(claim, _NEW)
        _set_token(claim, token)
        _set_retry_after(claim, 0.0)
        return claim

    def complete(self, key: str, token: str, retention: float) -> None:
        """Mark *key* done for *retention* seconds."""
        lock = self._lock
        lock.acquire()
        try:
            expires_at = self._clock() + retention
            self._entries[key] = (None, expires_at)
            if expires_at < self._next_purge:  # as in claim
                self._next_purge = expires_at
        finally:
            lock.release()

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

    def _purge(self, now: float) -> None:
        # Scan at most once per earliest expiry, so a store full of live keys
        # does not rescan on every claim.
        if now >= self._next_purge:
            expired = [k for k, (_, expires_at) in self._entries.items() if expires_at <= now]
            for k in expired:
                del self._entries[k]
            self._next_purge = min((e for _, e in self._entries.values()), default=float("inf"))
        if len(self._entries) >= self.max_entries:
            raise StoreUnavailable("the in-memory replay store is full of unexpired keys")
