"""The async ready view at the include's path (what ``KREUZBERG_WEBHOOKS["ASYNC"]`` mounts)."""

from __future__ import annotations

from django.urls import path

from kreuzberg_webhooks.django import AsyncKreuzbergWebhookView

urlpatterns = [path("webhooks/kreuzberg", AsyncKreuzbergWebhookView.as_view())]
