"""Row 8: the package's Django view mixin with the application's own handle_event."""

from __future__ import annotations

from typing import Any

from .django_settings import configure

configure(__name__)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views import View  # noqa: E402

from kreuzberg_webhooks.adapters.django.views import KreuzbergWebhookMixin  # noqa: E402

from .common import PATH, receiver  # noqa: E402


class Receive(KreuzbergWebhookMixin, View):  # type: ignore[misc]
    def handle_event(self, request: HttpRequest, event: Any) -> HttpResponse:
        return JsonResponse({"ok": True, "job_id": str(event.job_id)})


urlpatterns = [path(PATH.lstrip("/"), Receive.as_view(receiver=receiver()))]
application = get_wsgi_application()
