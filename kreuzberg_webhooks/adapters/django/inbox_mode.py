"""Moved to :mod:`kreuzberg_webhooks.django.inbox_mode` (this deprecated path is the same module)."""

from __future__ import annotations

import sys

from ...django import inbox_mode as _module

sys.modules[__name__] = _module
