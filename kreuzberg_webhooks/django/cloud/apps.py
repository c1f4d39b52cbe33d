"""The Django app that holds tracked jobs."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["KreuzbergCloudConfig"]


class KreuzbergCloudConfig(AppConfig):  # type: ignore[misc]
    """Tracked Kreuzberg Cloud jobs in the project's database."""

    name = "kreuzberg_webhooks.django.cloud"
    label = "kreuzberg_webhooks_cloud"
    verbose_name = "Kreuzberg Cloud tracked jobs"
    default_auto_field = "django.db.models.BigAutoField"
