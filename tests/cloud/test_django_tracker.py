"""The Django job tracker (model, migration, the tracker contract) against a real database, in a
pytest process of its own: Django's settings are configured once per process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT


@pytest.mark.slow
def test_the_django_tracker_suite_passes_in_its_own_process(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.cloud.django_suite.settings",
        "KREUZBERG_TEST_DB": str(tmp_path / "django.sqlite3"),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/cloud/django_suite/cases.py", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "9 passed" in result.stdout
