"""Fixtures every test module may use, built on the package's own testing kit.

The package's pytest plugin (``kreuzberg_webhooks.testing.pytest_plugin``, loaded by its
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


#: Fixtures that start a real server: a test that uses one is slow.
_SERVER_FIXTURES = frozenset(
    {
        "redis_server",
        "redis_url",
        "own_redis_server",
        "redis_cluster_node",
        "postgres_server",
        "postgres_url",
        "own_postgres_server",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that starts servers or worker processes, so ``-m "not slow"`` is a quick loop."""
    for item in items:
        in_integration = item.nodeid.startswith("tests/integration/")
        if in_integration or _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
