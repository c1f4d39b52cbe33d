"""Moved to :mod:`kreuzberg_webhooks.django.cloud.apps` (this deprecated path is the same module)."""

from __future__ import annotations

import sys

from ...django.cloud import apps as _module

sys.modules[__name__] = _module
