"""Registers the webhook handlers once Django is ready."""

from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        from . import views, webhooks  # noqa: F401  (registers the handler and the signal receiver)

        views.setup_cloud()  # with KREUZBERG_API_URL: POST /extract, fetched results, reconciliation
