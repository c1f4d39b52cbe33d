"""Moved to :mod:`kreuzberg_webhooks.django.cloud`; this path keeps working, deprecated.

``"kreuzberg_webhooks.cloud.django"`` in ``INSTALLED_APPS`` installs the same app (label
``kreuzberg_webhooks_cloud``, the same migrations), and its modules are the new ones. Importing
it warns once (:class:`DeprecationWarning`).
"""

from __future__ import annotations

from ...django._moved import warn_moved

warn_moved("kreuzberg_webhooks.cloud.django", "kreuzberg_webhooks.django.cloud")
