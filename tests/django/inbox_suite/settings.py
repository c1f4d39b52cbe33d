"""Django settings for the inbox's Django suite, which runs in its own process (see test_inbox.py):
a real database (SQLite file from KREUZBERG_TEST_DB), the admin, and this package's inbox app."""

from __future__ import annotations

import os

SECRET = "django-inbox-secret-0123456789abcdef0123"
DEBUG = False
SECRET_KEY = "django-inbox-tests-only"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "kreuzberg_webhooks.django",
    "kreuzberg_webhooks.django.inbox",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["KREUZBERG_TEST_DB"]}}
ROOT_URLCONF = os.environ.get("KREUZBERG_TEST_URLCONF", "tests.django.inbox_suite.urls")
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
KREUZBERG_WEBHOOKS = {
    "SECRET": SECRET,
    "STORE": "memory://",
    "INBOX": "django",
    "INBOX_RETRY": {"first_delay": 1, "max_delay": 1, "max_attempts": 2, "max_age": None},
}
# The admin tests log several users in: a fast hasher (test accounts only).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
