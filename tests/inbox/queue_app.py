"""The application the task-queue tests run: gunicorn serves it, Celery or RQ workers import it.

Environment: ``KREUZBERG_WEBHOOK_SECRET``, ``KREUZBERG_INBOX_URL``, ``KREUZBERG_STORE_URL``,
``KREUZBERG_EVENTS_LOG`` (one line per handler run), ``KREUZBERG_TASK_QUEUE`` (``celery``,
``rq`` or ``dramatiq``), ``KREUZBERG_BROKER_URL`` (Redis) and ``KREUZBERG_QUEUE_NAME``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kreuzberg_webhooks import Event, Receiver
from kreuzberg_webhooks.adapters.wsgi import KreuzbergWebhookMiddleware
from kreuzberg_webhooks.inbox import Inbox, RetryPolicy, open_inbox
from kreuzberg_webhooks.inbox.queues import TaskQueueInbox
from kreuzberg_webhooks.stores import ReplayStore, open_store

PATH = "/webhooks/kreuzberg"
QUEUE_NAME = os.environ["KREUZBERG_QUEUE_NAME"]
BROKER_URL = os.environ["KREUZBERG_BROKER_URL"]

inbox: Inbox = open_inbox(os.environ["KREUZBERG_INBOX_URL"])  # type: ignore[assignment]
store: ReplayStore = open_store(os.environ["KREUZBERG_STORE_URL"])  # type: ignore[assignment]
policy = RetryPolicy(first_delay=0.5, max_delay=2, max_attempts=20, max_age=None)
LEASE = float(os.environ.get("KREUZBERG_TEST_LEASE") or 30)
queue: TaskQueueInbox

if os.environ["KREUZBERG_TASK_QUEUE"] == "celery":
    from celery import Celery

    from kreuzberg_webhooks.inbox.celery import CeleryInbox

    celery_app = Celery("queue_app", broker=BROKER_URL)
    celery_app.conf.update(
        task_default_queue=QUEUE_NAME,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    queue = CeleryInbox(celery_app, inbox, policy=policy, lease=LEASE)
elif os.environ["KREUZBERG_TASK_QUEUE"] == "dramatiq":
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    from kreuzberg_webhooks.inbox.dramatiq import DramatiqInbox

    dramatiq.set_broker(RedisBroker(url=BROKER_URL, namespace=f"dramatiq-{QUEUE_NAME}"))
    queue = DramatiqInbox(inbox, queue_name=QUEUE_NAME, policy=policy, lease=LEASE)
else:
    import redis

    from kreuzberg_webhooks.inbox.rq import RQInbox

    queue = RQInbox(
        redis.Redis.from_url(BROKER_URL),
        inbox,
        import_path="tests.inbox.queue_app:queue",
        queue_name=QUEUE_NAME,
        policy=policy,
        lease=LEASE,
    )

receiver = queue.bind(Receiver(os.environ["KREUZBERG_WEBHOOK_SECRET"], store=store, inbox=queue, lease=LEASE))


@receiver.on()
def record(event: Event) -> None:
    """One line per handler run, appended in one write (lines from many processes never interleave);
    raises while ``KREUZBERG_FAULT_FILE`` exists."""
    block = os.environ.get("KREUZBERG_BLOCK_FILE")
    if block:  # a handler stuck until the file goes: the tests kill its worker meanwhile
        with Path(os.environ["KREUZBERG_EVENTS_LOG"] + ".started").open("a") as log:
            log.write(f"{event.job_id} {os.getpid()}\n")
        while Path(block).exists():
            time.sleep(0.01)
    fault = os.environ.get("KREUZBERG_FAULT_FILE")
    if fault and Path(fault).exists():
        raise RuntimeError("fault drill: the downstream is down")
    with Path(os.environ["KREUZBERG_EVENTS_LOG"]).open("a") as log:
        log.write(f"{event.job_id} {os.getpid()}\n")


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


app = KreuzbergWebhookMiddleware(_not_found, receiver, path=PATH, mode="endpoint")
