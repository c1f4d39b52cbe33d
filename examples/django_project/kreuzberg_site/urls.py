"""``POST /webhooks/kreuzberg``: the adapter's ready view, named ``kreuzberg_webhooks:webhook``;
``POST /extract``: submit a document to Kreuzberg Cloud (with ``KREUZBERG_API_URL`` set)."""

from __future__ import annotations

from django.urls import include, path
from jobs.views import extract

urlpatterns = [
    path("webhooks/", include("kreuzberg_webhooks.django.urls")),
    path("extract", extract, name="extract"),
]
