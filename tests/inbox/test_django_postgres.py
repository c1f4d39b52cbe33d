"""The Django inbox's table on a real PostgreSQL server (which, unlike SQLite, enforces column lengths),
in a pytest process of its own (Django's settings are configured once per process)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.servers import ROOT

pytest_plugins = ["tests.postgres_server"]


def test_the_django_inbox_keeps_the_longest_values_on_postgresql(postgres_url: str) -> None:
    from tests.postgres_server import new_database  # after pytest has loaded it as a plugin

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.inbox.django_suite.postgres_settings",
        "KREUZBERG_TEST_DATABASE_URL": new_database(postgres_url),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/inbox/django_suite/postgres_cases.py", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
