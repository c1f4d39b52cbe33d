from __future__ import annotations

from django.urls import path

from .views import AsyncJobWebhook

urlpatterns = [path("hooks/kreuzberg", AsyncJobWebhook.as_view())]
