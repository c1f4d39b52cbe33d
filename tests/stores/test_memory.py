"""MemoryStore: the store contract, plus its bound."""

from __future__ import annotations

from kreuzberg_webhooks import MemoryStore, ReplayStore

from .contract import FrozenClock, StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self, clock: FrozenClock) -> ReplayStore:
        return MemoryStore(clock=clock)
