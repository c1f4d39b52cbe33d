"""What every example receiver needs: its secret, its store, and the events log.

Each example imports these three so that it stays about its framework.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.stores import AsyncReplayStore, ReplayStore, open_store

_log_lock = threading.Lock()


def secret_from_env() -> str:
    """The webhook secret from ``KREUZBERG_WEBHOOK_SECRET``; refuse to start without one."""
    secret = os.environ.get("KREUZBERG_WEBHOOK_SECRET", "")
    if not secret:
        # An exception, not sys.exit(): gunicorn halts on a worker that fails to
        # boot, but restarts forever a worker that exits.
        raise RuntimeError("KREUZBERG_WEBHOOK_SECRET is not set: refusing to start without a webhook secret")
    return secret


def store_from_env(default: str, *, asynchronous: bool = False) -> ReplayStore | AsyncReplayStore:
    """Redis when ``KREUZBERG_REDIS_URL`` is set (many workers, many machines), else *default*.

    *default* is a store URL such as ``sqlite:///webhooks.sqlite3``: SQLite is
    shared by all the worker processes of one machine.
    """
    return open_store(os.environ.get("KREUZBERG_REDIS_URL") or default, asynchronous=asynchronous)


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
