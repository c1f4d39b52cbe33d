"""What the inboxes share: the columns (the Redis inbox's hash fields too), a row turned back
into a record, and the checks of their arguments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..protocol.durations import duration
from .base import DeliveryState, InboxEntry, InboxRecord

#: The columns every SQL inbox (and the Django model) selects, in this order: what
#: :func:`record_from_row` reads back.
COLUMN_NAMES = (
    "key",
    "scope",
    "event_id",
    "event_type",
    "job_id",
    "body",
    "headers",
    "received_at",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
    "updated_at",
)
#: The same, as a SQL select list.
COLUMNS = ", ".join(COLUMN_NAMES)
#: The columns a listing selects: all but the body (``list`` answers records with an
#: empty body, so 20 lines never load 20 bodies of up to 16 MiB; ``get`` has it).
LISTED_NAMES = tuple(name for name in COLUMN_NAMES if name != "body")
#: The same, as a SQL select list.
LISTED = ", ".join(LISTED_NAMES)
_BODY = COLUMN_NAMES.index("body")
#: The most characters of an error kept: a traceback's last line, not a novel.
MAX_ERROR = 2000


def headers_to_text(headers: Sequence[tuple[str, str]]) -> str:
    """The stored form of an entry's headers (a JSON list of pairs)."""
    return json.dumps([[name, value] for name, value in headers], separators=(",", ":"))


def entry_values(entry: InboxEntry, now: float) -> tuple[Any, ...]:
    """An entry's values for a new row, in the order of :data:`COLUMN_NAMES` less ``state``,
    ``attempts`` and ``last_error`` (a new delivery is queued, never tried, due *now*)."""
    return (
        entry.key,
        entry.scope,
        entry.event_id,
        entry.event_type,
        entry.job_id,
        entry.body,
        headers_to_text(entry.headers),
        entry.received_at,
        now,
        now,
    )


def headers_from_text(text: str) -> tuple[tuple[str, str], ...]:
    """The headers back from :func:`headers_to_text`."""
    return tuple((str(name), str(value)) for name, value in json.loads(text))


def short_error(error: str) -> str:
    """*error* cut to :data:`MAX_ERROR` characters."""
    return error if len(error) <= MAX_ERROR else error[: MAX_ERROR - 1] + "…"


def record_from_row(row: Sequence[Any]) -> InboxRecord:
    """An :class:`InboxRecord` from a row of :data:`COLUMNS`.

    A running delivery's ``next_attempt_at`` is the end of its lease: from
    then on another worker may claim it, as it may claim a queued one that is due.
    """
    key, scope, event_id, event_type, job_id, body, headers, received_at = row[:8]
    state, attempts, next_attempt_at, last_error, updated_at = row[8:13]
    entry = InboxEntry(
        key=key,
        scope=scope,
        event_id=event_id,
        event_type=event_type,
        job_id=job_id,
        body=bytes(body),
        headers=headers_from_text(headers),
        received_at=float(received_at),
    )
    delivery_state = DeliveryState(state)
    return InboxRecord(
        entry=entry,
        state=delivery_state,
        attempts=int(attempts),
        next_attempt_at=float(next_attempt_at),
        last_error=last_error,
        updated_at=float(updated_at),
        lease_expires_at=float(next_attempt_at) if delivery_state is DeliveryState.RUNNING else None,
    )


def record_from_listed_row(row: Sequence[Any]) -> InboxRecord:
    """An :class:`InboxRecord` with an empty body from a row of :data:`LISTED`."""
    return record_from_row((*row[:_BODY], b"", *row[_BODY:]))


def check_lease(lease: float) -> float:
    """*lease* as a float if it is a positive, finite number of seconds (else ConfigurationError)."""
    return duration(lease, "lease")


def check_limit(limit: int) -> int:
    """*limit* if it is a positive whole number."""
    if type(limit) is not int or limit < 1:
        raise ValueError("limit must be a positive whole number")
    return limit


def check_purge(state: DeliveryState | str, older_than: float) -> tuple[DeliveryState, float]:
    """*state* and *older_than* for a purge: never the running deliveries, and zero or more seconds
    (:class:`ConfigurationError` is a ``ValueError``)."""
    state = DeliveryState(state)
    if state is DeliveryState.RUNNING:
        raise ValueError("a running delivery cannot be purged")
    return state, duration(older_than, "older_than", allow_zero=True)
