"""Trusted events (``Receiver.process`` and ``process_async``): the same answers on both paths,
one thread hand-off per delivery on a blocking store, and a cancelled caller that never
leaves a claim to a thread that still runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import (
    Claim,
    ClaimState,
    ConfigurationError,
    DeliveryReport,
    Event,
    MemoryStore,
    Outcome,
    Receiver,
    ReplayWindow,
    Verifier,
)
from kreuzberg_webhooks.events import parse_event
from kreuzberg_webhooks.protocol.keys import delivery_key
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.support import NOW, SECRET, DownStore

WINDOW = ReplayWindow(max_age=600, max_future=60)


class BlockingStore(MemoryStore):
    """A sync store that blocks (as SQLite, Redis and PostgreSQL do): each call records its thread."""

    nonblocking = False

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.failing = failing
        self.calls: list[tuple[str, int]] = []

    def claim(self, key: str, lease: float) -> Claim:
        self.calls.append(("claim", threading.get_ident()))
        return super().claim(key, lease)

    def complete(self, key: str, token: str, retention: float) -> None:
        self.calls.append(("complete", threading.get_ident()))
        if "complete" in self.failing:
            raise ConnectionError("lost the connection while completing")
        super().complete(key, token, retention)

    def release(self, key: str, token: str) -> None:
        self.calls.append(("release", threading.get_ident()))
        super().release(key, token)


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, counting the work handed to it (``asyncio.to_thread``)."""

    def __init__(self) -> None:
        super().__init__(4)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def make_receiver(store: Any, **options: Any) -> Receiver:
    return Receiver(SECRET, store=store, clock=lambda: NOW, window=WINDOW, **options)


def event(**overrides: Any) -> Event:
    return parse_event(job_event_payload(now=NOW, **overrides))


def run_counted(main: Callable[[], Coroutine[Any, Any, Any]]) -> tuple[Any, int, int]:
    """Run *main* on a fresh loop whose default executor counts hand-offs: its result, the
    hand-offs, and the loop's thread."""
    executor = CountingExecutor()

    async def counted() -> Any:
        asyncio.get_running_loop().set_default_executor(executor)
        return await main()

    result = asyncio.run(counted())
    return result, executor.submitted, threading.get_ident()


# -- one hand-off per delivery on a blocking store --------------------------------------------------


def test_a_blocking_store_and_plain_handlers_take_one_thread_hand_off_per_delivery() -> None:
    store = BlockingStore()
    receiver = make_receiver(store)
    handled: list[int] = []
    receiver.on()(lambda event: handled.append(threading.get_ident()))
    receiver.on("job.completed")(lambda event: handled.append(threading.get_ident()))
    trusted = event()

    async def main() -> tuple[Outcome, Outcome]:
        return await receiver.process_async(trusted), await receiver.process_async(trusted)

    (first, again), handed_off, loop_thread = run_counted(main)
    assert (first.reason, again.reason) == ("processed", "duplicate")
    assert handed_off == 2  # one per delivery: not one for the claim, the handlers and the completion each
    assert [name for name, _ in store.calls] == ["claim", "complete", "claim"]
    first_delivery = {thread for _, thread in store.calls[:2]} | set(handled)
    assert len(first_delivery) == 1  # claim, handlers and completion in the same thread
    assert loop_thread not in first_delivery


@pytest.mark.parametrize(("handlers", "handed_off"), [(0, 0), (1, 1), (3, 1)])
def test_the_in_memory_store_hands_plain_handlers_to_one_thread_and_nothing_else(
    handlers: int, handed_off: int
) -> None:
    receiver = make_receiver(MemoryStore())
    ran: list[int] = []
    for _ in range(handlers):
        receiver.on()(lambda event: ran.append(threading.get_ident()))
    outcome, counted, loop_thread = run_counted(lambda: receiver.process_async(event()))
    assert outcome.reason == "processed"
    assert counted == handed_off  # with no handler the store's calls stay on the loop: no thread at all
    assert len(ran) == handlers
    assert loop_thread not in ran


def test_a_coroutine_handler_keeps_the_event_loop_path() -> None:
    store = BlockingStore()
    receiver = make_receiver(store)
    where: dict[str, int] = {}
    receiver.on()(lambda event: where.__setitem__("plain", threading.get_ident()))

    @receiver.on()
    async def on_loop(event: Event) -> None:
        where["coroutine"] = threading.get_ident()

    outcome, _, loop_thread = run_counted(lambda: receiver.process_async(event()))
    assert outcome.reason == "processed"
    assert where["coroutine"] == loop_thread
    assert where["plain"] != loop_thread


def test_an_awaitable_a_plain_handler_returns_is_awaited_on_the_callers_loop() -> None:
    receiver = make_receiver(BlockingStore())
    loops: list[asyncio.AbstractEventLoop] = []

    async def later(event: Event) -> None:
        loops.append(asyncio.get_running_loop())

    receiver.on()(lambda event: later(event))  # a plain function returning a coroutine

    async def main() -> tuple[Outcome, asyncio.AbstractEventLoop]:
        return await receiver.process_async(event()), asyncio.get_running_loop()

    outcome, caller = asyncio.run(main())
    assert outcome.reason == "processed"
    assert loops == [caller]


@pytest.mark.parametrize(
    ("failing", "reason", "status", "settled"),
    [
        (frozenset(), "processed", 200, "complete"),
        (frozenset({"handler"}), "handler_error", 500, "release"),
        (frozenset({"complete"}), "processed", 200, "complete"),  # a refused "done" still answers 2xx
    ],
)
def test_a_blocking_store_settles_each_ending_in_the_handlers_thread(
    failing: frozenset[str], reason: str, status: int, settled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kreuzberg_webhooks.lifecycle.flows.COMPLETE_RETRY_DELAYS", (0.0,))
    store = BlockingStore(failing)
    reports: list[DeliveryReport] = []
    receiver = make_receiver(store, on_outcome=reports.append)
    threads: list[int] = []

    def handler(event: Event) -> None:
        threads.append(threading.get_ident())
        if "handler" in failing:
            raise RuntimeError("handler failed on purpose")

    receiver.on()(handler)
    outcome, handed_off, _ = run_counted(lambda: receiver.process_async(event(), via="inbox"))
    assert (outcome.status_code, outcome.reason) == (status, reason)
    assert handed_off == 1
    assert store.calls[-1][0] == settled
    assert {thread for _, thread in store.calls} == set(threads)
    assert [(report.reason, report.via, report.mode) for report in reports] == [(reason, "inbox", "process")]
    assert reports[0].store_seconds > 0
    assert reports[0].handler_seconds > 0


def test_a_store_that_is_down_answers_store_unavailable_and_runs_no_handler() -> None:
    receiver = make_receiver(DownStore())
    ran: list[Event] = []
    receiver.on()(ran.append)
    outcome, handed_off, _ = run_counted(lambda: receiver.process_async(event()))
    assert (outcome.status_code, outcome.reason) == (503, "store_unavailable")
    assert handed_off == 1
    assert ran == []


def test_a_cancelled_caller_leaves_the_thread_to_finish_and_settle_its_claim() -> None:
    store = BlockingStore()
    reports: list[DeliveryReport] = []
    receiver = make_receiver(store, on_outcome=reports.append)
    started, proceed = threading.Event(), threading.Event()
    ran: list[Event] = []

    def slow(event: Event) -> None:
        started.set()
        proceed.wait(10)
        ran.append(event)

    receiver.on()(slow)
    trusted = event()
    key = delivery_key(trusted, "")

    async def scenario() -> tuple[str, str]:
        caller = asyncio.ensure_future(receiver.process_async(trusted))
        await asyncio.to_thread(started.wait, 10)
        caller.cancel()  # a worker stopped after its grace, a cancelled reconcile pass
        with pytest.raises(asyncio.CancelledError):
            await caller
        while_running = (await receiver.process_async(trusted)).reason
        proceed.set()
        async with asyncio.timeout(10):  # the handler ends in its thread, which then settles the claim
            while MemoryStore.claim(store, key, 1).state is not ClaimState.DONE:
                await asyncio.sleep(0.01)
        return while_running, (await receiver.process_async(trusted)).reason

    assert asyncio.run(scenario()) == ("in_flight", "duplicate")
    assert len(ran) == 1
    assert [report.reason for report in reports] == ["in_flight", "processed", "duplicate"]


# -- both paths answer alike ------------------------------------------------------------------------

HANDLER_KINDS = st.lists(st.sampled_from(["plain", "coroutine", "plain-failing", "coroutine-failing"]), max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=HANDLER_KINDS, blocking=st.booleans(), observed=st.booleans(), status=st.sampled_from(["ok", "partial"]))
def test_process_and_process_async_agree_on_every_mix_of_handlers_and_stores(
    kinds: list[str], blocking: bool, observed: bool, status: str
) -> None:
    def run(path: str) -> tuple[Any, ...]:
        store = BlockingStore() if blocking else MemoryStore()
        reports: list[DeliveryReport] = []
        receiver = make_receiver(store, on_outcome=reports.append if observed else None)
        ran: list[int] = []
        for number, kind in enumerate(kinds):
            receiver.on()(_handler(kind, number, ran))
        trusted = event(status="partial_success") if status == "partial" else event()
        if path == "sync":
            outcomes = [receiver.process(trusted, scope="s"), receiver.process(trusted, scope="s")]
        else:

            async def both() -> list[Outcome]:
                return [
                    await receiver.process_async(trusted, scope="s"),
                    await receiver.process_async(trusted, scope="s"),
                ]

            outcomes = asyncio.run(both())
        state = MemoryStore.claim(store, delivery_key(trusted, "s"), 1).state
        answers = [(outcome.status_code, outcome.reason, outcome.headers) for outcome in outcomes]
        return answers, ran, state, [(report.reason, report.scope, report.mode) for report in reports]

    assert run("async") == run("sync")


def _handler(kind: str, number: int, ran: list[int]) -> Callable[[Event], Any]:
    failing = kind.endswith("failing")
    if kind.startswith("coroutine"):

        async def coroutine(event: Event) -> None:
            ran.append(number)
            if failing:
                raise RuntimeError("handler failed on purpose")

        return coroutine

    def plain(event: Event) -> None:
        ran.append(number)
        if failing:
            raise RuntimeError("handler failed on purpose")

    return plain


# -- what the sync entry points need ------------------------------------------------------------------


class AsyncInbox:
    """An inbox whose enqueue is a coroutine function (as AsyncSQLiteInbox's is)."""

    def __init__(self) -> None:
        self.entries: list[Any] = []

    async def enqueue(self, entry: Any) -> bool:
        self.entries.append(entry)
        return True


async def _resolver(scope: str | None) -> str | None:
    return SECRET


def test_process_needs_only_a_sync_store_while_handle_still_refuses_an_async_inbox() -> None:
    receiver = make_receiver(MemoryStore(), inbox=AsyncInbox())
    ran: list[Event] = []
    receiver.on()(ran.append)
    receiver.require_sync_store()
    assert receiver.process(event(), via="inbox").reason == "processed"  # trusted: never enqueued
    assert len(ran) == 1
    with pytest.raises(ConfigurationError, match="inbox is async"):
        receiver.require_sync()
    with pytest.raises(ConfigurationError, match="inbox is async"):
        receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW)))


def test_process_runs_with_an_async_secret_resolver_while_handle_still_refuses_it() -> None:
    receiver = Receiver(_resolver, store=MemoryStore(), clock=lambda: NOW, window=WINDOW)
    assert receiver.process(event()).reason == "processed"  # trusted: never verified
    with pytest.raises(ConfigurationError, match="secret resolver"):
        receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW)))


class _UnusedAsyncStore:
    """An async replay store that the sync entry points must refuse before calling it."""

    async def claim(self, key: str, lease: float) -> Claim:
        raise AssertionError("never called")

    async def complete(self, key: str, token: str, retention: float) -> None:
        raise AssertionError("never called")

    async def release(self, key: str, token: str) -> None:
        raise AssertionError("never called")


def test_an_async_store_is_refused_by_process_and_by_every_sync_entry_point() -> None:
    receiver = make_receiver(_UnusedAsyncStore())
    for check in (receiver.require_sync_store, receiver.require_sync, lambda: receiver.process(event())):
        with pytest.raises(ConfigurationError, match="process_async"):
            check()


@pytest.mark.parametrize("change", ["store", "inbox", "verifier"])
def test_a_receiver_made_async_after_it_was_built_refuses_sync_deliveries_before_touching_anything(
    change: str,
) -> None:
    """What the sync entry points need is checked against the receiver as it is at each delivery,
    not as it was built: an async store, inbox or secret resolver set later is refused before
    anything is claimed, enqueued or run."""
    store = MemoryStore()
    receiver = make_receiver(store)
    ran: list[Event] = []
    receiver.on()(ran.append)
    assert receiver.handle(*signed_delivery(SECRET, job_event_payload(now=NOW, job_id="before"))).ok
    inbox = AsyncInbox()
    if change == "store":
        receiver.store = _UnusedAsyncStore()
    elif change == "inbox":
        receiver.inbox = inbox
    else:
        receiver.verifier = Verifier(_resolver, clock=lambda: NOW, window=WINDOW)
    delivery = signed_delivery(SECRET, job_event_payload(now=NOW, job_id="after"))
    for entry_point in (receiver.handle, receiver.begin):
        with pytest.raises(ConfigurationError):
            entry_point(*delivery)
    assert len(ran) == 1
    assert len(store) == 1
    assert not inbox.entries


# -- handle_async verifies inline when it can ----------------------------------------------------------


def _called(scenario: Callable[[], Any]) -> set[str]:
    """The names of the functions and coroutines *scenario* entered in this thread."""
    names: set[str] = set()

    def profile(frame: FrameType, what: str, arg: Any) -> None:
        if what == "call":
            names.add(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        scenario()
    finally:
        sys.setprofile(None)
    return names


@pytest.mark.parametrize("resolver_kind", ["sync", "async"])
def test_handle_async_awaits_verification_only_for_an_async_secret_resolver(resolver_kind: str) -> None:
    reports: list[DeliveryReport] = []
    secrets: Any = SECRET if resolver_kind == "sync" else _resolver
    receiver = Receiver(secrets, store=MemoryStore(), clock=lambda: NOW, window=WINDOW, on_outcome=reports.append)
    body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
    outcomes: list[Outcome] = []
    called = _called(lambda: outcomes.append(asyncio.run(receiver.handle_async(body, headers))))
    assert outcomes[0].reason == "processed"
    assert ("verify_scoped_async" in called) is (resolver_kind == "async")
    assert ("_verify_async" in called) is (resolver_kind == "async")
    assert reports[0].verify_seconds > 0
