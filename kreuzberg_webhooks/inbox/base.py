"""The inbox interface: what the receiver writes and what a worker reads.

In inbox mode the receiver verifies a delivery, writes it here durably and
answers 2xx; a worker processes it later, out of the request
(``docs/contract.md`` §4b). Every inbox keeps, per delivery key, one
:class:`InboxRecord` that moves through these states::

    enqueue ──► queued ──claim──► running ──complete──► done
                  ▲                  │
                  └──fail (retry_at)─┤   (or its lease expires: a killed worker)
                                     └──fail (no retry)──► dead ──retry──► queued

* ``enqueue(entry) -> bool`` — write a new delivery (``True``) or find its
  key already there in any state (``False``: the copy is a duplicate).
* ``claim_due(now, lease, limit)`` — lease up to *limit* deliveries that are
  due: queued with ``next_attempt_at <= now``, or running with an expired
  lease. Each claim counts an attempt.
* ``claim(key, lease)`` — lease one delivery by key (a task queue's message
  carries only the key); ``None`` when it is done, dead or leased.
* ``renew(key, token, lease)`` — extend a held lease to *lease* seconds from
  now (the worker's heartbeat while a handler runs), only while *token* holds it.
* ``complete(key, token)``, ``fail(key, token, error, retry_at)`` and
  ``release(key, token, retry_at)`` — settle a claim, only while *token*
  still holds it (a lease that expired and was claimed again belongs to the
  new owner).
* ``get``, ``list``, ``counts``, ``retry`` and ``purge`` — operations. ``list``
  answers records whose ``entry.body`` is empty (a listing never loads the
  bodies); ``get`` has the body.

Inboxes raise :class:`~kreuzberg_webhooks.exceptions.StoreUnavailable` (or any
exception) when they cannot be reached; the receiver answers 503.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from ..exceptions import ConfigurationError
from ..protocol.durations import duration

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

#: Seconds a worker holds a claimed delivery before another worker may take it over, when
#: nothing else says: the receiver's own default lease (``Receiver(lease=...)``, 120 s). While
#: a handler runs the worker renews its claim (a heartbeat), so the lease bounds how long a
#: dead worker's delivery waits, not how long a handler may run.
DEFAULT_LEASE = 120.0


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One verified delivery, as the receiver writes it to the inbox.

    :param key: the dedupe key (``kreuzberg_webhooks.protocol.keys.delivery_key``); one
        record per key.
    :param scope: the project key the delivery was verified under ("" for static secrets).
    :param event_id: the sender's event id, when the body has one.
    :param event_type: ``job.completed``, ``job.failed``…
    :param job_id: the job's id as ``event.job_id`` spells it; ``""`` for an ``UnknownEvent``.
    :param body: the raw request body, exactly as signed.
    :param headers: the signature header and ``X-Idempotency-Key``, names in lower case.
    :param received_at: unix time the delivery arrived.
    """

    key: str
    scope: str
    event_id: str | None
    event_type: str
    job_id: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    received_at: float


class DeliveryState(StrEnum):
    """Where a delivery is in its life. A failed attempt goes back to ``queued``
    with a later ``next_attempt_at`` and its ``last_error``."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """A stored delivery with its processing state."""

    entry: InboxEntry
    state: DeliveryState
    #: Attempts started so far (a claim counts one, even if its worker was killed).
    attempts: int
    #: Unix time from which a queued delivery may be claimed.
    next_attempt_at: float
    #: The last failure's one-line description; cleared when the delivery is done.
    last_error: str | None
    #: Unix time of the last change of state.
    updated_at: float
    #: Unix time a running delivery's lease ends (``None`` unless running).
    lease_expires_at: float | None = None

    @property
    def key(self) -> str:
        """The delivery key."""
        return self.entry.key

    @property
    def event_id(self) -> str | None:
        """The sender's event id, when the body had one."""
        return self.entry.event_id


@dataclass(frozen=True, slots=True)
class InboxClaim:
    """A leased delivery: the record as claimed and the token that settles it."""

    record: InboxRecord
    token: str

    @property
    def key(self) -> str:
        """The delivery key."""
        return self.record.entry.key


def _seconds(value: float, what: str, *, allow_zero: bool = False) -> float:
    return duration(value, what, allow_zero=allow_zero)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed delivery is tried again, and when it is given up as dead.

    The n-th retry waits ``first_delay * factor ** (n - 1)`` seconds, at most
    *max_delay*. A delivery goes dead when it has been attempted
    *max_attempts* times, or when its next attempt would start more than
    *max_age* seconds after it arrived (either limit may be ``None``, not
    both). The defaults retry for about a day: 10 s, 20 s, … capped at an hour,
    30 attempts, and nothing older than three days.
    """

    first_delay: float = 10.0
    max_delay: float = 3600.0
    max_attempts: int | None = 30
    max_age: float | None = 3 * 24 * 3600.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        _seconds(self.first_delay, "first_delay")
        _seconds(self.max_delay, "max_delay")
        if self.max_delay < self.first_delay:
            raise ConfigurationError("max_delay must be at least first_delay")
        if isinstance(self.factor, bool) or not isinstance(self.factor, int | float):
            raise ConfigurationError("factor must be a number")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise ConfigurationError("factor must be a finite number of at least 1")
        if self.max_attempts is not None and (type(self.max_attempts) is not int or self.max_attempts < 1):
            raise ConfigurationError("max_attempts must be a positive whole number or None")
        if self.max_age is not None:
            _seconds(self.max_age, "max_age")
        if self.max_attempts is None and self.max_age is None:
            raise ConfigurationError("set max_attempts or max_age: a delivery that never succeeds must go dead")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the *attempts*-th failed attempt (1 for the first)."""
        exponent = max(attempts - 1, 0)
        # Compared in logarithms: factor ** exponent overflows long before an hour's cap is reached.
        if self.factor > 1 and exponent * math.log(self.factor) >= math.log(self.max_delay / self.first_delay):
            return self.max_delay
        return min(self.first_delay * self.factor**exponent, self.max_delay)

    def next_attempt(self, attempts: int, received_at: float, now: float) -> float | None:
        """When to try again after *attempts* failed attempts, or ``None``: dead."""
        if self.max_attempts is not None and attempts >= self.max_attempts:
            return None
        retry_at = now + self.delay(attempts)
        if self.max_age is not None and retry_at - received_at > self.max_age:
            return None
        return retry_at


@runtime_checkable
class InboxWriter(Protocol):
    """What the receiver needs in inbox mode: a durable write."""

    def enqueue(self, entry: InboxEntry) -> bool: ...


@runtime_checkable
class AsyncInboxWriter(Protocol):
    """The async :class:`InboxWriter`."""

    async def enqueue(self, entry: InboxEntry) -> bool: ...


@runtime_checkable
class Inbox(Protocol):
    """A synchronous inbox: the writer's operation, the worker's and the operator's."""

    def enqueue(self, entry: InboxEntry) -> bool: ...

    def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]: ...

    def claim(self, key: str, lease: float) -> InboxClaim | None: ...

    def renew(self, key: str, token: str, lease: float) -> bool: ...

    def complete(self, key: str, token: str) -> bool: ...

    def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool: ...

    def release(self, key: str, token: str, retry_at: float) -> bool: ...

    def get(self, key_or_event_id: str) -> InboxRecord | None: ...

    def list(self, state: DeliveryState | None = None, limit: int = 100) -> Sequence[InboxRecord]: ...

    def counts(self) -> dict[DeliveryState, int]: ...

    def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int: ...

    def purge(self, state: DeliveryState, older_than: float = 0.0) -> int: ...


@runtime_checkable
class AsyncInbox(Protocol):
    """An asynchronous inbox: the same operations as coroutines."""

    async def enqueue(self, entry: InboxEntry) -> bool: ...

    async def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]: ...

    async def claim(self, key: str, lease: float) -> InboxClaim | None: ...

    async def renew(self, key: str, token: str, lease: float) -> bool: ...

    async def complete(self, key: str, token: str) -> bool: ...

    async def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool: ...

    async def release(self, key: str, token: str, retry_at: float) -> bool: ...

    async def get(self, key_or_event_id: str) -> InboxRecord | None: ...

    async def list(self, state: DeliveryState | None = None, limit: int = 100) -> Sequence[InboxRecord]: ...

    async def counts(self) -> dict[DeliveryState, int]: ...

    async def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int: ...

    async def purge(self, state: DeliveryState, older_than: float = 0.0) -> int: ...
