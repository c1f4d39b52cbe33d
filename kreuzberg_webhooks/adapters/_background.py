"""Tasks that outlive the request that started them: what a cancelled request leaves to settle."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Generic, TypeVar

from ..lifecycle.drivers import detach

__all__ = ["Outliving", "detach"]

T = TypeVar("T")


class Outliving(Generic[T]):
    """A coroutine run in a task of its own, which the request waits for but does not take
    down with it when it is cancelled (a timeout middleware, a client gone).

    Waiting costs two rounds of the event loop, as ``await task`` does (``asyncio.shield``
    takes one more): the task hands its end to a future of the request's own, whose
    cancellation does not reach the task. The coroutine's return value or exception is
    kept in :attr:`value` / :attr:`error`, never raised by the task.
    """

    __slots__ = ("_woken", "error", "task", "value")

    def __init__(self, coroutine: Awaitable[T]) -> None:
        loop = asyncio.get_running_loop()
        self._woken: asyncio.Future[None] = loop.create_future()
        self.value: T | None = None
        self.error: BaseException | None = None
        self.task = loop.create_task(self._run(coroutine))

    async def _run(self, coroutine: Awaitable[T]) -> None:
        try:
            self.value = await coroutine
        except BaseException as error:  # kept for whoever settles; the task itself ends quietly
            self.error = error
        if not self._woken.done():
            self._woken.set_result(None)

    async def wait(self) -> None:
        """Until the coroutine ends. Cancelling the waiter cancels only the wait."""
        await self._woken

    async def ended(self) -> None:
        """Until the coroutine ends, for code that goes on after the waiter was cancelled."""
        try:
            await self.task
        except asyncio.CancelledError:  # cancelled before it started: it never ran
            if self.error is None:
                self.error = asyncio.CancelledError()
