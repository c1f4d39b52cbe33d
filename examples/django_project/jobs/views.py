"""``POST /extract``: a multipart ``file`` submitted to Kreuzberg Cloud, answered 202 with its job ids.

Active when ``KREUZBERG_API_URL`` is set (see ``examples/_shared.py``); the app then also fetches each
job's text in the handler and, with ``KREUZBERG_RECONCILE_INTERVAL``, reconciles jobs whose webhook
never came.
"""

from __future__ import annotations

from typing import Any

from _shared import Cloud, cloud_from_env, extract_unavailable
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from kreuzberg_webhooks.django import get_receiver

try:  # Django 5.1+: every page needs a login unless marked
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # pragma: no cover - older Django

    def login_not_required(view: Any) -> Any:
        return view


_cloud: Cloud | None = None


def setup_cloud() -> None:
    """Called from ``JobsConfig.ready()``: the cloud side, bound to the configured receiver."""
    global _cloud
    _cloud = cloud_from_env(get_receiver())


@csrf_exempt  # an API endpoint for the app's own clients, not a browser form
@login_not_required
@require_POST
def extract(request: HttpRequest) -> JsonResponse:
    if _cloud is None:
        status, answer = extract_unavailable()
    else:
        upload = request.FILES.get("file")
        if upload is None:
            status, answer = 400, {"error": "the form has no 'file' field"}
        else:
            status, answer = _cloud.submit(upload.name or "upload", upload.read(), upload.content_type or "")
    return JsonResponse(answer, status=status)
