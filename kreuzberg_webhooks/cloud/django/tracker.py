"""Moved to :mod:`kreuzberg_webhooks.django.cloud.tracker` (this deprecated path is the same module)."""

from __future__ import annotations

import sys

from ...django.cloud import tracker as _module

sys.modules[__name__] = _module
