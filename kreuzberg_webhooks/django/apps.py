"""The Django app: add ``"kreuzberg_webhooks.django"`` to ``INSTALLED_APPS``
for the system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks

from .checks import check_inbox, check_settings, check_store, check_views


class KreuzbergWebhooksConfig(AppConfig):  # type: ignore[misc]
    """Registers the system checks."""

    name = "kreuzberg_webhooks.django"
    label = "kreuzberg_webhooks"
    verbose_name = "Kreuzberg webhooks"

    def ready(self) -> None:
        checks.register(check_settings, checks.Tags.security)
        checks.register(check_store, checks.Tags.caches)
        checks.register(check_inbox, checks.Tags.compatibility)
        checks.register(check_views, checks.Tags.urls)
