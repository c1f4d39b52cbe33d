"""``path("webhooks/", include("kreuzberg_webhooks.django.urls"))``.

Mounts the ready view at ``<prefix>kreuzberg`` (so ``POST /webhooks/kreuzberg``
with the prefix above), named ``"kreuzberg_webhooks:webhook"``: it dispatches to
the handlers registered on the configured receiver and sends
``webhook_received``. ``KREUZBERG_WEBHOOKS["ASYNC"] = True`` mounts the async
flavour, for ASGI servers.
"""

from __future__ import annotations

from django.urls import path

from .views import webhook_view

app_name = "kreuzberg_webhooks"

urlpatterns = [
    path("kreuzberg", webhook_view(), name="webhook"),
]
