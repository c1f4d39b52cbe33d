"""What every example receiver needs: its secret, its store, its size limit, and the events log.

Each example imports these so that it stays about its framework.

Environment (read by every example):

- ``KREUZBERG_WEBHOOK_SECRET`` (required): the project's webhook secret.
- ``KREUZBERG_EVENTS_LOG``: append one JSON line per processed event to this file.
- ``KREUZBERG_STORE_URL``: the replay store; default ``sqlite:///kreuzberg-webhooks.sqlite3``
  (a file in the working directory, shared by the workers of one machine).
- ``KREUZBERG_REDIS_URL``: use Redis instead (workers on several machines).
- ``KREUZBERG_MAX_BODY_SIZE``: the largest body accepted, in bytes (default 64 MiB).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from kreuzberg_webhooks import DEFAULT_MAX_BODY_SIZE, Event, Receiver
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
    """``KREUZBERG_REDIS_URL`` when set (many workers, many machines), else ``KREUZBERG_STORE_URL``,
    else a SQLite file in the working directory, shared by all the worker processes of one machine."""
    return (
        os.environ.get("KREUZBERG_REDIS_URL")
        or os.environ.get("KREUZBERG_STORE_URL")
        or "sqlite:///kreuzberg-webhooks.sqlite3"
    )


def max_body_size_from_env() -> int:
    """``KREUZBERG_MAX_BODY_SIZE`` in bytes, else the package's default (64 MiB)."""
    return int(os.environ.get("KREUZBERG_MAX_BODY_SIZE") or DEFAULT_MAX_BODY_SIZE)


def receiver_from_env(*, asynchronous: bool = False) -> Receiver:
    """A receiver configured by the environment above; *asynchronous* opens the store's async flavour
    (for ASGI applications)."""
    return Receiver(
        secret_from_env(),
        store=open_store(store_url_from_env(), asynchronous=asynchronous),
        max_body_size=max_body_size_from_env(),
    )


def record(event: Event) -> None:
    """Append one JSON line per processed event to ``KREUZBERG_EVENTS_LOG``: a stand-in
    for "record the job, fetch its text later"."""
    path = os.environ.get("KREUZBERG_EVENTS_LOG")
    if not path:
        return
    line = json.dumps({"event_id": event.event_id, "job_id": str(event.job_id), "status": str(event.status)})
    # One write of one line with O_APPEND: lines from several processes never interleave.
    with _log_lock, Path(path).open("a") as log:
        log.write(line + "\n")
