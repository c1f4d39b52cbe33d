"""Inbox mode: acknowledge a verified delivery once it is durable, process it later.

:mod:`kreuzberg_webhooks.inbox.base` defines what every inbox implements
(:class:`Inbox`, :class:`AsyncInbox`), the record a delivery is kept as
(:class:`InboxEntry`, :class:`InboxRecord`, :class:`DeliveryState`) and when a
failed delivery is tried again (:class:`RetryPolicy`).
"""

from __future__ import annotations

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

__all__ = [
    "DEFAULT_LEASE",
    "AsyncInbox",
    "AsyncInboxWriter",
    "DeliveryState",
    "Inbox",
    "InboxClaim",
    "InboxEntry",
    "InboxRecord",
    "InboxWriter",
    "RetryPolicy",
]
