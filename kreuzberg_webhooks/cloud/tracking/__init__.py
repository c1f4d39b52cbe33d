"""Job trackers: the jobs an app submitted, kept until a webhook or the reconciler closes them.

:class:`MemoryTracker` (one process) and :class:`SQLiteTracker` (one machine)
are built in; ``RedisTracker`` (``[redis]``) and ``PostgresTracker``
(``[postgres]``) are imported from their modules when used.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import unquote, urlsplit

from ...exceptions import ConfigurationError
from .base import JobTracker, TrackedJob
from .memory import MemoryTracker
from .sqlite import SQLiteTracker

__all__ = ["JobTracker", "MemoryTracker", "SQLiteTracker", "TrackedJob", "open_tracker"]


def open_tracker(url: str) -> JobTracker:
    """A tracker from a URL, the replay store's URL scheme: ``memory://``, ``sqlite:///relative.db``
    or ``sqlite:////absolute.db``, ``redis://`` (``rediss://``, ``unix://``), ``postgresql://``, or
    ``django://`` (``django://<database alias>``; the ``kreuzberg_webhooks.django.cloud`` app)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryTracker()
    if scheme == "sqlite":
        path = unquote(url.split("://", 1)[1])
        return SQLiteTracker(path[1:] if path.startswith("/") else path)
    module: Any
    if scheme in ("redis", "rediss", "unix"):
        module = importlib.import_module("kreuzberg_webhooks.cloud.tracking.redis")
        tracker: JobTracker = module.RedisTracker.from_url(url)
        return tracker
    if scheme == "django":  # the kreuzberg_webhooks.django.cloud app's table, in the default database
        module = importlib.import_module("kreuzberg_webhooks.django.cloud.tracker")
        tracker = module.DjangoTracker(urlsplit(url).netloc or "default")
        return tracker
    if scheme in ("postgres", "postgresql"):
        module = importlib.import_module("kreuzberg_webhooks.cloud.tracking.postgres")
        tracker = module.PostgresTracker.from_url(url)
        return tracker
    raise ConfigurationError(
        f"unknown job tracker URL scheme {scheme!r}: use memory://, sqlite:///, redis://, postgresql:// or django://"
    )
