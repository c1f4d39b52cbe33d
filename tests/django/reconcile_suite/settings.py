"""Django settings for the reconciler's Django suite (its own process: see test_reconcile.py)."""

from __future__ import annotations

import os

SECRET = "django-reconcile-tests-secret-0123456789abcdef"

SECRET_KEY = "django-reconcile-tests-only"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "kreuzberg_webhooks.django",
    "kreuzberg_webhooks.django.cloud",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["KREUZBERG_TEST_DB"]}}
ROOT_URLCONF = "tests.django.urls"  # the include: POST /webhooks/kreuzberg, the ready view
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
KREUZBERG_WEBHOOKS = {"SECRET": SECRET}
