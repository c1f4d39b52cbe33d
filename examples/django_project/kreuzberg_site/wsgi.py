"""The WSGI entry point, for gunicorn: ``gunicorn kreuzberg_site.wsgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kreuzberg_site.settings")

application = get_wsgi_application()
