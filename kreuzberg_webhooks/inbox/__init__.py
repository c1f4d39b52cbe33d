"""Inbox mode: acknowledge a verified delivery once it is durable, process it later.

:mod:`kreuzberg_webhooks.inbox.base` defines what every inbox implements
(:class:`Inbox`, :class:`AsyncInbox`), the record a delivery is kept as
(:class:`InboxEntry`, :class:`InboxRecord`, :class:`DeliveryState`) and when a
failed delivery is tried again (:class:`RetryPolicy`).

:class:`SQLiteInbox` (one machine) is built in; :func:`open_inbox` opens any
inbox from a URL (PostgreSQL and Redis too). :class:`InboxWorker` runs the
handlers of what the inbox holds, embedded in the application or as a process
of its own (``kreuzberg-webhooks inbox worker``); task queues take over with
:mod:`~kreuzberg_webhooks.inbox.celery`, :mod:`~kreuzberg_webhooks.inbox.rq` or
:mod:`~kreuzberg_webhooks.inbox.dramatiq`.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..exceptions import ConfigurationError
from ..stores._url import check_url, sqlite_path
from .base import (
    DEFAULT_LEASE,
    AsyncInbox,
    AsyncInboxWriter,
    DeliveryState,
    Inbox,
    InboxClaim,
    InboxEntry,
    InboxRecord,
    InboxWriter,
    RetryPolicy,
)
from .sqlite import AsyncSQLiteInbox, SQLiteInbox
from .worker import DeliveryFailure, InboxWorker

__all__ = [
    "DEFAULT_LEASE",
    "AsyncInbox",
    "AsyncInboxWriter",
    "AsyncSQLiteInbox",
    "DeliveryFailure",
    "DeliveryState",
    "Inbox",
    "InboxClaim",
    "InboxEntry",
    "InboxRecord",
    "InboxWorker",
    "InboxWriter",
    "RetryPolicy",
    "SQLiteInbox",
    "open_inbox",
]


def open_inbox(url: str, *, asynchronous: bool = False, **options: Any) -> Inbox | AsyncInbox:
    """Open an inbox from a URL, for configuration that lives in the environment.

    ``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` →
    :class:`SQLiteInbox` (:class:`AsyncSQLiteInbox` when *asynchronous*);
    ``postgresql://`` → the PostgreSQL inbox (``[postgres]`` extra);
    ``redis://``, ``rediss://`` or ``unix://`` → the Redis inbox (``[redis]``
    extra). *asynchronous* opens the async flavour; *options* go to the
    inbox's constructor.
    """
    scheme = check_url(url, "inbox").scheme.lower()
    if scheme == "sqlite":
        path = sqlite_path(url, "inbox")
        return AsyncSQLiteInbox(path, **options) if asynchronous else SQLiteInbox(path, **options)
    if scheme in ("postgres", "postgresql"):
        # Imported here: psycopg is an optional extra.
        postgres = importlib.import_module("kreuzberg_webhooks.inbox.postgres")
        inbox: Inbox | AsyncInbox = (
            postgres.AsyncPostgresInbox(url, **options) if asynchronous else postgres.PostgresInbox(url, **options)
        )
        return inbox
    if scheme in ("redis", "rediss", "unix"):
        redis = importlib.import_module("kreuzberg_webhooks.inbox.redis")
        inbox = (
            redis.AsyncRedisInbox.from_url(url, **options)
            if asynchronous
            else redis.RedisInbox.from_url(url, **options)
        )
        return inbox
    raise ConfigurationError(f"unknown inbox URL scheme {scheme!r}: use sqlite:///, postgresql:// or redis://")
