"""Moved to :mod:`kreuzberg_webhooks.django.inbox.models` (this deprecated path is the same module)."""

from __future__ import annotations

import sys

from ...django.inbox import models as _module

sys.modules[__name__] = _module
