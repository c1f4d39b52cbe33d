"""The two drivers (``kreuzberg_webhooks.lifecycle.drivers``): they send each step's result or throw its error,
count its time, and let work of a cancelled request finish and settle."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from kreuzberg_webhooks.lifecycle.drivers import AWAIT, run_async, run_sync
from kreuzberg_webhooks.lifecycle.flows import DeliveryStep
from kreuzberg_webhooks.lifecycle.outcome import Timings


def flow(log: list[Any]) -> Generator[DeliveryStep, Any, str]:
    log.append(("ran", (yield ("handlers", None))))  # type: ignore[misc]
    try:
        yield ("claim", "k", 1.0)
    except KeyError as error:
        log.append(("thrown", error.args[0]))
    log.append(("handlers", (yield ("handlers", None))))  # type: ignore[misc]
    return "done"


def perform(step: DeliveryStep) -> Any:
    if step[0] == "claim":
        raise KeyError("store down")
    return step[0]


def performers() -> dict[str, Any]:
    """What the sync driver is given: the same answers as :func:`perform`, by step name."""

    def claim(key: str, lease: float) -> Any:
        return perform(("claim", key, lease))

    def handlers(event: Any) -> Any:
        return perform(("handlers", event))

    return {"claim": claim, "handlers": handlers}


def test_the_sync_driver_sends_results_throws_errors_and_counts_each_phase() -> None:
    log: list[Any] = []
    timings = Timings()
    assert run_sync(flow(log), performers(), timings) == "done"
    assert log == [("ran", "handlers"), ("thrown", "store down"), ("handlers", "handlers")]
    assert timings.verify == 0  # verifying is no step: the receiver counts it
    assert timings.store > 0
    assert timings.handlers > 0


def test_the_sync_driver_calls_each_steps_performer_with_the_rest_of_the_step() -> None:
    calls: list[tuple[str, tuple[Any, ...]]] = []

    def steps() -> Generator[DeliveryStep, Any, list[Any]]:
        claimed = yield ("claim", "k", 2.0)
        done = yield ("complete", "k", "t", 9.0)
        return [claimed, done]

    table = {name: (lambda *args, name=name: calls.append((name, args)) or name) for name in ("claim", "complete")}
    assert run_sync(steps(), table) == ["claim", "complete"]  # unobserved: no timings at all
    assert calls == [("claim", ("k", 2.0)), ("complete", ("k", "t", 9.0))]


def test_the_async_driver_dispatches_like_the_sync_one() -> None:
    async def perform_async(step: DeliveryStep) -> Any:
        return perform(step)

    log: list[Any] = []
    assert asyncio.run(run_async(flow(log), perform_async)) == "done"
    assert log == [("ran", "handlers"), ("thrown", "store down"), ("handlers", "handlers")]


def test_the_async_driver_performs_at_once_what_needs_no_await_and_awaits_the_rest() -> None:
    awaited: list[str] = []

    def perform_now(step: DeliveryStep) -> Any:
        return AWAIT if step[0] == "handlers" else perform(step)  # the store's steps: at once

    async def perform_async(step: DeliveryStep) -> Any:
        awaited.append(step[0])
        return perform(step)

    log: list[Any] = []
    timings = Timings()
    assert asyncio.run(run_async(flow(log), perform_async, timings, perform_now=perform_now)) == "done"
    assert log == [("ran", "handlers"), ("thrown", "store down"), ("handlers", "handlers")]
    assert awaited == ["handlers", "handlers"]  # the claim was performed (and failed) at once
    assert timings.store > 0  # a step performed at once still counts in its phase
    assert timings.handlers > 0


def test_work_of_a_cancelled_request_finishes_and_the_flow_settles_after_it() -> None:
    settled: list[str] = []

    def guarded() -> Generator[DeliveryStep, Any, None]:
        yield ("handlers", None)  # type: ignore[misc]
        yield ("complete", "k", "t", 1.0)
        settled.append("complete")

    async def main() -> None:
        gate = asyncio.Event()

        async def handlers() -> None:
            await gate.wait()

        async def perform_async(step: DeliveryStep) -> Any:
            if step[0] == "handlers":
                return asyncio.ensure_future(handlers())  # work in a task of its own
            return None

        request = asyncio.ensure_future(run_async(guarded(), perform_async))
        await asyncio.sleep(0)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert settled == []  # the work still runs: nothing settled yet
        gate.set()
        for _ in range(100):  # poll: the background flow settles once the work ends
            if settled:
                break
            await asyncio.sleep(0)

    asyncio.run(main())
    assert settled == ["complete"]
