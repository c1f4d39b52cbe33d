"""A WSGI application that starts its inbox worker thread at import, for ``gunicorn --preload``.

    PRELOAD_DIR=/tmp/x gunicorn --preload --pythonpath . tests.integration.inbox_preload_app:app

Each handler run appends ``<pid> <job>`` to ``$PRELOAD_DIR/events.log``; the inbox and the
replay store are SQLite files in ``$PRELOAD_DIR``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kreuzberg_webhooks import Event, Receiver, SQLiteStore
from kreuzberg_webhooks.inbox import InboxWorker, SQLiteInbox
from tests.inbox.support import SECRET

DIRECTORY = Path(os.environ["PRELOAD_DIR"])

receiver = Receiver(
    SECRET, store=SQLiteStore(DIRECTORY / "store.sqlite3"), inbox=SQLiteInbox(DIRECTORY / "inbox.sqlite3")
)


@receiver.on()
def record(event: Event) -> None:
    with (DIRECTORY / "events.log").open("a") as log:
        log.write(f"{os.getpid()} {event.job_id}\n")


worker = InboxWorker(receiver, poll_interval=0.05)
worker.start()  # at import: in the gunicorn master under --preload


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("204 No Content", [])
    return [b""]
