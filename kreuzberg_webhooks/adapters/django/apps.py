"""Moved to :mod:`kreuzberg_webhooks.django.apps` (this deprecated path is the same module)."""

from __future__ import annotations

import sys

from ...django import apps as _module

sys.modules[__name__] = _module
