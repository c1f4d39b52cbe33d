"""What every example receiver needs: its secret, its store, its size limit, and the events log.

Each example imports these so that it stays about its framework.

Environment (read by every example):

- ``KREUZBERG_WEBHOOK_SECRET`` (required): the project's webhook secret.
- ``KREUZBERG_EVENTS_LOG``: append one JSON line per processed event to this file.
- ``KREUZBERG_STORE_URL``: the replay store; default ``sqlite:///kreuzberg-webhooks.sqlite3``
  (a file in the working directory, shared by the workers of one machine).
- ``KREUZBERG_REDIS_URL``: use Redis instead (workers on several machines).
- ``KREUZBERG_DATABASE_URL``: use PostgreSQL instead (``postgresql://…``).
- ``KREUZBERG_MAX_BODY_SIZE``: the largest body accepted, in bytes (default 64 MiB).
- ``KREUZBERG_INBOX=1``: inbox mode — each verified delivery is written to an inbox on the
  same store URL and answered ``202``; an embedded worker runs the handlers afterwards.
- ``KREUZBERG_INBOX_RETRY_DELAY`` (seconds before the first retry, doubling after; default 10),
  ``KREUZBERG_INBOX_RETRY_MAX_DELAY`` (the cap; default 3600) and ``KREUZBERG_INBOX_MAX_ATTEMPTS``
  (then the delivery is dead; default 30): the inbox worker's retry policy.
- ``KREUZBERG_FAULT_FILE``: for fault drills, the handler raises while this file exists.

Kreuzberg Cloud (``POST /extract``, fetching results, reconciliation), when ``KREUZBERG_API_URL`` is set:

- ``KREUZBERG_API_URL`` / ``KREUZBERG_API_KEY``: the jobs API and its key.
- ``KREUZBERG_WEBHOOK_URL``: this app's public webhook URL, sent in each submission's ``webhook`` block
  (with ``KREUZBERG_WEBHOOK_SECRET``).
- ``KREUZBERG_RECONCILE_INTERVAL``: seconds between reconcile passes inside the app (unset: none; use
  ``kreuzberg-webhooks reconcile`` from cron instead). ``KREUZBERG_RECONCILE_AFTER``: the grace period
  in seconds before a submitted job without a webhook is fetched (default 900).
- ``KREUZBERG_TRACKER_URL``: where submitted jobs are tracked (default: the replay store's URL).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kreuzberg_webhooks import DEFAULT_MAX_BODY_SIZE, Event, JobDocument, JobEvent, Receiver, WebhookEvent
from kreuzberg_webhooks.inbox import RetryPolicy, open_inbox
from kreuzberg_webhooks.inbox.worker import InboxWorker
from kreuzberg_webhooks.stores import open_store

_log_lock = threading.Lock()


def secret_from_env() -> str:
    """The webhook secret from ``KREUZBERG_WEBHOOK_SECRET``; refuse to start without one."""
    secret = os.environ.get("KREUZBERG_WEBHOOK_SECRET", "")
    if not secret:
        # An exception, not sys.exit(): gunicorn halts on a worker that fails to
        # boot, but restarts forever a worker that exits.
        raise RuntimeError("KREUZBERG_WEBHOOK_SECRET is not set: refusing to start without a webhook secret")
    return secret


def store_url_from_env() -> str:
    """``KREUZBERG_REDIS_URL`` when set (many workers, many machines), else ``KREUZBERG_DATABASE_URL``
    (PostgreSQL), else ``KREUZBERG_STORE_URL``, else a SQLite file in the working directory, shared
    by all the worker processes of one machine."""
    return (
        os.environ.get("KREUZBERG_REDIS_URL")
        or os.environ.get("KREUZBERG_DATABASE_URL")
        or os.environ.get("KREUZBERG_STORE_URL")
        or "sqlite:///kreuzberg-webhooks.sqlite3"
    )


def max_body_size_from_env() -> int:
    """``KREUZBERG_MAX_BODY_SIZE`` in bytes, else the package's default (64 MiB)."""
    return int(os.environ.get("KREUZBERG_MAX_BODY_SIZE") or DEFAULT_MAX_BODY_SIZE)


def inbox_mode() -> bool:
    """Whether ``KREUZBERG_INBOX=1``: acknowledge once written to the inbox, process afterwards."""
    return os.environ.get("KREUZBERG_INBOX") == "1"


def retry_policy_from_env() -> RetryPolicy:
    """The inbox worker's retry policy from ``KREUZBERG_INBOX_RETRY_DELAY``,
    ``KREUZBERG_INBOX_RETRY_MAX_DELAY`` and ``KREUZBERG_INBOX_MAX_ATTEMPTS``."""
    delay = float(os.environ.get("KREUZBERG_INBOX_RETRY_DELAY") or 10)
    max_delay = float(os.environ.get("KREUZBERG_INBOX_RETRY_MAX_DELAY") or max(3600.0, delay))
    attempts = int(os.environ.get("KREUZBERG_INBOX_MAX_ATTEMPTS") or 30)
    return RetryPolicy(first_delay=delay, max_delay=max_delay, max_attempts=attempts)


def receiver_from_env(*, asynchronous: bool = False) -> Receiver:
    """A receiver configured by the environment above; *asynchronous* opens the store's async flavour
    (for ASGI applications). In inbox mode its inbox lives on the same store URL."""
    url = store_url_from_env()
    return Receiver(
        secret_from_env(),
        store=open_store(url, asynchronous=asynchronous),
        inbox=open_inbox(url, asynchronous=asynchronous) if inbox_mode() else None,
        max_body_size=max_body_size_from_env(),
    )


def worker_from_env(receiver: Receiver) -> InboxWorker | None:
    """In inbox mode, the embedded worker that runs *receiver*'s handlers; else ``None``.

    The caller starts it with the application: ``worker.start()`` (a thread, WSGI) or
    ``lifespan=worker.lifespan`` (a task, ASGI).
    """
    if receiver.inbox is None:
        return None
    return InboxWorker(receiver, policy=retry_policy_from_env(), poll_interval=0.2)


def record(event: Event) -> None:
    """Append one JSON line per processed event of any family to ``KREUZBERG_EVENTS_LOG``: a stand-in
    for "store the job's text". With ``KREUZBERG_API_URL`` set an extraction job's text is fetched
    unless the delivery carries it; ``content_length`` is its length, ``via`` which path brought the event.
    Raises while ``KREUZBERG_FAULT_FILE`` exists (a downstream outage, for fault drills)."""
    fault = os.environ.get("KREUZBERG_FAULT_FILE")
    if fault and Path(fault).exists():
        raise RuntimeError(f"fault drill: {fault} exists, so the handler fails")
    path = os.environ.get("KREUZBERG_EVENTS_LOG")
    if not path:
        return
    # Every family alike: a job, a crawl (job_id is its crawl_job_id), an auto-tune run, and an
    # event this version does not know (no job, no status: keyed by its event_id).
    status = getattr(event, "status", None)
    fields: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "job_id": event.job_id,
        "status": None if status is None else str(status),
    }
    if _cloud is not None:
        _cloud.ensure_reconciling()  # a restarted worker reconciles from its first request on
    if _cloud is not None and isinstance(event, (JobEvent, JobDocument, WebhookEvent)):  # an extraction job
        result, fields["via"] = _cloud.result_and_via(event)
        content = getattr(result, "content", None)
        fields["content_length"] = len(content) if isinstance(content, str) else None
    line = json.dumps(fields)
    # One write of one line with O_APPEND: lines from several processes never interleave.
    with _log_lock, Path(path).open("a") as log:
        log.write(line + "\n")


# -- Kreuzberg Cloud: submit documents, fetch results, reconcile (when KREUZBERG_API_URL is set) -----------


class Cloud:
    """The polling half for an example app: the jobs client, the tracker, the reconciler."""

    def __init__(self, receiver: Receiver, *, asgi: bool = False) -> None:
        # Imported here: the examples run without httpx when KREUZBERG_API_URL is unset.
        from kreuzberg_webhooks.cloud import DEFAULT_GRACE, JobsClient, Reconciler, open_tracker

        self.receiver = receiver
        self.client = JobsClient()  # KREUZBERG_API_URL, KREUZBERG_API_KEY
        self.tracker = open_tracker(os.environ.get("KREUZBERG_TRACKER_URL") or store_url_from_env())
        self.grace = float(os.environ.get("KREUZBERG_RECONCILE_AFTER") or DEFAULT_GRACE)
        self.interval = float(os.environ.get("KREUZBERG_RECONCILE_INTERVAL") or 0)
        self.webhook_url = os.environ.get("KREUZBERG_WEBHOOK_URL") or None
        # Tracks submissions and closes them when their webhook is handled (a receiver observer);
        # its own passes serve WSGI apps, ASGI apps run an AsyncReconciler (asgi_lifespan).
        self.reconciler = Reconciler(receiver, self.client, self.tracker, grace=self.grace)
        self.asgi = asgi  # ASGI apps reconcile in their lifespan (asgi_lifespan), not in a thread
        self._started_in: int | None = None
        self._lock = threading.Lock()

    def result_and_via(self, event: Event) -> tuple[Any, str]:
        """The job's result (fetched only when the delivery carries none) and the path that brought it."""
        from kreuzberg_webhooks.cloud import delivered_via

        return self.client.result_for(event), delivered_via()

    def submit(self, filename: str, data: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
        """Submit one file to ``POST /v1/extract``, track every id, and the answer for the app's client."""
        from kreuzberg_webhooks.cloud import JobsAPIError, PermanentAPIError

        webhook = {"url": self.webhook_url, "secret": secret_from_env()} if self.webhook_url else None
        try:
            submission = self.client.extract([(filename, data, content_type)], webhook=webhook)
        except PermanentAPIError as error:
            return 502, {"error": "rejected by the jobs API", "detail": str(error)}
        except JobsAPIError as error:
            return 503, {"error": "the jobs API is unavailable", "detail": str(error)}
        self.reconciler.track(submission.all_ids)
        self.ensure_reconciling()
        answer: dict[str, Any] = {"job_ids": [str(job_id) for job_id in submission.job_ids]}
        if submission.crawl_job_ids:
            answer["crawl_job_ids"] = [str(job_id) for job_id in submission.crawl_job_ids]
        return 202, answer

    def submit_form(self, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """:meth:`submit` for a raw ``multipart/form-data`` body (frameworks without a form parser)."""
        from kreuzberg_webhooks.emulator.multipart import FormError, parse_form

        try:
            parts = [part for part in parse_form(content_type, body) if part.name == "file"]
        except FormError as error:
            return 400, {"error": f"expected a multipart/form-data upload: {error}"}
        if not parts:
            return 400, {"error": "the form has no 'file' field"}
        part = parts[0]
        return self.submit(part.filename or "upload", part.data, part.content_type)

    def ensure_reconciling(self) -> None:
        """Start this process's reconcile thread (WSGI apps) once, if ``KREUZBERG_RECONCILE_INTERVAL``
        is set. Started on first use, never at import: a thread does not survive gunicorn's fork."""
        if self.asgi or not self.interval or self._started_in == os.getpid():
            return
        with self._lock:
            if self._started_in != os.getpid():
                self.reconciler.start(self.interval)
                self._started_in = os.getpid()

    @contextlib.asynccontextmanager
    async def asgi_lifespan(self) -> AsyncIterator[None]:
        """An ASGI app's lifespan: an ``AsyncReconciler`` pass every interval, on the app's loop (its
        requests go through the sync client in worker threads, the faster of httpx's two pools)."""
        if not self.interval:
            yield
            return
        from kreuzberg_webhooks.cloud import AsyncReconciler

        passes = AsyncReconciler(self.receiver, self.client, self.tracker, grace=self.grace, observe=False)
        passes.start(self.interval)
        try:
            yield
        finally:
            await passes.stop()


_cloud: Cloud | None = None


def cloud_from_env(receiver: Receiver, *, asgi: bool = False) -> Cloud | None:
    """The app's :class:`Cloud` when ``KREUZBERG_API_URL`` is set, else ``None``. *asgi*: the app
    runs :meth:`Cloud.asgi_lifespan` (a task on its loop) instead of a reconcile thread."""
    global _cloud
    if os.environ.get("KREUZBERG_API_URL"):
        _cloud = Cloud(receiver, asgi=asgi)
    return _cloud


def extract_unavailable() -> tuple[int, dict[str, Any]]:
    """The ``POST /extract`` answer when ``KREUZBERG_API_URL`` is not set."""
    return 501, {"error": "set KREUZBERG_API_URL (and KREUZBERG_API_KEY) to submit documents"}
