"""An inbox on the Django ORM: deliveries in the :class:`~.models.InboxDelivery` table."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest

from ...exceptions import StoreUnavailable
from ...inbox._rows import (
    COLUMN_NAMES,
    LISTED_NAMES,
    check_lease,
    check_limit,
    check_purge,
    headers_to_text,
    record_from_listed_row,
    record_from_row,
    short_error,
)
from ...inbox.base import DeliveryState, InboxClaim, InboxEntry, InboxRecord
from .models import InboxDelivery

__all__ = ["DjangoInbox"]


def _record(row: Sequence[Any]) -> InboxRecord:
    return record_from_row(row)


class DjangoInbox:
    """Keeps deliveries in your Django database (any backend Django supports).

    A claim is a compare-and-set ``UPDATE … WHERE state = … AND next_attempt_at = …``
    on one row: of two workers that read the same due row, one updates it and the
    other finds nothing to update, on every database, with no row locks held.

    :param using: the database alias.
    :param clock: wall-clock unix time.
    """

    def __init__(self, using: str = "default", *, clock: Callable[[], float] = time.time) -> None:
        self.using = using
        self._clock = clock

    @property
    def _rows(self) -> Any:
        return InboxDelivery.objects.using(self.using)

    def on_commit(self, callback: Callable[[], object]) -> None:
        """Run *callback* once the current transaction commits (at once outside one)."""
        transaction.on_commit(callback, using=self.using)

    def _guard(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except DatabaseError as error:
            raise StoreUnavailable(f"the Django inbox's database is unavailable ({type(error).__name__})") from error

    def enqueue(self, entry: InboxEntry) -> bool:
        """Write *entry* as queued; ``False`` if its key is already in the inbox (any state)."""
        now = self._clock()

        def insert() -> bool:
            try:
                with transaction.atomic(using=self.using):
                    self._rows.create(
                        key=entry.key,
                        scope=entry.scope,
                        event_id=entry.event_id,
                        event_type=entry.event_type,
                        job_id=entry.job_id,
                        body=entry.body,
                        headers=headers_to_text(entry.headers),
                        received_at=entry.received_at,
                        state="queued",
                        attempts=0,
                        next_attempt_at=now,
                        updated_at=now,
                    )
            except IntegrityError:
                return False
            return True

        result: bool = self._guard(insert)
        return result

    def _take(self, row: Sequence[Any], now: float, lease: float) -> InboxClaim | None:
        key, state, due = row[0], row[8], row[10]
        token = secrets.token_hex(16)
        taken = self._rows.filter(key=key, state=state, next_attempt_at=due).update(
            state="running", attempts=F("attempts") + 1, next_attempt_at=now + lease, updated_at=now, lease_token=token
        )
        if taken != 1:
            return None  # another worker got there first
        fresh = self._rows.filter(key=key).values_list(*COLUMN_NAMES).first()
        return None if fresh is None else InboxClaim(_record(fresh), token)

    def claim_due(self, lease: float, limit: int = 1) -> list[InboxClaim]:
        """Lease up to *limit* due deliveries, oldest due first."""
        lease, limit = check_lease(lease), check_limit(limit)
        now = self._clock()

        def claim() -> list[InboxClaim]:
            rows = list(
                self._rows.filter(state__in=("queued", "running"), next_attempt_at__lte=now)
                .order_by("next_attempt_at", "key")
                .values_list(*COLUMN_NAMES)[:limit]
            )
            return [c for row in rows if (c := self._take(row, now, lease)) is not None]

        result: list[InboxClaim] = self._guard(claim)
        return result

    def claim(self, key: str, lease: float) -> InboxClaim | None:
        """Lease the delivery *key* unless it is done, dead or leased."""
        lease = check_lease(lease)
        now = self._clock()

        def claim() -> InboxClaim | None:
            row = (
                self._rows.filter(Q(state="queued") | Q(state="running", next_attempt_at__lte=now), key=key)
                .values_list(*COLUMN_NAMES)
                .first()
            )
            return None if row is None else self._take(row, now, lease)

        result: InboxClaim | None = self._guard(claim)
        return result

    def _settle(self, key: str, token: str, **changes: Any) -> bool:
        def update() -> int:
            return int(
                self._rows.filter(key=key, state="running", lease_token=token).update(
                    lease_token=None, updated_at=self._clock(), **changes
                )
            )

        return bool(self._guard(update) == 1)

    def complete(self, key: str, token: str) -> bool:
        """Mark the claimed delivery done."""
        return self._settle(key, token, state="done", last_error=None)

    def renew(self, key: str, token: str, lease: float) -> bool:
        """Extend the claim's lease to *lease* seconds from now (the worker's heartbeat)."""
        until = self._clock() + check_lease(lease)
        update = self._rows.filter(key=key, state="running", lease_token=token).update
        return bool(self._guard(lambda: update(next_attempt_at=until)) == 1)

    def fail(self, key: str, token: str, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt: queued again from *retry_at*, or dead."""
        if retry_at is None:
            return self._settle(key, token, state="dead", last_error=short_error(error))
        return self._settle(key, token, state="queued", next_attempt_at=retry_at, last_error=short_error(error))

    def release(self, key: str, token: str, retry_at: float) -> bool:
        """Give a claim back without counting its attempt."""
        return self._settle(
            key, token, state="queued", next_attempt_at=retry_at, attempts=Greatest(F("attempts") - 1, 0)
        )

    def get(self, key_or_event_id: str) -> InboxRecord | None:
        """The delivery with this key, else the latest with this event id."""

        def get() -> InboxRecord | None:
            row = self._rows.filter(key=key_or_event_id).values_list(*COLUMN_NAMES).first()
            if row is None:
                row = (
                    self._rows.filter(event_id=key_or_event_id)
                    .order_by("-received_at")
                    .values_list(*COLUMN_NAMES)
                    .first()
                )
            return None if row is None else _record(row)

        result: InboxRecord | None = self._guard(get)
        return result

    def list(self, state: DeliveryState | None = None, limit: int = 100) -> list[InboxRecord]:
        """Up to *limit* deliveries (in *state*), the latest received first."""
        limit = check_limit(limit)
        rows = self._rows.all() if state is None else self._rows.filter(state=DeliveryState(state).value)
        result: list[InboxRecord] = self._guard(
            lambda: [
                record_from_listed_row(r)
                for r in rows.order_by("-received_at", "key").values_list(*LISTED_NAMES)[:limit]
            ]
        )
        return result

    def counts(self) -> dict[DeliveryState, int]:
        """How many deliveries are in each state."""
        counts = dict.fromkeys(DeliveryState, 0)
        from django.db.models import Count

        for row in self._guard(lambda: list(self._rows.values("state").annotate(n=Count("key")).order_by())):
            counts[DeliveryState(row["state"])] = int(row["n"])
        return counts

    def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int:
        """Queue deliveries again now with a fresh attempt count (by key or event id, or all in *state*)."""
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of keys, not one string")
        now = self._clock()
        if state is not None:
            if DeliveryState(state) is DeliveryState.RUNNING:
                return 0
            rows = self._rows.filter(state=DeliveryState(state).value)
        elif keys:
            rows = self._rows.filter(Q(key__in=list(keys)) | Q(event_id__in=list(keys))).exclude(state="running")
        else:
            return 0
        changes = {"state": "queued", "attempts": 0, "next_attempt_at": now, "updated_at": now, "lease_token": None}
        return int(self._guard(lambda: rows.update(**changes)))

    def purge(self, state: DeliveryState, older_than: float = 0.0) -> int:
        """Delete the deliveries in *state* unchanged for *older_than* seconds."""
        state, older_than = check_purge(state, older_than)
        cutoff = self._clock() - older_than
        deleted, _ = self._guard(lambda: self._rows.filter(state=state.value, updated_at__lte=cutoff).delete())
        return int(deleted)
