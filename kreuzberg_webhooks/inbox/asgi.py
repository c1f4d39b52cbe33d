"""Run an :class:`~kreuzberg_webhooks.inbox.worker.InboxWorker` with any ASGI application's lifespan.

Starlette and FastAPI take ``lifespan=worker.lifespan``; for any other ASGI
application (or one whose lifespan you do not own), wrap it::

    app = InboxLifespan(app, worker)

The worker's task starts on ``lifespan.startup`` and stops on
``lifespan.shutdown``; an application that does not speak the lifespan
protocol gets it answered for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .worker import InboxWorker

__all__ = ["InboxLifespan"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class InboxLifespan:
    """ASGI middleware: the inbox worker runs as a task for as long as the application does.

    :param app: the ASGI application.
    :param worker: the worker to start on startup and stop on shutdown.
    """

    def __init__(self, app: ASGIApp, worker: InboxWorker) -> None:
        self.app = app
        self.worker = worker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        answered = False
        consumed: list[Message] = []

        async def receive_and_act() -> Message:
            message = await receive()
            consumed.append(message)
            if message["type"] == "lifespan.startup":
                await self.worker.start_async()
            elif message["type"] == "lifespan.shutdown":
                await self.worker.stop_async()
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal answered
            answered = True
            await send(message)

        try:
            await self.app(scope, receive_and_act, send_and_note)
        except Exception:
            if answered:
                raise
        if answered:
            return
        # The application does not speak the lifespan protocol: answer it ourselves,
        # starting with a startup message it may have read before giving up.
        while True:
            message = consumed.pop(0) if consumed else await receive_and_act()
            consumed.clear()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
