"""A webhook view of the application's own (the mixin with a handle_event of its own), and its URLconf."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import path
from django.views import View

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.cloud import delivered_via
from kreuzberg_webhooks.django import KreuzbergWebhookMixin

#: (job id, request, delivered_via()) per handle_event call, in this process.
handled: list[tuple[str, Any, str]] = []


class JobWebhook(KreuzbergWebhookMixin, View):  # type: ignore[misc]
    def handle_event(self, request: HttpRequest | None, event: Event) -> None:
        handled.append((str(event.job_id), request, delivered_via()))


urlpatterns = [path("hooks/kreuzberg", JobWebhook.as_view())]
