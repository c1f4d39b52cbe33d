"""The Django apps' old homes: ``kreuzberg_webhooks.adapters.django``, ``kreuzberg_webhooks.inbox.django``
and ``kreuzberg_webhooks.cloud.django`` keep working, deprecated.

Each old package warns once, when it is first imported (an ``INSTALLED_APPS`` entry, an import, a
URLconf ``include``), and each of its modules is the new module itself (``sys.modules``), so
settings, signals and registered handlers are shared whichever path a project uses. The app
labels and migrations are the same under both entries.
"""

from __future__ import annotations

import warnings

__all__ = ["warn_moved"]


def warn_moved(old: str, new: str) -> None:
    """Warn (:class:`DeprecationWarning`, pointing at the importer) that *old* moved to *new*."""
    warnings.warn(
        f"{old} moved to {new}: import {new} and list {new!r} in INSTALLED_APPS "
        "(the app label and the migrations are unchanged). The old path will be removed in a later release.",
        DeprecationWarning,
        stacklevel=3,
    )
