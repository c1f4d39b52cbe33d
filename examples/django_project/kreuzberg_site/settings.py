"""Settings of a small Django project that receives Kreuzberg Cloud webhooks.

Serve it from the repository root, under gunicorn (WSGI)::

    KREUZBERG_WEBHOOK_SECRET=... gunicorn --preload --pythonpath examples/django_project \\
        kreuzberg_site.wsgi --workers 2 --worker-class gthread --threads 4 --bind 127.0.0.1:8000

or under uvicorn (ASGI; ``asgi.py`` selects the async view)::

    KREUZBERG_WEBHOOK_SECRET=... uvicorn --app-dir examples/django_project \\
        kreuzberg_site.asgi:application --workers 2 --lifespan off --host 127.0.0.1 --port 8000

Deliveries go to ``POST /webhooks/kreuzberg``. Several worker processes share
the SQLite replay store (one machine) or Redis (several machines), so a retry
that lands on another worker is still deduplicated.

Environment: the examples' common variables, listed in ``_shared.py`` —
``KREUZBERG_WEBHOOK_SECRET`` (required), ``KREUZBERG_EVENTS_LOG``,
``KREUZBERG_STORE_URL``, ``KREUZBERG_REDIS_URL``, ``KREUZBERG_MAX_BODY_SIZE``.
Also ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS`` (comma-separated): the usual Django ones.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

# The examples' shared helpers (secret, store, size limit, events log) live in examples/_shared.py.
EXAMPLES = Path(__file__).resolve().parents[2]
if str(EXAMPLES) not in sys.path:
    sys.path.append(str(EXAMPLES))

from _shared import (  # noqa: E402
    inbox_mode,
    max_body_size_from_env,
    retry_policy_from_env,
    secret_from_env,
    store_url_from_env,
)

DEBUG = False
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "django-example-only-set-DJANGO_SECRET_KEY-in-production"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", *filter(None, os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(","))]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "kreuzberg_webhooks.django",  # the system checks
    "jobs",  # registers the handlers
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
if django.VERSION >= (5, 1):
    # Every page needs a login, except the webhook: the sender signs instead.
    MIDDLEWARE.append("django.contrib.auth.middleware.LoginRequiredMiddleware")

SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
DATABASES: dict[str, dict[str, str]] = {}  # the example records events in a file, not a database
ROOT_URLCONF = "kreuzberg_site.urls"
USE_TZ = True

# asgi.py sets this before Django loads: ASGI servers get the async view.
ASYNC_VIEW = os.environ.get("KREUZBERG_DJANGO_ASYNC") == "1"

KREUZBERG_WEBHOOKS = {
    "SECRET": secret_from_env(),  # refuses to start without one
    # A URL, opened on the first delivery in each worker (after gunicorn forks):
    # Redis when KREUZBERG_REDIS_URL is set, else SQLite, shared by this machine's workers.
    "STORE": store_url_from_env(),
    "MAX_BODY_SIZE": max_body_size_from_env(),
    "ASYNC": ASYNC_VIEW,
}
if inbox_mode():
    # KREUZBERG_INBOX=1: deliveries are written to an inbox on the same store URL and answered 202;
    # the inbox app runs the embedded worker thread in each web process.
    INSTALLED_APPS.append("kreuzberg_webhooks.django.inbox")
    KREUZBERG_WEBHOOKS.update(
        {"INBOX": store_url_from_env(), "INBOX_WORKER": True, "INBOX_RETRY": retry_policy_from_env()}
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "kreuzberg_webhooks": {"handlers": ["console"], "level": "INFO"},
        "jobs": {"handlers": ["console"], "level": "INFO"},
    },
}
