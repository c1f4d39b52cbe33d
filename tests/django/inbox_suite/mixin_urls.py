from __future__ import annotations

from django.urls import path

from .views import JobWebhook

urlpatterns = [path("hooks/kreuzberg", JobWebhook.as_view())]
