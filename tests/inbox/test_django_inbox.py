"""The inbox's Django app (model, migration, admin action, management command, signals, inbox-mode
view) against a real database. Django's settings are configured once per process and the adapter
tests already configure theirs, so these cases run in a pytest process of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT


@pytest.mark.slow
def test_the_django_suite_passes_in_its_own_process(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.inbox.django_suite.settings",
        "KREUZBERG_TEST_DB": str(tmp_path / "django.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/inbox/django_suite/cases.py", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
