"""The root URLconf of the Django adapter's unit tests: the include, as a project mounts it."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("webhooks/", include("kreuzberg_webhooks.django.urls"))]
