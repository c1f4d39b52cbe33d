"""The table of tracked jobs: one row per job id (see :mod:`kreuzberg_webhooks.cloud.tracking.base`)."""

from __future__ import annotations

from django.db import models

__all__ = ["TrackedJobRow"]


class TrackedJobRow(models.Model):  # type: ignore[misc]
    """A job the app submitted and waits for."""

    job_id = models.CharField(max_length=64, primary_key=True)
    scope = models.CharField(max_length=255, blank=True, default="")
    tracked_at = models.FloatField()
    #: When the reconciler next checks it; for a closed row, when it is forgotten.
    next_check = models.FloatField()
    checks = models.IntegerField(default=0)
    closed = models.BooleanField(default=False)

    class Meta:
        # Explicit: the app's package sits inside the adapter's (kreuzberg_webhooks.django), and a
        # model imported without its app installed must not be taken for one of the adapter's.
        app_label = "kreuzberg_webhooks_cloud"
        verbose_name = "tracked job"
        indexes = [models.Index(fields=["closed", "next_check"], name="kreuzberg_tracked_due")]

    def __str__(self) -> str:
        return f"{self.job_id} ({'closed' if self.closed else 'open'})"
