"""Replay stores: where the receiver remembers which deliveries it has seen.

:class:`MemoryStore` (one process) and :class:`SQLiteStore` (one machine) are
built in. ``RedisStore`` (several machines) lives in
:mod:`kreuzberg_webhooks.stores.redis` behind the ``[redis]`` extra, and a
store on Django's cache in :mod:`kreuzberg_webhooks.django`.
"""

from __future__ import annotations

import importlib

from ..exceptions import ConfigurationError
from ._url import check_url, sqlite_path
from .base import AsyncReplayStore, Claim, ClaimState, ReplayStore
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["AsyncReplayStore", "Claim", "ClaimState", "MemoryStore", "ReplayStore", "SQLiteStore", "open_store"]


def open_store(url: str, *, asynchronous: bool = False) -> ReplayStore | AsyncReplayStore:
    """Open a replay store from a URL, for configuration that lives in the environment.

    ``memory://`` → :class:`MemoryStore`; ``sqlite:///relative.db`` or
    ``sqlite:////absolute/path.db`` → :class:`SQLiteStore`; ``redis://``,
    ``rediss://`` or ``unix://`` → the Redis store (its async twin when
    *asynchronous*), which needs the ``[redis]`` extra; ``postgresql://`` →
    the PostgreSQL store (likewise), which needs the ``[postgres]`` extra.
    """
    scheme = check_url(url, "replay store").scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        path = sqlite_path(url, "replay store")
        return SQLiteStore(path)
    if scheme in ("redis", "rediss", "unix"):
        # Imported here: redis-py is an optional extra.
        redis = importlib.import_module("kreuzberg_webhooks.stores.redis")
        store: ReplayStore | AsyncReplayStore = (
            redis.AsyncRedisStore.from_url(url) if asynchronous else redis.RedisStore.from_url(url)
        )
        return store
    if scheme in ("postgres", "postgresql"):
        postgres = importlib.import_module("kreuzberg_webhooks.stores.postgres")
        pg_store: ReplayStore | AsyncReplayStore = (
            postgres.AsyncPostgresStore(url) if asynchronous else postgres.PostgresStore(url)
        )
        return pg_store
    raise ConfigurationError(
        f"unknown replay store URL scheme {scheme!r}: use memory://, sqlite:///, redis:// or postgresql://"
    )
