"""The tracker contract on the Django ORM against a real database: run only through
test_tracker.py, in a process of its own (Django's settings are configured once per process)."""

from __future__ import annotations

import os
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.tracker_suite.settings")

import django

django.setup()

import pytest  # noqa: E402
from django.core.management import call_command  # noqa: E402

from kreuzberg_webhooks.cloud import JobTracker, open_tracker  # noqa: E402
from kreuzberg_webhooks.django.cloud.models import TrackedJobRow  # noqa: E402
from kreuzberg_webhooks.django.cloud.tracker import DjangoTracker  # noqa: E402
from tests.cloud.test_tracking import (  # noqa: E402
    test_a_404_closes_a_job_only_after_the_not_found_grace,
    test_a_job_closed_before_it_is_tracked_stays_closed,
    test_a_job_that_never_finishes_is_reported_and_dropped_after_the_age_limit,
    test_a_tracked_job_is_due_after_its_delay_and_then_leased,
    test_closed_jobs_are_not_rescheduled_and_are_forgotten,
    test_due_is_oldest_first_and_bounded,
    test_tracking_again_keeps_the_entry,
)

call_command("migrate", verbosity=0)

__all__ = [
    "test_a_404_closes_a_job_only_after_the_not_found_grace",
    "test_a_job_closed_before_it_is_tracked_stays_closed",
    "test_a_job_that_never_finishes_is_reported_and_dropped_after_the_age_limit",
    "test_a_tracked_job_is_due_after_its_delay_and_then_leased",
    "test_closed_jobs_are_not_rescheduled_and_are_forgotten",
    "test_due_is_oldest_first_and_bounded",
    "test_tracking_again_keeps_the_entry",
]


@pytest.fixture
def make_tracker() -> Callable[[], JobTracker]:
    TrackedJobRow.objects.all().delete()
    return DjangoTracker


def test_open_tracker_opens_the_django_tracker() -> None:
    assert isinstance(open_tracker("django://"), DjangoTracker)
    assert open_tracker("django://default").using == "default"  # type: ignore[attr-defined]


def test_the_installed_app_string_keeps_its_label_and_migration_history() -> None:
    import io

    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    assert apps.get_app_config("kreuzberg_webhooks_cloud").name == "kreuzberg_webhooks.django.cloud"
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert sorted(name for label, name in loader.disk_migrations if label == "kreuzberg_webhooks_cloud") == [
        "0001_initial"
    ]
    assert TrackedJobRow._meta.db_table == "kreuzberg_webhooks_cloud_trackedjobrow"
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
