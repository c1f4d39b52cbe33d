"""The app the reconcile-task tests' Celery and RQ workers import.

Environment: ``KREUZBERG_API_URL``, ``KREUZBERG_API_KEY``, ``KREUZBERG_TEST_DIR`` (the replay store,
the tracker and the events log live there) and ``KREUZBERG_BROKER_URL`` (Redis).
"""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

from kreuzberg_webhooks import Event, Receiver, SQLiteStore
from kreuzberg_webhooks.cloud import JobsClient, Reconciler, SQLiteTracker
from kreuzberg_webhooks.cloud.tasks import celery_reconcile_task

HERE = Path(os.environ["KREUZBERG_TEST_DIR"])
BROKER_URL = os.environ["KREUZBERG_BROKER_URL"]

receiver = Receiver("tasks-app-secret-0123456789abcdef012345", store=SQLiteStore(HERE / "replay.sqlite3"))


@receiver.on()
def record(event: Event) -> None:
    with (HERE / "events.log").open("a") as log:
        log.write(f"{event.job_id} {os.getpid()}\n")


reconciler = Reconciler(receiver, JobsClient(), SQLiteTracker(HERE / "tracker.sqlite3"), grace=1, observe=False)

celery_app = Celery("tasks_app", broker=BROKER_URL, backend=BROKER_URL)
celery_app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)
reconcile = celery_reconcile_task(celery_app, reconciler)
