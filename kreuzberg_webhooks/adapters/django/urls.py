"""Moved to :mod:`kreuzberg_webhooks.django.urls` (this deprecated path is the same module)."""

from __future__ import annotations

import sys

from ...django import urls as _module

sys.modules[__name__] = _module
