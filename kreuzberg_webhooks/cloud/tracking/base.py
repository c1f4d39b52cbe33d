"""What a job tracker stores: the jobs an app submitted, until a webhook or the reconciler closes them.

One entry per job id (the vendor's UUIDs are unique across projects), with
the *scope* its events are deduplicated in (``kreuzberg_webhooks.protocol.keys``), when
it was tracked, when it is next due for a check, and how many checks it has
had. Five operations, each atomic in the store:

* ``track(entries)`` — add entries that are not there yet; an entry already
  there, open or closed, is kept (a webhook can close a job before the
  submitting request gets to track it).
* ``due(now, limit, lease)`` — up to *limit* open entries due at *now*, oldest
  first, each leased for *lease* seconds (its ``next_check`` moved on), so two
  reconcilers never check the same job in one pass and a crashed pass's jobs
  come back after the lease.
* ``reschedule(entries)`` — set open entries' ``next_check`` and ``checks``.
* ``close(job_ids, until)`` — mark closed (adding a closed marker when the job
  is not tracked yet) and forget them at unix time *until*.
* ``get(job_id)`` — one entry, for inspection and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["JobTracker", "TrackedJob"]


@dataclass(frozen=True, slots=True)
class TrackedJob:
    """A job the app is waiting for."""

    job_id: str
    #: The scope its events are deduplicated in: ``""`` for a receiver with static secrets.
    scope: str
    tracked_at: float
    #: When the reconciler next checks it (unix time); for a closed entry, when it is forgotten.
    next_check: float
    checks: int = 0
    closed: bool = False


@runtime_checkable
class JobTracker(Protocol):
    """A store of tracked jobs (memory, SQLite, Redis, PostgreSQL)."""

    def track(self, entries: Sequence[TrackedJob]) -> None: ...

    def due(self, now: float, limit: int, lease: float) -> list[TrackedJob]: ...

    def reschedule(self, entries: Sequence[TrackedJob]) -> None: ...

    def close(self, job_ids: Sequence[str], until: float) -> None: ...

    def get(self, job_id: str) -> TrackedJob | None: ...
