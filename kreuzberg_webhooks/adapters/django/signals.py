"""Moved to :mod:`kreuzberg_webhooks.django.signals` (this deprecated path is the same module)."""

from __future__ import annotations

import sys

from ...django import signals as _module

sys.modules[__name__] = _module
