"""Run in a fresh interpreter: ``python app_paths_probe.py old|new DATABASE``.

Configures Django with the three apps' ``INSTALLED_APPS`` entries (the old ones,
``kreuzberg_webhooks.adapters.django`` …, or the new ones, ``kreuzberg_webhooks.django`` …),
imports through the same paths, mounts the URLconf include through the same path, then prints
what Django and the package show as one JSON object on stdout (the tests assert on it).
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import warnings
from typing import Any

ENTRIES = {
    "old": ["kreuzberg_webhooks.adapters.django", "kreuzberg_webhooks.inbox.django", "kreuzberg_webhooks.cloud.django"],
    "new": ["kreuzberg_webhooks.django", "kreuzberg_webhooks.django.inbox", "kreuzberg_webhooks.django.cloud"],
}
#: Every module of the old homes and the module it now is.
MODULES = {
    **{f"kreuzberg_webhooks.adapters.django.{name}": f"kreuzberg_webhooks.django.{name}" for name in
       ("apps", "checks", "conf", "inbox_mode", "signals", "store", "urls", "views")},
    **{f"kreuzberg_webhooks.inbox.django.{name}": f"kreuzberg_webhooks.django.inbox.{name}" for name in
       ("admin", "apps", "inbox", "models", "runtime", "signals")},
    **{f"kreuzberg_webhooks.cloud.django.{name}": f"kreuzberg_webhooks.django.cloud.{name}" for name in
       ("apps", "models", "tracker")},
}  # fmt: skip
SECRET = "app-paths-probe-secret-0123456789abcdef"
LABELS = ("kreuzberg_webhooks", "kreuzberg_webhooks_inbox", "kreuzberg_webhooks_cloud")


def main(which: str, database: str) -> dict[str, Any]:
    adapter, inbox, cloud = ENTRIES[which]
    report: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import django
        from django.conf import settings

        settings.configure(
            SECRET_KEY="app-paths-probe",
            ALLOWED_HOSTS=["testserver"],
            INSTALLED_APPS=[
                *("django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes"),
                *("django.contrib.messages", "django.contrib.sessions", adapter, inbox, cloud),
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
            ROOT_URLCONF="__main__",
            USE_TZ=True,
            KREUZBERG_WEBHOOKS={"SECRET": SECRET, "STORE": "memory://", "INBOX": "django"},
        )
        django.setup()
        from django.urls import include, path

        globals()["urlpatterns"] = [path("webhooks/", include(f"{adapter}.urls"))]

        from django.apps import apps
        from django.core.management import call_command, get_commands
        from django.db import connection
        from django.db.migrations.loader import MigrationLoader
        from django.test import Client

        from kreuzberg_webhooks.testing import signed_delivery

        report["labels"] = {label: apps.get_app_config(label).name for label in LABELS}
        report["migrations"] = sorted(
            [label, name] for label, name in MigrationLoader(None).disk_migrations if label in LABELS
        )
        models = [model for label in LABELS for model in apps.get_app_config(label).get_models()]
        report["tables"] = sorted(model._meta.db_table for model in models)
        report["commands"] = {"kreuzberg_inbox": get_commands().get("kreuzberg_inbox")}
        report["unapplied_before"] = _exits(call_command, "migrate", "--check", verbosity=0)
        report["changes"] = _exits(call_command, "makemigrations", "--check", "--dry-run", stdout=io.StringIO())
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT app, name FROM django_migrations")
            report["applied"] = sorted([app, name] for app, name in cursor.fetchall() if app in LABELS)

        old, new = importlib.import_module(adapter), importlib.import_module("kreuzberg_webhooks.django")
        report["same_names"] = sorted(name for name in new.__all__ if getattr(old, name, None) is getattr(new, name))
        report["same_modules"] = sorted(
            old_name for old_name, new_name in MODULES.items()
            if importlib.import_module(old_name) is importlib.import_module(new_name)
        ) if which == "old" else []  # fmt: skip

        receiver = old.get_receiver()
        report["inbox"] = type(receiver.inbox).__name__
        body, headers = signed_delivery(SECRET)
        response = Client().post(
            "/webhooks/kreuzberg", body, content_type="application/json",
            headers={k: v for k, v in headers.items() if k != "Content-Type"},
        )  # fmt: skip
        report["status"] = response.status_code
        report["queued"] = importlib.import_module(f"{inbox}.models").InboxDelivery.objects.count()
    report["warnings"] = [
        {"category": w.category.__name__, "message": str(w.message), "filename": w.filename}
        for w in caught
        if issubclass(w.category, DeprecationWarning) and "kreuzberg_webhooks" in str(w.message)
    ]
    return report


def _exits(command: Any, *args: Any, **options: Any) -> bool:
    """Whether the management command exits non-zero (``--check`` finds something)."""
    try:
        command(*args, **options)
    except SystemExit as stop:
        return bool(stop.code)
    return False


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
