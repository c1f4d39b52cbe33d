"""Moved to :mod:`kreuzberg_webhooks.django.inbox`; this path keeps working, deprecated.

``"kreuzberg_webhooks.inbox.django"`` in ``INSTALLED_APPS`` installs the same app (label
``kreuzberg_webhooks_inbox``, the same migrations and ``manage.py kreuzberg_inbox``), and its
modules are the new ones. Importing it warns once (:class:`DeprecationWarning`).
"""

from __future__ import annotations

from ...django._moved import warn_moved

warn_moved("kreuzberg_webhooks.inbox.django", "kreuzberg_webhooks.django.inbox")
