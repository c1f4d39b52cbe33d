"""Replay stores: where the receiver remembers which deliveries it has seen.

:class:`MemoryStore` (one process) and :class:`SQLiteStore` (one machine) are
built in. ``RedisStore`` (several machines) lives in
:mod:`kreuzberg_webhooks.stores.redis` behind the ``[redis]`` extra, and a
store on Django's cache in :mod:`kreuzberg_webhooks.adapters.django`.
"""

from __future__ import annotations

from ._base import AsyncReplayStore, Claim, ClaimState, ReplayStore
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["AsyncReplayStore", "Claim", "ClaimState", "MemoryStore", "ReplayStore", "SQLiteStore"]
