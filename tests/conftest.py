"""Fixtures every test module may use, built on the package's own testing kit.

The package's pytest plugin (``kreuzberg_webhooks.pytest_plugin``, loaded by its
entry point) adds the ``kreuzberg_*`` fixtures; these are the suite's own.
"""

from __future__ import annotations

import pytest

from kreuzberg_webhooks.testing import FrozenClock
from tests.support import NOW, Recorder


@pytest.fixture
def recorder() -> Recorder:
    """A handler that records the events it saw (and raises while ``fail`` is set)."""
    return Recorder()


@pytest.fixture
def clock() -> FrozenClock:
    """A clock that stands still at :data:`tests.support.NOW` until advanced."""
    return FrozenClock(NOW)
