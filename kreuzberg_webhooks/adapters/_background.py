"""Tasks that outlive the request that started them: what a cancelled request leaves to settle."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Coroutine
from typing import Any, Generic, TypeVar

from ..lifecycle.drivers import detach

__all__ = ["Outliving", "detach", "start_task"]

T = TypeVar("T")


def start_task(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task running *coroutine*, started at once where asyncio can (``eager_start``, 3.12+)."""
    if sys.version_info >= (3, 12) and loop.get_task_factory() is None:
        return asyncio.Task(coroutine, loop=loop, eager_start=True)
    return loop.create_task(coroutine)


class Outliving(Generic[T]):
    """A coroutine run in a task of its own, which the request waits for but does not take
    down with it when it is cancelled (a timeout middleware, a client gone).

    The task hands its end to a future of the request's own, whose cancellation does not
    reach the task. From Python 3.12 the task starts at once (``eager_start``): its first
    step runs here, already as the task, so a coroutine that ends without suspending (an
    application that answers at once) has ended before :meth:`wait`, with no round of the
    event loop. On 3.11, or under a custom task factory, it starts on the loop's next round
    and waiting costs two rounds, as ``await task`` does (``asyncio.shield`` takes one more).
    The coroutine's return value or exception is kept in :attr:`value` / :attr:`error`,
    never raised by the task.
    """

    __slots__ = ("_woken", "error", "task", "value")

    def __init__(self, coroutine: Awaitable[T]) -> None:
        loop = asyncio.get_running_loop()
        self._woken: asyncio.Future[None] = loop.create_future()
        self.value: T | None = None
        self.error: BaseException | None = None
        self.task = start_task(loop, self._run(coroutine))

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
