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
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from kreuzberg_webhooks import DEFAULT_MAX_BODY_SIZE, Event, Receiver
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
    """Append one JSON line per processed event to ``KREUZBERG_EVENTS_LOG``: a stand-in
    for "record the job, fetch its text later". Raises while ``KREUZBERG_FAULT_FILE`` exists
    (a downstream outage, for fault drills)."""
    fault = os.environ.get("KREUZBERG_FAULT_FILE")
    if fault and Path(fault).exists():
        raise RuntimeError(f"fault drill: {fault} exists, so the handler fails")
    path = os.environ.get("KREUZBERG_EVENTS_LOG")
    if not path:
        return
    line = json.dumps({"event_id": event.event_id, "job_id": str(event.job_id), "status": str(event.status)})
    # One write of one line with O_APPEND: lines from several processes never interleave.
    with _log_lock, Path(path).open("a") as log:
        log.write(line + "\n")
