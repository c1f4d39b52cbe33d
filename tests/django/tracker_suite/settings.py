"""Django settings for the tracker's Django suite (its own process: see test_tracker.py)."""

from __future__ import annotations

import os

SECRET_KEY = "django-tracker-tests-only"
INSTALLED_APPS = ["django.contrib.contenttypes", "kreuzberg_webhooks.django.cloud"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["KREUZBERG_TEST_DB"]}}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
