"""The Django inbox's table on a real PostgreSQL server (which, unlike SQLite, enforces column lengths),
in a pytest process of its own (Django's settings are configured once per process)."""

from __future__ import annotations

from tests.servers import run_django_suite

pytest_plugins = ["tests.postgres_server"]


def test_the_django_inbox_keeps_the_longest_values_on_postgresql(postgres_url: str) -> None:
    from tests.postgres_server import new_database  # after pytest has loaded it as a plugin

    result = run_django_suite(
        "tests.django.inbox_suite.postgres_settings",
        "tests/django/inbox_suite/postgres_cases.py",
        KREUZBERG_TEST_DATABASE_URL=new_database(postgres_url),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
