"""The table that keeps deliveries: one row per delivery key."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models

from ...protocol.keys import (
    MAX_EVENT_ID_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    MAX_JOB_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_SCOPE_LENGTH,
)

__all__ = ["InboxDelivery"]


class InboxDelivery(models.Model):  # type: ignore[misc]
    """One verified delivery and its processing state (see :mod:`kreuzberg_webhooks.inbox.base`)."""

    class State(models.TextChoices):  # type: ignore[misc]
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        DEAD = "dead", "dead"

    # Every column holds the longest value the verifier lets through (kreuzberg_webhooks.protocol.keys.MAX_*,
    # docs/contract.md): a longer one would be refused by the database on every retry.
    key = models.CharField(max_length=MAX_KEY_LENGTH, primary_key=True)
    scope = models.CharField(max_length=max(255, MAX_SCOPE_LENGTH), blank=True, default="")
    event_id = models.CharField(max_length=MAX_EVENT_ID_LENGTH, null=True, blank=True, db_index=True)
    event_type = models.CharField(max_length=MAX_EVENT_TYPE_LENGTH)
    #: ``""`` for an event that names no job (an unknown event type, keyed by its event id).
    job_id = models.CharField(max_length=MAX_JOB_ID_LENGTH, db_index=True)
    body = models.BinaryField()
    headers = models.TextField(default="[]")
    received_at = models.FloatField(db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.IntegerField(default=0)
    #: When a queued delivery may be claimed; for a running one, when its lease ends.
    next_attempt_at = models.FloatField()
    last_error = models.TextField(null=True, blank=True)
    updated_at = models.FloatField()
    lease_token = models.CharField(max_length=64, null=True, blank=True)

    class Meta:
        # Explicit: the app's package sits inside the adapter's (kreuzberg_webhooks.django), and a
        # model imported without its app installed must not be taken for one of the adapter's.
        app_label = "kreuzberg_webhooks_inbox"
        verbose_name = "inbox delivery"
        verbose_name_plural = "inbox deliveries"
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="kreuzberg_inbox_due")]
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_id or self.key} ({self.state})"

    @property
    def received(self) -> datetime:
        """``received_at`` as an aware datetime (for display)."""
        return datetime.fromtimestamp(self.received_at, UTC)
