"""A guarded webhook route behind a timeout middleware, served by uvicorn for test_guard_timeout.py.

The route is a sync function (it runs in a thread) that waits for a gate file,
records the event, and answers 200. The timeout middleware outside everything
cancels a request that takes longer than ``KREUZBERG_TEST_TIMEOUT`` seconds and
answers 504 itself. ``KREUZBERG_TEST_MODE`` picks the guard: ``fastapi`` (the
dependency with ``init_app``) or ``middleware`` (``KreuzbergWebhookMiddleware``
in guard mode).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request

from kreuzberg_webhooks import Event, Receiver, SQLiteStore
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware
from kreuzberg_webhooks.adapters.fastapi import KreuzbergWebhook

PATH = "/webhooks/kreuzberg"
GATE = Path(os.environ["KREUZBERG_TEST_GATE"])
LOG = Path(os.environ["KREUZBERG_TEST_LOG"])

receiver = Receiver(
    os.environ["KREUZBERG_WEBHOOK_SECRET"],
    store=SQLiteStore(os.environ["KREUZBERG_TEST_STORE"]),
    lease=float(os.environ["KREUZBERG_TEST_LEASE"]),
)


def _work(event: Event) -> dict[str, str]:
    while not GATE.exists():  # the test opens the gate once the request has timed out
        time.sleep(0.01)
    with LOG.open("a", encoding="utf-8") as out:
        out.write(f"{event.event_id}\n")
    return {"status": "processed"}


class Timeout:
    """A pure ASGI timeout middleware, as many applications put in front of everything."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), self.seconds)
        except TimeoutError:
            if not started:
                await send({"type": "http.response.start", "status": 504, "headers": []})
                await send({"type": "http.response.body", "body": b"timed out"})


fastapi_app = FastAPI()
if os.environ["KREUZBERG_TEST_MODE"] == "fastapi":
    webhook = KreuzbergWebhook(receiver)
    webhook.init_app(fastapi_app)

    @fastapi_app.post(PATH)
    def hook(event: Event = Depends(webhook)) -> dict[str, str]:
        return _work(event)

    inner: Any = fastapi_app
else:

    @fastapi_app.post(PATH)
    def guarded(request: Request) -> dict[str, str]:
        return _work(request.state.kreuzberg_event)

    inner = KreuzbergWebhookMiddleware(fastapi_app, receiver=receiver, path=PATH, mode="guard")

app = Timeout(inner, float(os.environ["KREUZBERG_TEST_TIMEOUT"]))
