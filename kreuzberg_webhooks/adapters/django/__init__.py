"""Moved to :mod:`kreuzberg_webhooks.django`; this path keeps working, deprecated.

``"kreuzberg_webhooks.adapters.django"`` in ``INSTALLED_APPS`` installs the same app (label
``kreuzberg_webhooks``), ``include("kreuzberg_webhooks.adapters.django.urls")`` mounts the same
view, and every name imported from here is the new module's. Importing it warns once
(:class:`DeprecationWarning`).
"""

from __future__ import annotations

from ...django import *  # noqa: F403 - every public name of the new home
from ...django import __all__ as __all__
from ...django._moved import warn_moved

warn_moved("kreuzberg_webhooks.adapters.django", "kreuzberg_webhooks.django")
