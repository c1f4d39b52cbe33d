"""The reconciler in a Django app: a job whose webhook never came reaches the project the way a
webhook would have (the ``on()`` handlers, then ``webhook_received``), exactly once, against the
emulator as a real server and the Django tracker on a real database. In a pytest process of its own:
Django's settings are configured once per process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import run_django_suite


@pytest.mark.slow
def test_the_django_reconcile_suite_passes_in_its_own_process(tmp_path: Path) -> None:
    result = run_django_suite(
        "tests.django.reconcile_suite.settings",
        "tests/django/reconcile_suite/cases.py",
        KREUZBERG_TEST_DB=str(tmp_path / "django.sqlite3"),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "9 passed" in result.stdout
