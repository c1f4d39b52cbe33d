"""The inbox's Django app (model, migration, admin action, management command, signals, inbox-mode
view) against a real database. Django's settings are configured once per process and the adapter
tests already configure theirs, so these cases run in a pytest process of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers import run_django_suite


@pytest.mark.slow
def test_the_django_suite_passes_in_its_own_process(tmp_path: Path) -> None:
    result = run_django_suite(
        "tests.django.inbox_suite.settings",
        "tests/django/inbox_suite/cases.py",
        KREUZBERG_TEST_DB=str(tmp_path / "django.sqlite3"),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
