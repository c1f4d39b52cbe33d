"""A job tracker on the Django ORM (the project's own database)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DatabaseError, transaction

from ...cloud.tracking.base import TrackedJob
from ...exceptions import StoreUnavailable
from .models import TrackedJobRow

__all__ = ["DjangoTracker"]


def _entry(row: TrackedJobRow) -> TrackedJob:
    return TrackedJob(row.job_id, row.scope, row.tracked_at, row.next_check, row.checks, row.closed)


class DjangoTracker:
    """Tracked jobs in the ``kreuzberg_webhooks_cloud`` app's table.

    ``due`` locks its rows with ``SELECT … FOR UPDATE SKIP LOCKED`` where the database has it
    (PostgreSQL, MySQL 8, Oracle), so reconcilers on several machines split the due jobs.

    :param using: the database alias.
    """

    def __init__(self, using: str = "default") -> None:
        self.using = using

    def _rows(self) -> Any:  # django-stubs are not installed: the manager is untyped
        return TrackedJobRow.objects.using(self.using)

    def track(self, entries: Sequence[TrackedJob]) -> None:
        """Add the entries not tracked yet."""
        rows = [TrackedJobRow(e.job_id, e.scope, e.tracked_at, e.next_check, e.checks, False) for e in entries]
        try:
            self._rows().bulk_create(rows, ignore_conflicts=True)
        except DatabaseError as error:
            raise StoreUnavailable(f"Django job tracker: {type(error).__name__}") from error

    def due(self, now: float, limit: int, lease: float) -> list[TrackedJob]:
        """Up to *limit* open entries due at *now*, oldest first, leased for *lease* seconds."""
        try:
            with transaction.atomic(using=self.using):
                self._rows().filter(closed=True, next_check__lte=now).delete()
                rows = list(
                    self._rows()
                    .select_for_update(skip_locked=True)
                    .filter(closed=False, next_check__lte=now)
                    .order_by("next_check")[:limit]
                )
                self._rows().filter(pk__in=[row.pk for row in rows]).update(next_check=now + lease)
        except DatabaseError as error:
            raise StoreUnavailable(f"Django job tracker: {type(error).__name__}") from error
        return [_entry(row) for row in rows]

    def reschedule(self, entries: Sequence[TrackedJob]) -> None:
        """Set the open entries' next check and check count."""
        try:
            with transaction.atomic(using=self.using):
                for e in entries:
                    self._rows().filter(pk=e.job_id, closed=False).update(next_check=e.next_check, checks=e.checks)
        except DatabaseError as error:
            raise StoreUnavailable(f"Django job tracker: {type(error).__name__}") from error

    def close(self, job_ids: Sequence[str], until: float) -> None:
        """Mark closed (or add a closed marker) and forget at *until*."""
        try:
            with transaction.atomic(using=self.using):
                self._rows().filter(pk__in=list(job_ids)).update(closed=True, next_check=until)
                markers = [TrackedJobRow(job_id, "", until, until, 0, True) for job_id in job_ids]
                self._rows().bulk_create(markers, ignore_conflicts=True)
        except DatabaseError as error:
            raise StoreUnavailable(f"Django job tracker: {type(error).__name__}") from error

    def get(self, job_id: str) -> TrackedJob | None:
        """The entry for *job_id*, if any."""
        row = self._rows().filter(pk=job_id).first()
        return None if row is None else _entry(row)
