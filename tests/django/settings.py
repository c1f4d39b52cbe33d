"""Django settings for the Django tests that run in the main test process (test_webhook_app.py,
test_inbox_settings.py, and tests/adapters/test_settings.py beside Flask).

``configure()`` calls ``settings.configure`` once per process (it can only be
called once, and the whole test run shares one process): no pytest-django and
no ``DJANGO_SETTINGS_MODULE`` in the environment, so the servers that other
tests start never inherit these settings.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

SECRET = "django-tests-secret-0123456789abcdef0123"

#: The settings the tests run with; individual tests override parts of them.
SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "django-adapter-tests-only",
    "ALLOWED_HOSTS": ["testserver", "127.0.0.1", "localhost"],
    "INSTALLED_APPS": [
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "kreuzberg_webhooks.django",
    ],
    # The middleware a real project runs, including the two the views must be exempt from.
    "MIDDLEWARE": [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ],
    # Anonymous users without a database.
    "SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies",
    "DATABASES": {},
    "CACHES": {
        # Room for every key the tests make: culling would evict live leases.
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "kreuzberg-tests",
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        },
        "files": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(Path(tempfile.gettempdir()) / "kreuzberg-webhooks-django-tests"),
        },
        "nothing": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    },
    "ROOT_URLCONF": "tests.django.urls",
    "USE_TZ": True,
    "KREUZBERG_WEBHOOKS": {"SECRET": SECRET},
}


def configure() -> None:
    """Configure Django for this process (once) and load the apps."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**SETTINGS)
    django.setup()
