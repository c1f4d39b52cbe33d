"""An ASGI application whose embedded inbox worker runs a slow handler, for the shutdown drill.

Served by uvicorn::

    SHUTDOWN_DIR=/tmp/x uvicorn tests.integration.inbox_shutdown_app:app

The handler appends ``start <job>`` to ``$SHUTDOWN_DIR/events.log``, waits until the file
``$SHUTDOWN_DIR/go`` exists, then appends ``end <job>``. The inbox and the replay store are
SQLite files in ``$SHUTDOWN_DIR``.
"""

from __future__ import annotations

import os
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from kreuzberg_webhooks import Event, Receiver, SQLiteStore
from kreuzberg_webhooks.inbox import InboxWorker, SQLiteInbox
from kreuzberg_webhooks.inbox.asgi import InboxLifespan
from tests.inbox.support import SECRET

DIRECTORY = Path(os.environ["SHUTDOWN_DIR"])
LOG = DIRECTORY / "events.log"
GO = DIRECTORY / "go"

receiver = Receiver(
    SECRET, store=SQLiteStore(DIRECTORY / "store.sqlite3"), inbox=SQLiteInbox(DIRECTORY / "inbox.sqlite3")
)


@receiver.on()
def slow(event: Event) -> None:
    with LOG.open("a") as log:
        log.write(f"start {event.job_id}\n")
    deadline = time.monotonic() + 60
    while not GO.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    with LOG.open("a") as log:
        log.write(f"end {event.job_id}\n")


async def nothing_here(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here: InboxLifespan answers it")
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


app = InboxLifespan(nothing_here, InboxWorker(receiver, poll_interval=0.05))
