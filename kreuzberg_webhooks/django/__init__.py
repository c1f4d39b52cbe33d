"""Django adapter: a view mixin, a URLconf include, a signal, settings, checks and a cache store.

::

    # settings.py
    INSTALLED_APPS = [..., "kreuzberg_webhooks.django"]
    KREUZBERG_WEBHOOKS = {"SECRET": os.environ["KREUZBERG_WEBHOOK_SECRET"]}

    # urls.py
    urlpatterns = [path("webhooks/", include("kreuzberg_webhooks.django.urls"))]

    # myapp/webhooks.py (imported from MyAppConfig.ready())
    from kreuzberg_webhooks.django import on

    @on("job.completed")
    def completed(event): ...

Needs Django: ``pip install "kreuzberg-webhooks[django]"``.
"""

from __future__ import annotations

from ..adapters._missing import require

require("django", "django")

from .conf import build_receiver, get_receiver, get_setting, on  # noqa: E402
from .signals import webhook_received  # noqa: E402
from .store import DjangoCacheStore  # noqa: E402
from .views import (  # noqa: E402
    AsyncKreuzbergWebhookMixin,
    AsyncKreuzbergWebhookView,
    KreuzbergWebhookMixin,
    KreuzbergWebhookView,
    webhook_view,
)

__all__ = [
    "AsyncKreuzbergWebhookMixin",
    "AsyncKreuzbergWebhookView",
    "DjangoCacheStore",
    "KreuzbergWebhookMixin",
    "KreuzbergWebhookView",
    "build_receiver",
    "get_receiver",
    "get_setting",
    "on",
    "webhook_received",
    "webhook_view",
]
