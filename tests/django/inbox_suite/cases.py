"""The inbox's Django parts against a real database: run only through test_inbox.py,
in a process of its own (Django's settings can be configured once per process)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.inbox_suite.settings")

import django

django.setup()

import pytest  # noqa: E402
from django.contrib.admin.utils import quote as admin_quote  # noqa: E402
from django.contrib.auth.models import Permission, User  # noqa: E402
from django.core.management import CommandError, call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils.html import escape  # noqa: E402

from kreuzberg_webhooks.django import KreuzbergWebhookView, get_receiver, on, webhook_received  # noqa: E402
from kreuzberg_webhooks.django.inbox.inbox import DjangoInbox  # noqa: E402
from kreuzberg_webhooks.django.inbox.models import InboxDelivery  # noqa: E402
from kreuzberg_webhooks.django.inbox.runtime import embedded_worker  # noqa: E402
from kreuzberg_webhooks.django.inbox.signals import delivery_dead, delivery_failed  # noqa: E402
from kreuzberg_webhooks.inbox import DeliveryState, Inbox  # noqa: E402
from kreuzberg_webhooks.inbox.worker import DeliveryFailure  # noqa: E402
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery  # noqa: E402
from tests.inbox.contract import LEASE, InboxContract, make_entry  # noqa: E402
from tests.inbox.support import CountingHandler  # noqa: E402
from tests.stores.contract import FrozenClock  # noqa: E402

from . import views  # noqa: E402
from .settings import SECRET  # noqa: E402

call_command("migrate", verbosity=0)

HANDLER = CountingHandler()
on()(HANDLER)


@pytest.fixture(autouse=True)
def _empty_table() -> None:
    InboxDelivery.objects.all().delete()
    HANDLER.calls.clear()
    HANDLER.failing = False


class TestDjangoInbox(InboxContract):
    def make_inbox(self, clock: FrozenClock) -> Inbox:
        return DjangoInbox(clock=clock)

    # SQLite serialises writers; the thread races still show one claim per delivery.


def test_the_migration_matches_the_model() -> None:
    out = io.StringIO()
    call_command("makemigrations", "kreuzberg_webhooks_inbox", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_installed_app_strings_keep_their_labels_and_migration_history() -> None:
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    labels = {config.name: config.label for config in apps.get_app_configs()}
    assert labels["kreuzberg_webhooks.django"] == "kreuzberg_webhooks"
    assert labels["kreuzberg_webhooks.django.inbox"] == "kreuzberg_webhooks_inbox"
    loader = MigrationLoader(None, ignore_no_migrations=True)
    names = sorted(name for label, name in loader.disk_migrations if label == "kreuzberg_webhooks_inbox")
    assert names == ["0001_initial", "0002_column_bounds"]
    assert InboxDelivery._meta.db_table == "kreuzberg_webhooks_inbox_inboxdelivery"
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # every installed app
    assert "No changes detected" in out.getvalue()


def _dead_delivery() -> str:
    inbox = DjangoInbox()
    entry = make_entry()
    inbox.enqueue(entry)
    claim = inbox.claim(entry.key, LEASE)
    assert claim is not None
    inbox.fail(claim.key, claim.token, "RuntimeError: downstream is down", None)
    return entry.key


def test_the_view_queues_deliveries_and_the_worker_runs_them_once() -> None:
    client = Client()
    body, headers = signed_delivery(SECRET, job_event_payload())
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    first = client.post("/webhooks/kreuzberg", data=body, content_type="application/json", **extra)
    again = client.post("/webhooks/kreuzberg", data=body, content_type="application/json", **extra)
    assert (first.status_code, json.loads(first.content)) == (202, {"status": "queued"})
    assert (again.status_code, json.loads(again.content)) == (200, {"status": "duplicate"})
    assert HANDLER.calls == {}
    assert embedded_worker().drain() == 1
    assert sum(HANDLER.calls.values()) == 1
    (row,) = InboxDelivery.objects.all()
    assert row.state == "done"
    assert bytes(row.body) == body


def test_the_signals_tell_of_failures_and_of_the_dead() -> None:
    failed: list[DeliveryFailure] = []
    dead: list[DeliveryFailure] = []

    def on_failed(sender: Any, failure: DeliveryFailure, **kwargs: Any) -> None:
        failed.append(failure)

    def on_dead(sender: Any, failure: DeliveryFailure, **kwargs: Any) -> None:
        dead.append(failure)

    delivery_failed.connect(on_failed)
    delivery_dead.connect(on_dead)
    try:
        body, headers = signed_delivery(SECRET, job_event_payload())
        assert get_receiver().handle(body, headers).status_code == 202
        HANDLER.failing = True
        clock = FrozenClock(time.time())
        worker = embedded_worker(clock=clock)
        for _ in range(3):  # INBOX_RETRY: 2 attempts, 1 s apart
            worker.drain()
            clock.advance(2)
            time.sleep(0)
        # The worker's clock moved, the inbox's did not: give the second attempt its due time.
        InboxDelivery.objects.update(next_attempt_at=0)
        worker.drain()
    finally:
        delivery_failed.disconnect(on_failed)
        delivery_dead.disconnect(on_dead)
    assert [f.dead for f in failed] == [False, True]
    assert len(dead) == 1
    assert "downstream is down" in dead[0].error
    assert InboxDelivery.objects.get().state == "dead"


def test_the_admin_lists_filters_and_processes_dead_deliveries_again() -> None:
    User.objects.filter(username="admin").delete()
    User.objects.create_superuser("admin", "admin@example.com", "admin-password-123")
    client = Client()
    assert client.login(username="admin", password="admin-password-123")
    dead = [_dead_delivery() for _ in range(2)]
    DjangoInbox().enqueue(make_entry())
    page = client.get("/admin/kreuzberg_webhooks_inbox/inboxdelivery/?state__exact=dead")
    assert page.status_code == 200
    assert page.content.count(b"RuntimeError: downstream is down") == 2
    answer = client.post(
        "/admin/kreuzberg_webhooks_inbox/inboxdelivery/",
        {"action": "process_again", "_selected_action": dead},
        follow=True,
    )
    assert answer.status_code == 200
    assert b"Queued 2 deliveries again." in answer.content
    states = dict(InboxDelivery.objects.values_list("key", "state"))
    assert [states[key] for key in dead] == ["queued", "queued"]
    assert InboxDelivery.objects.get(key=dead[0]).attempts == 0


def test_the_management_command_lists_retries_and_purges() -> None:
    dead = _dead_delivery()
    out = io.StringIO()
    call_command("kreuzberg_inbox", "list", "--state", "dead", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].split()[1] == "dead"
    out = io.StringIO()
    call_command("kreuzberg_inbox", "retry", "--state", "dead", stdout=out)
    assert out.getvalue().strip() == "queued 1 delivery again"
    assert InboxDelivery.objects.get(key=dead).state == "queued"
    out = io.StringIO()
    call_command("kreuzberg_inbox", "show", dead, stdout=out)
    assert "state:        queued" in out.getvalue()
    out = io.StringIO()
    call_command("kreuzberg_inbox", "purge", "--state", "queued", stdout=out)
    assert out.getvalue().strip() == "purged 1 queued delivery"
    assert DjangoInbox().counts() == dict.fromkeys(DeliveryState, 0)


def _post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    answer = Client().post(path, data=body, content_type="application/json", **extra)
    return answer.status_code, json.loads(answer.content)


def test_in_inbox_mode_the_worker_runs_the_handlers_and_sends_the_signal_once() -> None:
    received: list[tuple[Any, str | None, Any]] = []

    def on_received(sender: Any, event: Any, request: Any, **kwargs: Any) -> None:
        received.append((sender, event.event_id, request))

    webhook_received.connect(on_received)
    try:
        body, headers = signed_delivery(SECRET, job_event_payload())
        event_id = json.loads(body)["event_id"]
        assert _post("/webhooks/kreuzberg", body, headers) == (202, {"status": "queued"})
        assert received == []
        assert embedded_worker().drain() == 1
        assert _post("/webhooks/kreuzberg", body, headers) == (200, {"status": "duplicate"})
        assert embedded_worker().drain() == 0
    finally:
        webhook_received.disconnect(on_received)
    assert received == [(KreuzbergWebhookView, event_id, None)]
    assert sum(HANDLER.calls.values()) == 1
    assert InboxDelivery.objects.get().state == "done"


@pytest.mark.parametrize(("urlconf", "view"), [("mixin_urls", "sync"), ("async_mixin_urls", "async")])
def test_in_inbox_mode_the_worker_runs_the_mounted_views_handle_event_once(urlconf: str, view: str) -> None:
    views.CALLS.clear()
    body, headers = signed_delivery(SECRET, job_event_payload())
    event_id = json.loads(body)["event_id"]
    with override_settings(ROOT_URLCONF=f"tests.django.inbox_suite.{urlconf}"):
        assert _post("/hooks/kreuzberg", body, headers) == (202, {"status": "queued"})
        assert views.CALLS == []
        assert embedded_worker().drain() == 1
        assert _post("/hooks/kreuzberg", body, headers) == (200, {"status": "duplicate"})
        assert embedded_worker().drain() == 0
    assert [(view, event_id, None)] == views.CALLS
    # The view's handle_event is the handler, as when it runs in the request: it does not call
    # the on() handlers, so they do not run either.
    assert HANDLER.calls == {}
    assert InboxDelivery.objects.get().state == "done"


def test_the_inbox_worker_command_runs_the_mounted_views_handle_event(tmp_path: Any) -> None:
    log = tmp_path / "events.log"
    body, headers = signed_delivery(SECRET, job_event_payload())
    event_id = json.loads(body)["event_id"]
    with override_settings(ROOT_URLCONF="tests.django.inbox_suite.mixin_urls"):
        assert _post("/hooks/kreuzberg", body, headers) == (202, {"status": "queued"})
    env = {
        **os.environ,
        "KREUZBERG_TEST_EVENTS_LOG": str(log),
        "KREUZBERG_TEST_URLCONF": "tests.django.inbox_suite.mixin_urls",
    }
    command = [sys.executable, "-m", "django", "kreuzberg_inbox", "worker", "--poll-interval", "0.1"]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while InboxDelivery.objects.get().state != "done" and worker.poll() is None:
            assert time.monotonic() < deadline, "the worker did not process the delivery"
            time.sleep(0.05)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0].decode(errors="replace")
    assert InboxDelivery.objects.get().state == "done", output
    assert log.read_text().splitlines() == [f"sync {event_id}"]
    assert HANDLER.calls == {}


def test_the_inbox_worker_command_leaves_a_handler_still_running_after_its_shutdown_grace(tmp_path: Any) -> None:
    # As the package's own `inbox worker` command: stop claiming on SIGTERM, wait for the running
    # handler at most the grace, then exit; the delivery comes back after its lease.
    log, block = tmp_path / "events.log", tmp_path / "block"
    block.touch()
    body, headers = signed_delivery(SECRET, job_event_payload())
    with override_settings(ROOT_URLCONF="tests.django.inbox_suite.mixin_urls"):
        assert _post("/hooks/kreuzberg", body, headers) == (202, {"status": "queued"})
    env = {
        **os.environ,
        "KREUZBERG_TEST_EVENTS_LOG": str(log),
        "KREUZBERG_TEST_BLOCK_FILE": str(block),
        "KREUZBERG_TEST_URLCONF": "tests.django.inbox_suite.mixin_urls",
    }
    command = [sys.executable, "-m", "django", "kreuzberg_inbox", "worker", "--poll-interval", "0.1"]
    worker = subprocess.Popen([*command, "--shutdown-grace", "0.5"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not log.exists():  # the handler started, and is stuck
            assert worker.poll() is None, worker.communicate()[1]
            assert time.monotonic() < deadline, "the worker did not start the handler"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        err = worker.communicate(timeout=60)[1]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    assert worker.returncode == 0, err
    assert "waiting up to 0.5 s for the running handler" in err
    assert "stopped after a grace of 0.5 s with a handler still running" in err
    assert InboxDelivery.objects.get().state == "running"  # held until its lease ends


CHANGELIST = "/admin/kreuzberg_webhooks_inbox/inboxdelivery/"


def _staff(username: str, *codenames: str) -> Client:
    """A client logged in as a staff user with only these permissions on the inbox's model."""
    User.objects.filter(username=username).delete()
    user = User.objects.create_user(username, password="staff-password-123", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(
            Permission.objects.get(codename=codename, content_type__app_label="kreuzberg_webhooks_inbox")
        )
    client = Client()
    assert client.login(username=username, password="staff-password-123")
    return client


def _admin_client() -> Client:
    User.objects.filter(username="admin").delete()
    User.objects.create_superuser("admin", "admin@example.com", "admin-password-123")
    client = Client()
    assert client.login(username="admin", password="admin-password-123")
    return client


def test_a_view_only_staff_user_cannot_process_deliveries_again() -> None:
    dead = _dead_delivery()
    viewer = _staff("viewer", "view_inboxdelivery")
    page = viewer.get(CHANGELIST)
    assert page.status_code == 200
    assert b"process_again" not in page.content
    viewer.post(CHANGELIST, {"action": "process_again", "_selected_action": [dead]}, follow=True)
    assert InboxDelivery.objects.get(key=dead).state == "dead"
    operator = _staff("operator", "view_inboxdelivery", "change_inboxdelivery")
    assert b"process_again" in operator.get(CHANGELIST).content
    operator.post(CHANGELIST, {"action": "process_again", "_selected_action": [dead]}, follow=True)
    assert InboxDelivery.objects.get(key=dead).state == "queued"


def test_the_admin_never_deletes_a_running_delivery() -> None:
    inbox = DjangoInbox()
    entry = make_entry()
    inbox.enqueue(entry)
    assert inbox.claim(entry.key, LEASE) is not None  # a worker is running it
    running, dead = entry.key, _dead_delivery()
    deleter = _staff("deleter", "view_inboxdelivery", "delete_inboxdelivery")
    confirm = deleter.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [running, dead]})
    assert confirm.status_code == 200
    answer = deleter.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [running, dead], "post": "yes"}, follow=True
    )
    assert answer.status_code == 200
    assert list(InboxDelivery.objects.values_list("key", flat=True)) == [running]
    one = reverse("admin:kreuzberg_webhooks_inbox_inboxdelivery_delete", args=[admin_quote(running)])
    assert deleter.post(one, {"post": "yes"}).status_code == 403
    assert InboxDelivery.objects.get(key=running).state == "running"


def test_the_admin_shows_the_body_as_indented_json_and_escaped() -> None:
    client = _admin_client()
    payload = job_event_payload()
    payload["note"] = "<script>alert(1)</script>"
    body, headers = signed_delivery(SECRET, payload)
    assert get_receiver().handle(body, headers).status_code == 202
    key = InboxDelivery.objects.get().key
    page = client.get(reverse("admin:kreuzberg_webhooks_inbox_inboxdelivery_change", args=[admin_quote(key)]))
    assert page.status_code == 200
    pretty = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    assert escape(pretty).encode() in page.content
    assert b"<script>alert(1)</script>" not in page.content
    assert b'name="body"' not in page.content  # shown, never editable


def test_a_delivery_processed_again_to_done_shows_no_old_error() -> None:
    client = _admin_client()
    body, headers = signed_delivery(SECRET, job_event_payload())
    assert get_receiver().handle(body, headers).status_code == 202
    HANDLER.failing = True
    assert embedded_worker().drain() == 1
    row = InboxDelivery.objects.get()
    assert (row.state, "downstream is down" in (row.last_error or "")) == ("queued", True)
    HANDLER.failing = False
    client.post(CHANGELIST, {"action": "process_again", "_selected_action": [row.key]}, follow=True)
    assert embedded_worker().drain() == 1
    row = InboxDelivery.objects.get()
    assert (row.state, row.last_error) == ("done", None)
    assert b"downstream is down" not in client.get(CHANGELIST).content


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--limit", "0"],
        ["list", "--limit", "-3"],
        ["purge", "--state", "done", "--older-than", "nan"],
        ["purge", "--state", "done", "--older-than", "-5"],
        ["purge", "--state", "done", "--older-than", "inf"],
        ["worker", "--poll-interval", "0"],
        ["worker", "--poll-interval", "nan"],
        ["worker", "--poll-interval", "-1"],
        ["worker", "--shutdown-grace", "-1"],
        ["worker", "--shutdown-grace", "nan"],
    ],
    ids=" ".join,
)
def test_the_management_command_refuses_bad_numbers_with_one_line(argv: list[str]) -> None:
    with pytest.raises(CommandError) as refused:
        call_command("kreuzberg_inbox", *argv, stdout=io.StringIO(), stderr=io.StringIO())
    message = str(refused.value)
    assert message
    assert "\n" not in message
    assert InboxDelivery.objects.count() == 0


def test_the_management_command_line_prints_no_traceback_for_a_bad_limit() -> None:
    command = [sys.executable, "-m", "django", "kreuzberg_inbox", "list", "--limit", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    # argparse's usage, then one line that says what is wrong.
    assert "error: argument --limit: 0 is not a positive whole number" in result.stderr.splitlines()[-1]


def test_the_workers_receiver_keys_deliveries_as_the_configured_one_does() -> None:
    from kreuzberg_webhooks.django.inbox_mode import worker_receiver

    configured, worker = get_receiver(), worker_receiver()
    assert worker is not configured
    shared = ("verifier", "store", "inbox", "lease", "retention", "observers")
    assert all(getattr(worker, name) is getattr(configured, name) for name in shared)
    assert worker_receiver() is worker  # built once per settings and URLconf
    with override_settings(ROOT_URLCONF="tests.django.inbox_suite.mixin_urls"):
        assert worker_receiver() is not worker
