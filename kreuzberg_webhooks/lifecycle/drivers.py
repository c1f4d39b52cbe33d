"""The two drivers of the lifecycle's flows (:mod:`kreuzberg_webhooks.lifecycle.flows`): sync and async.

A driver sends a flow the result of each step it yields, or throws the step's
error in, until the flow returns. It performs no step itself: the sync driver is
handed the receiver's :data:`Performers` (a callable per step name, called with
the rest of the step), the async one a *perform* coroutine function; each adds
each step's time to the delivery's :class:`~kreuzberg_webhooks.lifecycle.outcome.Timings`
when someone observes, and only then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeAlias, TypeVar

from .flows import DeliveryStep, Flow, phase
from .outcome import Timings

__all__ = ["AWAIT", "Performers", "detach", "run_async", "run_coroutine", "run_sync"]

T = TypeVar("T")

#: What an async driver's *perform_now* answers for a step it cannot perform without
#: awaiting: the driver then awaits ``perform(step)``.
AWAIT: Any = object()


#: What performs each step on the sync path, by the step's name (its first item): called
#: with the rest of the step, ``performers["claim"](key, lease)``.
Performers: TypeAlias = Mapping[str, Callable[..., Any]]


def run_sync(flow: Flow[T], performers: Performers, timings: Timings | None = None) -> T:
    """Drive *flow* in this thread: ``("claim", key, lease)`` is performed by ``performers["claim"](key, lease)``."""
    if timings is not None:
        return _run_timed(flow, performers, timings)
    try:
        step = next(flow)
        while True:
            try:
                value = performers[step[0]](*step[1:])
            except Exception as error:
                step = flow.throw(error)
            else:
                step = flow.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


def _run_timed(flow: Flow[T], performers: Performers, timings: Timings) -> T:
    """:func:`run_sync` for an observed delivery: each step's time is added to its phase."""
    try:
        step = next(flow)
        while True:
            begun = time.perf_counter()
            try:
                value = performers[step[0]](*step[1:])
            except Exception as error:
                timings.add(phase(step), time.perf_counter() - begun)
                step = flow.throw(error)
            else:
                timings.add(phase(step), time.perf_counter() - begun)
                step = flow.send(value)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def run_async(
    flow: Flow[T],
    perform: Callable[[DeliveryStep], Awaitable[Any]],
    timings: Timings | None = None,
    error: Exception | None = None,
    perform_now: Callable[[DeliveryStep], Any] | None = None,
) -> T:
    """Drive *flow* on an event loop: each step is performed by ``await perform(step)``.

    *perform_now*, if given, is tried first: it performs a step that never
    blocks (a call of the in-memory store) at once, with no coroutine and no
    await, and answers :data:`AWAIT` for every other step.

    A step may answer with a future: work running in a task of its own (handlers
    that run in a thread, which cannot be stopped). If the request is cancelled
    while it runs, the work is not interrupted: the flow goes on in the
    background and settles the claim when the work ends, so no claim is released
    while code of its delivery still runs.
    """
    value: Any = None
    while True:
        try:
            step = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value = error = None
        begun = 0.0 if timings is None else time.perf_counter()
        try:
            if perform_now is None or (value := perform_now(step)) is AWAIT:
                value = await perform(step)
                if isinstance(value, asyncio.Future):
                    try:
                        value = await asyncio.shield(value)
                    except asyncio.CancelledError:
                        detach(_continue_after(flow, perform, timings, value, perform_now))
                        raise
        except Exception as failure:
            error = failure
        if timings is not None:
            timings.add(phase(step), time.perf_counter() - begun)


async def _continue_after(
    flow: Flow[Any],
    perform: Callable[[DeliveryStep], Awaitable[Any]],
    timings: Timings | None,
    work: asyncio.Future[Any],
    perform_now: Callable[[DeliveryStep], Any] | None,
) -> None:
    """The rest of a cancelled request's flow, once the work it was waiting for has ended."""
    error: Exception | None = None
    try:
        await work
    except Exception as failure:
        error = failure
    await run_async(flow, perform, timings, error, perform_now)


_background: set[asyncio.Task[Any]] = set()


def detach(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run *coroutine* as a task of its own, which nothing awaits.

    A reference is kept until it ends (the loop keeps only weak ones, so it could
    be collected before it settles); its exception, if any, was logged where the
    claim was settled.
    """
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" at exit


def run_coroutine(awaitable: Awaitable[T]) -> T:
    """Run *awaitable* to completion from sync code.

    With no event loop in this thread, ``asyncio.run``; with one (sync code
    called from a coroutine, a Jupyter kernel), on a fresh loop in another
    thread, since this thread's loop cannot be re-entered. Either way the
    handler runs: a running loop is never a reason to answer 500.
    """

    async def main() -> T:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kreuzberg-webhooks") as pool:
        return pool.submit(asyncio.run, main()).result()
