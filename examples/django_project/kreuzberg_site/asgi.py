"""The ASGI entry point, for uvicorn: ``uvicorn kreuzberg_site.asgi:application``.

It selects the adapter's async view (``KREUZBERG_WEBHOOKS["ASYNC"]``), which
waits on the replay store and on async handlers without holding a thread.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kreuzberg_site.settings")
os.environ.setdefault("KREUZBERG_DJANGO_ASYNC", "1")

application = get_asgi_application()
