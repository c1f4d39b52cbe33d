"""A Django app whose handler is a ``webhook_received`` receiver, and a job whose webhook never came:
the reconciler brings it there exactly once, as the ready view would. Run only through
test_reconcile.py, in a process of its own (Django's settings are configured once per process)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.reconcile_suite.settings")

import django

django.setup()

import httpx  # noqa: E402
import pytest  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from kreuzberg_webhooks import Event  # noqa: E402
from kreuzberg_webhooks.cloud import (  # noqa: E402
    AsyncJobsClient,
    AsyncReconciler,
    Backoff,
    JobsClient,
    MemoryTracker,
    Reconciler,
    delivered_via,
    open_tracker,
)
from kreuzberg_webhooks.django import (  # noqa: E402
    AsyncKreuzbergWebhookView,
    KreuzbergWebhookView,
    get_receiver,
    webhook_received,
)
from kreuzberg_webhooks.django.cloud.models import TrackedJobRow  # noqa: E402
from kreuzberg_webhooks.emulator import Emulator  # noqa: E402
from kreuzberg_webhooks.testing import signed_delivery, webhook_event_payload  # noqa: E402
from kreuzberg_webhooks.testing.pytest_plugin import post_with_django  # noqa: E402

from . import views  # noqa: E402
from .settings import SECRET  # noqa: E402

call_command("migrate", verbosity=0)

KEY = "django-reconcile-key-3c1f"
FAST = Backoff(initial=0.02, cap=0.2)
RECHECK = Backoff(initial=0.05, cap=0.2)
WEBHOOK_PATH = "/webhooks/kreuzberg"


class Heard:
    """The app's one handler: a ``webhook_received`` receiver (no ``on()`` handler is registered)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, str, Any, str]] = []
        self._lock = threading.Lock()

    def __call__(self, sender: Any, event: Event, request: Any = None, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((sender, str(event.job_id), event.type, request, delivered_via()))


@pytest.fixture
def heard() -> Iterator[Heard]:
    TrackedJobRow.objects.all().delete()
    receiver = Heard()
    webhook_received.connect(receiver, weak=False, dispatch_uid="reconcile-suite")
    try:
        yield receiver
    finally:
        webhook_received.disconnect(dispatch_uid="reconcile-suite")


def wait_until(condition: Callable[[], bool], timeout: float, step: Callable[[], Any]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step()
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Passes:
    """A reconciler on the configured receiver and the Django tracker, as a project builds one:
    ``sync`` a :class:`Reconciler`; ``async`` an :class:`AsyncReconciler` whose GETs run in its
    threads (a job whose handlers are sync is settled there, through ``process``); ``async-loop``
    one on an ``httpx.AsyncClient`` of the caller's (every job is settled on the event loop, through
    ``process_async``). ``other`` is a second one with a tracker of its own: another process that
    never saw the job closed."""

    def __init__(self, kind: str, base_url: str) -> None:
        self.kind = kind
        self.loop = None if kind == "sync" else asyncio.new_event_loop()
        self.http: httpx.AsyncClient | None = None
        if kind == "sync":
            self.client: Any = JobsClient(KEY, base_url, backoff=FAST)
            make: Any = Reconciler
        else:
            if kind == "async-loop":
                self.http = httpx.AsyncClient(base_url=base_url)
            self.client = AsyncJobsClient(KEY, base_url, backoff=FAST, client=self.http)
            make = AsyncReconciler
        options = {"grace": 0.01, "recheck": RECHECK}
        self.reconciler = make(get_receiver(), self.client, open_tracker("django://"), **options)
        self.other = make(get_receiver(), self.client, MemoryTracker(), observe=False, **options)

    def _run(self, result: Any) -> Any:
        return result if self.loop is None else self.loop.run_until_complete(result)

    def closed(self, job_id: str) -> bool:
        """Whether the reconciler has settled the job (processed it, or found it processed)."""
        entry = self.reconciler.tracker.get(job_id)
        return entry is not None and entry.closed

    def track(self, job_id: str, *, other: bool = False) -> None:
        self._run((self.other if other else self.reconciler).track([job_id], delay=0))

    def run_once(self, *, other: bool = False) -> Any:
        return self._run((self.other if other else self.reconciler).run_once())

    def close(self) -> None:
        if self.loop is None:
            self.client.close()
            return
        self._run(self.client.aclose())
        if self.http is not None:
            self._run(self.http.aclose())
        self.loop.close()


def late_webhook(job_id: str) -> Any:
    """The job's own ``job.completed`` webhook, arriving after the reconciler processed the job."""
    delivery = signed_delivery(SECRET, webhook_event_payload(job_id=job_id))
    return post_with_django(Client(), WEBHOOK_PATH, delivery)


#: The URLconf mounting each flavour of the ready view at /webhooks/kreuzberg, and its class.
READY_VIEWS = {
    "sync view": ("tests.django.urls", KreuzbergWebhookView),
    "async view": ("tests.django.reconcile_suite.async_urls", AsyncKreuzbergWebhookView),
}


@pytest.mark.parametrize("view", list(READY_VIEWS))
@pytest.mark.parametrize("kind", ["sync", "async", "async-loop"])
def test_a_job_whose_webhook_never_came_reaches_the_signal_receiver_once(heard: Heard, kind: str, view: str) -> None:
    urlconf, view_class = READY_VIEWS[view]
    with override_settings(ROOT_URLCONF=urlconf), Emulator(KEY, job_delay=0) as cloud:  # no webhook URL
        passes = Passes(kind, cloud.base_url)
        try:
            [job_id] = cloud.submit([("a.txt", b"a webhook that never came")])
            passes.track(job_id)
            assert wait_until(lambda: passes.closed(job_id), 20, step=passes.run_once), "never reconciled"
            again = passes.run_once()  # the job is closed: nothing to check
            passes.track(job_id, other=True)  # another reconciler, whose tracker never saw it closed
            elsewhere = passes.run_once(other=True)
        finally:
            passes.close()
        late = late_webhook(job_id)
    assert heard.calls == [(view_class, job_id, "job.completed", None, "reconcile")]
    assert again.checked == 0
    assert (elsewhere.checked, elsewhere.processed, elsewhere.duplicates) == (1, [], 1)
    assert late.status_code == 200
    assert late.json()["status"] == "duplicate"


def test_a_job_its_webhook_brought_is_not_sent_again_by_the_reconciler(heard: Heard) -> None:
    with Emulator(KEY, job_delay=0) as cloud:
        passes = Passes("sync", cloud.base_url)
        try:
            [job_id] = cloud.submit([("b.txt", b"a webhook that came")])
            passes.track(job_id, other=True)
            answer = late_webhook(job_id)  # the webhook, through the ready view
            report = passes.run_once(other=True)
        finally:
            passes.close()
    assert answer.status_code == 200
    assert answer.json()["status"] == "processed"
    assert len(heard.calls) == 1
    assert heard.calls[0][1:] == (job_id, "job.completed", heard.calls[0][3], "webhook")
    assert heard.calls[0][3] is not None  # the view sends the request
    assert (report.checked, report.processed, report.duplicates) == (1, [], 1)


def test_the_reconciler_runs_the_handle_event_of_the_project_s_own_mounted_view(heard: Heard) -> None:
    views.handled.clear()
    with override_settings(ROOT_URLCONF="tests.django.reconcile_suite.views"), Emulator(KEY, job_delay=0) as cloud:
        passes = Passes("sync", cloud.base_url)
        try:
            [job_id] = cloud.submit([("c.txt", b"a view of its own")])
            passes.track(job_id)
            assert wait_until(lambda: passes.closed(job_id), 20, step=passes.run_once), "never reconciled"
            passes.track(job_id, other=True)
            elsewhere = passes.run_once(other=True)
        finally:
            passes.close()
    assert views.handled == [(job_id, None, "reconcile")]  # what a webhook at that view would have run
    assert heard.calls == []  # its handle_event sends no signal, as for a webhook
    assert elsewhere.duplicates == 1


def test_with_several_different_webhook_views_a_reconciled_job_runs_the_ready_view_s_way(
    heard: Heard, caplog: pytest.LogCaptureFixture
) -> None:
    views.handled.clear()
    with override_settings(ROOT_URLCONF="tests.django.reconcile_suite.two_views_urls"), Emulator(KEY) as cloud:
        passes = Passes("sync", cloud.base_url)
        try:
            [job_id] = cloud.submit([("d.txt", b"two views")])
            passes.track(job_id)
            assert wait_until(lambda: passes.closed(job_id), 20, step=passes.run_once), "never reconciled"
        finally:
            passes.close()
    assert heard.calls == [(KreuzbergWebhookView, job_id, "job.completed", None, "reconcile")]
    assert views.handled == []
    warnings = [r for r in caplog.records if r.name == "kreuzberg_webhooks.django" and r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "ready view's handle_event" in warnings[0].getMessage()
