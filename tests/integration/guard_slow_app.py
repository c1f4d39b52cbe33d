"""A guarded Starlette route slower than the lease, served by uvicorn for test_guard_renewal.py.

The route (``KreuzbergWebhookMiddleware`` in guard mode in front of it) notes
that it started, waits for a gate file the test creates, records the event and
answers 200. The lease (``KREUZBERG_TEST_LEASE``) is a fraction of a second, so
the route outlives it many times over while the test delivers the event again.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kreuzberg_webhooks import Receiver, SQLiteStore
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware

PATH = "/webhooks/kreuzberg"
GATE = Path(os.environ["KREUZBERG_TEST_GATE"])
STARTED = Path(os.environ["KREUZBERG_TEST_STARTED"])
LOG = Path(os.environ["KREUZBERG_TEST_LOG"])

receiver = Receiver(
    os.environ["KREUZBERG_WEBHOOK_SECRET"],
    store=SQLiteStore(os.environ["KREUZBERG_TEST_STORE"]),
    lease=float(os.environ["KREUZBERG_TEST_LEASE"]),
)


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(f"{line}\n")


async def kreuzberg(request: Request) -> JSONResponse:
    event = request.state.kreuzberg_event
    _append(STARTED, event.event_id)
    while not GATE.exists():  # the test opens the gate once it has delivered the event again
        await asyncio.sleep(0.01)
    _append(LOG, event.event_id)
    return JSONResponse({"status": "processed"})


app = Starlette(routes=[Route(PATH, kreuzberg, methods=["POST"])])
app.add_middleware(KreuzbergWebhookMiddleware, receiver=receiver, path=PATH, mode="guard")
