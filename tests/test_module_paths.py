"""The module paths users import, the pytest plugin's entry point and the console script keep
working across the package's layout (``docs/reference/``): moving a module never breaks an import."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys

import pytest

#: Paths users import today (the README, the docs, INSTALLED_APPS, entry points).
USER_PATHS = [
    "kreuzberg_webhooks.adapters.asgi",
    "kreuzberg_webhooks.adapters.django",
    "kreuzberg_webhooks.adapters.fastapi",
    "kreuzberg_webhooks.adapters.flask",
    "kreuzberg_webhooks.adapters.wsgi",
    "kreuzberg_webhooks.cli",
    "kreuzberg_webhooks.cloud",
    "kreuzberg_webhooks.cloud.django",
    "kreuzberg_webhooks.cloud.tasks",
    "kreuzberg_webhooks.cloud.tracking",
    "kreuzberg_webhooks.django",
    "kreuzberg_webhooks.django.cloud",
    "kreuzberg_webhooks.django.inbox",
    "kreuzberg_webhooks.emulator",
    "kreuzberg_webhooks.inbox",
    "kreuzberg_webhooks.inbox.asgi",
    "kreuzberg_webhooks.inbox.django",
    "kreuzberg_webhooks.inbox.postgres",
    "kreuzberg_webhooks.inbox.queues",
    "kreuzberg_webhooks.inbox.redis",
    "kreuzberg_webhooks.inbox.sqlite",
    "kreuzberg_webhooks.inbox.worker",
    "kreuzberg_webhooks.openapi",
    "kreuzberg_webhooks.otel",
    "kreuzberg_webhooks.pytest_plugin",
    "kreuzberg_webhooks.settings",
    "kreuzberg_webhooks.simulate",
    "kreuzberg_webhooks.stores",
    "kreuzberg_webhooks.stores.base",
    "kreuzberg_webhooks.stores.memory",
    "kreuzberg_webhooks.stores.postgres",
    "kreuzberg_webhooks.stores.redis",
    "kreuzberg_webhooks.stores.sqlite",
    "kreuzberg_webhooks.testing",
]


@pytest.mark.parametrize("path", USER_PATHS)
def test_a_module_path_users_import_still_imports(path: str) -> None:
    script = f"import importlib; importlib.import_module({path!r}); print('ok')"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


@pytest.mark.parametrize("old", ["pytest_plugin", "simulate"])
def test_a_moved_testing_module_is_the_same_module_under_its_old_path(old: str) -> None:
    moved = importlib.import_module(f"kreuzberg_webhooks.testing.{old}")
    assert importlib.import_module(f"kreuzberg_webhooks.{old}") is moved


def test_the_pytest_plugin_entry_point_and_the_console_script_load() -> None:
    points = importlib.metadata.entry_points()
    (plugin,) = [point for point in points.select(group="pytest11") if point.name == "kreuzberg_webhooks"]
    assert plugin.load() is importlib.import_module("kreuzberg_webhooks.testing.pytest_plugin")
    (script,) = [point for point in points.select(group="console_scripts") if point.name == "kreuzberg-webhooks"]
    assert script.load() is importlib.import_module("kreuzberg_webhooks.cli").main
