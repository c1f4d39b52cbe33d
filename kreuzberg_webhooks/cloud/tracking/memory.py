"""A job tracker in this process's memory: for tests and single-process apps."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .base import TrackedJob

__all__ = ["MemoryTracker"]


class MemoryTracker:
    """Tracked jobs in a dict; correct for one process only."""

    def __init__(self) -> None:
        self._entries: dict[str, TrackedJob] = {}
        self._lock = threading.Lock()

    def track(self, entries: Sequence[TrackedJob]) -> None:
        """Add the entries not tracked yet."""
        with self._lock:
            for entry in entries:
                self._entries.setdefault(entry.job_id, entry)

    def due(self, now: float, limit: int, lease: float) -> list[TrackedJob]:
        """Up to *limit* open entries due at *now*, oldest first, leased for *lease* seconds."""
        with self._lock:
            for job_id in [k for k, e in self._entries.items() if e.closed and e.next_check <= now]:
                del self._entries[job_id]
            due = sorted(
                (e for e in self._entries.values() if not e.closed and e.next_check <= now), key=lambda e: e.next_check
            )[:limit]
            until = now + lease
            for e in due:
                self._entries[e.job_id] = TrackedJob(e.job_id, e.scope, e.tracked_at, until, e.checks, e.closed)
            return due

    def reschedule(self, entries: Sequence[TrackedJob]) -> None:
        """Set the open entries' next check and check count."""
        with self._lock:
            for entry in entries:
                current = self._entries.get(entry.job_id)
                if current is not None and not current.closed:
                    self._entries[entry.job_id] = TrackedJob(
                        current.job_id, current.scope, current.tracked_at, entry.next_check, entry.checks, False
                    )

    def close(self, job_ids: Sequence[str], until: float) -> None:
        """Mark closed (or add a closed marker) and forget at *until*."""
        with self._lock:
            for job_id in job_ids:
                current = self._entries.get(job_id)
                if current is None:
                    self._entries[job_id] = TrackedJob(job_id, "", until, until, 0, True)
                else:
                    self._entries[job_id] = TrackedJob(
                        job_id, current.scope, current.tracked_at, until, current.checks, True
                    )

    def get(self, job_id: str) -> TrackedJob | None:
        """The entry for *job_id*, if any."""
        with self._lock:
            return self._entries.get(job_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
