"""The Django suite's settings on a real PostgreSQL database (KREUZBERG_TEST_DATABASE_URL), for the
cases that need a database that enforces column lengths (SQLite does not)."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

os.environ.setdefault("KREUZBERG_TEST_DB", "unused-on-postgresql")

from .settings import *  # noqa: F403

_url = urlsplit(os.environ["KREUZBERG_TEST_DATABASE_URL"])
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": unquote(_url.username or ""),
        "PASSWORD": unquote(_url.password or ""),
        "HOST": _url.hostname or "127.0.0.1",
        "PORT": str(_url.port or 5432),
    }
}
