"""The Django apps' home, ``kreuzberg_webhooks.django``, and their old paths.

What a project and its database know stays as it was: the app labels, the migrations already
applied, the tables, ``manage.py kreuzberg_inbox``; and the old ``INSTALLED_APPS`` entries,
imports and URLconf include keep working, with a :class:`DeprecationWarning` naming the new path.
Each case configures Django in a fresh interpreter (``app_paths_probe.py``): settings are
configured once per process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kreuzberg_webhooks.django as django_home
from tests.servers import ROOT

PROBE = Path(__file__).with_name("app_paths_probe.py")
OLD = {
    "kreuzberg_webhooks.adapters.django": "kreuzberg_webhooks.django",
    "kreuzberg_webhooks.inbox.django": "kreuzberg_webhooks.django.inbox",
    "kreuzberg_webhooks.cloud.django": "kreuzberg_webhooks.django.cloud",
}
#: What users' databases know: the labels, the migrations applied, the tables (named by label).
LABELS = {
    "kreuzberg_webhooks": "kreuzberg_webhooks.django",
    "kreuzberg_webhooks_inbox": "kreuzberg_webhooks.django.inbox",
    "kreuzberg_webhooks_cloud": "kreuzberg_webhooks.django.cloud",
}
MIGRATIONS = [
    ["kreuzberg_webhooks_cloud", "0001_initial"],
    ["kreuzberg_webhooks_inbox", "0001_initial"],
    ["kreuzberg_webhooks_inbox", "0002_column_bounds"],
]
TABLES = ["kreuzberg_webhooks_cloud_trackedjobrow", "kreuzberg_webhooks_inbox_inboxdelivery"]


def probe(entries: str, database: Path, *python_options: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, *python_options, str(PROBE), entries, str(database)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return probe("old", tmp_path_factory.mktemp("old") / "db.sqlite3")


@pytest.fixture(scope="module")
def new(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # Every warning is an error: the new paths raise no DeprecationWarning at all.
    return probe("new", tmp_path_factory.mktemp("new") / "db.sqlite3", "-W", "error::DeprecationWarning")


@pytest.mark.parametrize("entries", ["old", "new"])
def test_either_installed_apps_entry_installs_the_same_apps_labels_migrations_and_tables(
    entries: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    report = {"old": old, "new": new}[entries]
    assert report["labels"] == LABELS
    assert report["migrations"] == MIGRATIONS
    assert report["applied"] == MIGRATIONS
    assert report["tables"] == TABLES
    assert report["changes"] is False  # makemigrations --check: the models match the migrations
    assert report["commands"] == {"kreuzberg_inbox": "kreuzberg_webhooks.django.inbox"}


@pytest.mark.parametrize("entries", ["old", "new"])
def test_the_include_the_settings_and_the_inbox_work_through_either_path(
    entries: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    report = {"old": old, "new": new}[entries]
    assert report["inbox"] == "DjangoInbox"  # INBOX = "django" finds its app under either entry
    assert report["status"] == 202  # a signed delivery through include("<path>.urls"), written to the inbox
    assert report["queued"] == 1


def test_every_public_name_and_module_of_the_old_paths_is_the_new_one(old: dict[str, Any]) -> None:
    assert old["same_names"] == sorted(django_home.__all__)
    assert len(old["same_modules"]) == 17
    assert {name.rsplit(".", 1)[0] for name in old["same_modules"]} == set(OLD)


def test_each_old_path_warns_once_naming_its_new_home(old: dict[str, Any], new: dict[str, Any]) -> None:
    messages = [warning["message"] for warning in old["warnings"]]
    assert [warning["category"] for warning in old["warnings"]] == ["DeprecationWarning"] * 3
    for (path, home), message in zip(OLD.items(), messages, strict=True):
        assert message.startswith(f"{path} moved to {home}: ")
        assert f"list {home!r} in INSTALLED_APPS" in message
    assert new["warnings"] == []


def test_a_database_migrated_under_the_old_entries_has_nothing_to_apply_under_the_new(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    first = probe("old", database)
    assert first["unapplied_before"] is True  # a new database: migrate --check finds work
    then = probe("new", database, "-W", "error::DeprecationWarning")
    assert then["unapplied_before"] is False
    assert then["applied"] == MIGRATIONS
    assert then["queued"] == 2  # the row written under the old entries is read under the new ones
