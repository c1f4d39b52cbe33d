"""Moved to :mod:`kreuzberg_webhooks.testing.pytest_plugin`; this path keeps working (it is the same module)."""

from __future__ import annotations

import sys

from .testing import pytest_plugin as _module

sys.modules[__name__] = _module
