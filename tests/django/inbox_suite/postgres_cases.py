"""The Django inbox's table on a real PostgreSQL: the longest value of every field that verifies is kept
whole. Run only through test_inbox_postgres.py, in a process of its own."""

from __future__ import annotations

import os
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.inbox_suite.postgres_settings")

import django

django.setup()

import pytest  # noqa: E402
from django.core.management import call_command  # noqa: E402

from kreuzberg_webhooks.django import build_receiver  # noqa: E402
from kreuzberg_webhooks.django.inbox.models import InboxDelivery  # noqa: E402
from kreuzberg_webhooks.inbox import InboxWorker  # noqa: E402
from kreuzberg_webhooks.protocol import keys  # noqa: E402
from kreuzberg_webhooks.protocol.keys import delivery_key  # noqa: E402
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery  # noqa: E402
from tests.inbox.support import CountingHandler  # noqa: E402

call_command("migrate", verbosity=0)

SECRET = "django-postgres-secret-0123456789abcdef01"
#: The longest scope a resolver's answer gives (a mapping keyed by project).
SCOPE = "p" * keys.MAX_SCOPE_LENGTH


def _resolver(project: Any) -> dict[str, str]:
    return {SCOPE: SECRET}


def _longest_job_event() -> dict[str, Any]:
    # The longest event id, a job id that is not a UUID, and a status nobody knows: "job." + 64.
    return job_event_payload(
        event_id="e" * keys.MAX_EVENT_ID_LENGTH,
        job_id="J" * keys.MAX_JOB_ID_LENGTH,
        status="s" * keys.MAX_STATUS_LENGTH,
    )


def _longest_unknown_event() -> dict[str, Any]:
    # Keyed by its event id: the longest key there is.
    return {
        "event": "u" * keys.MAX_EVENT_TYPE_LENGTH,
        "event_id": "i" * keys.MAX_EVENT_ID_LENGTH,
        "timestamp": int(time.time()),
    }


@pytest.fixture(autouse=True)
def _empty_table() -> None:
    InboxDelivery.objects.all().delete()


def test_the_database_enforces_lengths() -> None:
    from django.db import connection

    assert connection.vendor == "postgresql"


@pytest.mark.parametrize("payload", [_longest_job_event(), _longest_unknown_event()], ids=["job", "unknown"])
def test_the_longest_values_that_verify_are_kept_whole(payload: dict[str, Any]) -> None:
    handler = CountingHandler()
    receiver = build_receiver(secrets=_resolver, store="memory://", inbox="django")
    receiver.add_handler("*", handler)
    body, headers = signed_delivery(SECRET, payload)
    verified = receiver.verifier.verify_scoped(body, headers)
    key = delivery_key(verified.event, verified.scope)
    assert receiver.handle(body, headers).status_code == 202
    row = InboxDelivery.objects.get()
    event = verified.event
    assert (row.key, row.scope, row.event_id, row.event_type) == (key, SCOPE, event.event_id, event.type)
    assert row.job_id == (event.job_id or "")
    assert InboxWorker(receiver).drain() == 1
    assert InboxDelivery.objects.get().state == "done"
    assert sum(handler.calls.values()) == 1


def test_the_longest_values_reach_the_published_bounds() -> None:
    # The cases above hold the bounds themselves, not shorter values.
    job = _longest_job_event()
    unknown = _longest_unknown_event()
    receiver = build_receiver(secrets=_resolver, store="memory://")
    lengths = set()
    for payload in (job, unknown):
        verified = receiver.verifier.verify_scoped(*signed_delivery(SECRET, payload))
        lengths.add(len(delivery_key(verified.event, verified.scope)))
    assert max(lengths) == keys.MAX_KEY_LENGTH
    assert len("job." + job["status"]) <= keys.MAX_EVENT_TYPE_LENGTH


def test_every_column_holds_its_bound() -> None:
    field = InboxDelivery._meta.get_field
    assert field("key").max_length >= keys.MAX_KEY_LENGTH
    assert field("scope").max_length >= keys.MAX_SCOPE_LENGTH
    assert field("event_id").max_length >= keys.MAX_EVENT_ID_LENGTH
    assert field("event_type").max_length >= keys.MAX_EVENT_TYPE_LENGTH
    assert field("job_id").max_length >= keys.MAX_JOB_ID_LENGTH
