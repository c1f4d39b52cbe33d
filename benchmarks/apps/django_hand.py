"""Row 8 baseline: a hand-written Django view."""

from __future__ import annotations

import hashlib
import hmac
import json

from .django_settings import configure

configure(__name__)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

from .common import KEY, PATH  # noqa: E402


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    body = request.body
    expected = "sha256=" + hmac.new(KEY, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-Webhook-Signature", ""), expected):
        return JsonResponse({"ok": False}, status=401)
    event = json.loads(body)
    return JsonResponse({"ok": True, "job_id": event["job_id"]})


urlpatterns = [path(PATH.lstrip("/"), receive)]
application = get_wsgi_application()
