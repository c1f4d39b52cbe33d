"""Moved to :mod:`kreuzberg_webhooks.django.cloud.models` (this deprecated path is the same module)."""

from __future__ import annotations

import sys

from ...django.cloud import models as _module

sys.modules[__name__] = _module
