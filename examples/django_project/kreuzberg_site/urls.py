"""``POST /webhooks/kreuzberg``: the adapter's ready view, named ``kreuzberg_webhooks:webhook``."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("webhooks/", include("kreuzberg_webhooks.adapters.django.urls")),
]
