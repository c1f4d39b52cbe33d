"""The include and a webhook view of the project's own, with different ``handle_event`` methods (endpoint
mode allows it): a reconciled job came in through neither."""

from __future__ import annotations

from django.urls import include, path

from .views import JobWebhook

urlpatterns = [
    path("webhooks/", include("kreuzberg_webhooks.django.urls")),
    path("hooks/kreuzberg", JobWebhook.as_view()),
]
