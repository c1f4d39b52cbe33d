"""InboxLifespan: the worker's task runs from lifespan.startup to lifespan.shutdown, whether or not
the wrapped application speaks the lifespan protocol; other scopes pass straight through."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from kreuzberg_webhooks import Receiver
from kreuzberg_webhooks.inbox import SQLiteInbox
from kreuzberg_webhooks.inbox.asgi import InboxLifespan
from kreuzberg_webhooks.inbox.worker import InboxWorker
from tests.inbox.support import SECRET

Message = MutableMapping[str, Any]


async def no_lifespan_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("this app knows nothing of lifespan")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def lifespan_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "lifespan"
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


@pytest.mark.parametrize("app", [no_lifespan_app, lifespan_app], ids=["app-without-lifespan", "app-with-lifespan"])
def test_the_worker_runs_between_startup_and_shutdown(tmp_path: Path, app: Any) -> None:
    worker = InboxWorker(Receiver(SECRET), SQLiteInbox(tmp_path / "inbox.sqlite3"), poll_interval=0.05)
    wrapped = InboxLifespan(app, worker)

    async def scenario() -> tuple[list[str], bool, bool]:
        inbound: asyncio.Queue[Message] = asyncio.Queue()
        sent: list[str] = []

        async def receive() -> Message:
            return await inbound.get()

        async def send(message: Message) -> None:
            sent.append(message["type"])

        task = asyncio.create_task(wrapped({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
        await inbound.put({"type": "lifespan.startup"})
        async with asyncio.timeout(10):
            while "lifespan.startup.complete" not in sent:
                await asyncio.sleep(0.01)
        running = worker.running
        await inbound.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 10)
        return sent, running, worker.running

    sent, running_after_startup, running_after_shutdown = asyncio.run(scenario())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert running_after_startup is True
    assert running_after_shutdown is False


def test_other_scopes_pass_straight_through(tmp_path: Path) -> None:
    worker = InboxWorker(Receiver(SECRET), SQLiteInbox(tmp_path / "inbox.sqlite3"))
    wrapped = InboxLifespan(no_lifespan_app, worker)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(wrapped({"type": "http", "method": "GET", "path": "/"}, receive, send))
    assert sent[0]["status"] == 204
    assert not worker.running
