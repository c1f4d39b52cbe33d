"""A receiver for the Redis fault tests, served by uvicorn: the ASGI middleware over the
async Redis store, configured from the environment like the examples.

- ``KREUZBERG_WEBHOOK_SECRET``, ``KREUZBERG_REDIS_URL`` (required);
- ``KREUZBERG_LEASE_SECONDS`` (default: the receiver's 120 s), so a test can
  watch a lease run out;
- ``KREUZBERG_EVENTS_LOG``: the handler appends ``{"phase": "started", …}``
  when it begins and ``{"phase": "finished", …}`` when it is done, with its pid;
- ``KREUZBERG_HANDLER_GATE``: a file path; while it is set and the file does
  not exist, the handler waits (a slow handler the test releases when it wants).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from kreuzberg_webhooks import Event, Receiver
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware
from kreuzberg_webhooks.lifecycle import DEFAULT_LEASE
from kreuzberg_webhooks.stores.redis import AsyncRedisStore

PATH = "/webhooks/kreuzberg"


def _log(phase: str, event: Event) -> None:
    path = os.environ.get("KREUZBERG_EVENTS_LOG")
    if path:
        line = json.dumps({"phase": phase, "event_id": event.event_id, "pid": os.getpid()})
        with Path(path).open("a") as log:  # one short O_APPEND write per line: processes never interleave
            log.write(line + "\n")


receiver = Receiver(
    os.environ["KREUZBERG_WEBHOOK_SECRET"],
    store=AsyncRedisStore.from_url(os.environ["KREUZBERG_REDIS_URL"]),
    lease=float(os.environ.get("KREUZBERG_LEASE_SECONDS") or DEFAULT_LEASE),
)


@receiver.on()
async def handle(event: Event) -> None:
    _log("started", event)
    gate = os.environ.get("KREUZBERG_HANDLER_GATE")
    while gate and not Path(gate).exists():
        await asyncio.sleep(0.01)
    _log("finished", event)


async def not_found(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


app = KreuzbergWebhookMiddleware(not_found, receiver=receiver, path=PATH)
