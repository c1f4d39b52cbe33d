"""Django: the webhook app (a view mixin, a URLconf include, a signal, settings, checks and a cache
store), and the two apps on your database beside it.

Three Django apps, one home:

- ``kreuzberg_webhooks.django`` (label ``kreuzberg_webhooks``): the views, the URLconf include,
  the system checks, the cache store; :mod:`~kreuzberg_webhooks.django.conf` is the one module that
  reads ``KREUZBERG_WEBHOOKS``, for all three apps;
- :mod:`kreuzberg_webhooks.django.inbox` (label ``kreuzberg_webhooks_inbox``): the durable inbox's
  table, admin, signals and ``manage.py kreuzberg_inbox``;
- :mod:`kreuzberg_webhooks.django.cloud` (label ``kreuzberg_webhooks_cloud``): the job tracker's table.

The old paths (``kreuzberg_webhooks.adapters.django``, ``kreuzberg_webhooks.inbox.django``,
``kreuzberg_webhooks.cloud.django``) still work, in ``INSTALLED_APPS`` too, with a
:class:`DeprecationWarning`: they install the same apps, with the same labels and migrations.

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

from . import conf, inbox_mode  # noqa: E402
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

# The configured receiver runs a trusted event (the reconciler's) through the mounted view's
# handle_event, as the inbox worker does: wired here, since conf cannot import the views.
conf.trusted_runner = inbox_mode.trusted_receiver

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
