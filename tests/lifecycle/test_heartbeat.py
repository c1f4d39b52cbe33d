"""A claim is kept while its handlers run (``lifecycle/heartbeat.py``): a handler slower than
the lease is not run a second time by a delivery that comes meanwhile, on any path; a claim
whose handlers ended, or whose process died, still runs out.

Leases here are a fraction of a second of real time: the tests wait for leases to run out,
not for a race, and every wait for the handler's own progress has a deadline.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import (
    Claim,
    ClaimState,
    ConfigurationError,
    Delivery,
    Event,
    MemoryStore,
    Outcome,
    Receiver,
    SQLiteStore,
)
from kreuzberg_webhooks.events import parse_event
from kreuzberg_webhooks.lifecycle.heartbeat import Heartbeat
from kreuzberg_webhooks.lifecycle.receiver import DEFAULT_GUARD_RENEWAL, DEFAULT_LEASE
from kreuzberg_webhooks.protocol.keys import delivery_key
from kreuzberg_webhooks.stores import open_store
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.support import SECRET

pytest_plugins = ["tests.redis_server"]

LEASE = 0.3
#: Long enough for a lease that is not renewed to run out twice over.
OUTLIVE = 3 * LEASE
DEADLINE = 10.0


def new_event() -> Event:
    return parse_event(job_event_payload(job_id=str(uuid.uuid4())))


class SlowHandler:
    """A handler that runs until the test lets it end, counting its runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.started = threading.Event()
        self.finish = threading.Event()

    def __call__(self, event: Event) -> None:
        self.runs += 1
        self.started.set()
        assert self.finish.wait(DEADLINE), "the test never let the handler end"


def slow_receiver(store: Any) -> tuple[Receiver, SlowHandler]:
    receiver = Receiver(SECRET, store=store, lease=LEASE)
    handler = SlowHandler()
    receiver.add_handler("*", handler)
    return receiver, handler


def run_in_thread(call: Callable[[], Outcome]) -> tuple[threading.Thread, list[Outcome]]:
    answers: list[Outcome] = []
    thread = threading.Thread(target=lambda: answers.append(call()))
    thread.start()
    return thread, answers


async def second_delivery(delivery: Coroutine[Any, Any, Outcome], runs: list[Event]) -> Outcome:
    """The answer to a second delivery of a running event: at once, unless it runs the handler
    again, which then waits, as the first does, for the test to let it end."""
    answer = asyncio.ensure_future(delivery)
    deadline = time.monotonic() + DEADLINE
    while not answer.done() and len(runs) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert len(runs) == 1, "the second delivery ran the handler again"
    return await answer


def stores(tmp_path: Path) -> dict[str, Any]:
    return {"memory": MemoryStore(), "sqlite": SQLiteStore(str(tmp_path / "replay.sqlite3"))}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_trusted_event_whose_handler_outlives_the_lease_runs_once(kind: str, tmp_path: Path) -> None:
    receiver, handler = slow_receiver(stores(tmp_path)[kind])
    event = new_event()
    first, answers = run_in_thread(lambda: receiver.process(event, via="inbox"))
    assert handler.started.wait(DEADLINE)
    time.sleep(OUTLIVE)  # the lease has run out three times over: only a renewal keeps the claim
    again = receiver.process(event, via="reconcile")
    assert (again.status_code, again.reason) == (429, "in_flight")
    handler.finish.set()
    first.join(DEADLINE)
    assert [a.reason for a in answers] == ["processed"]
    assert receiver.process(event, via="reconcile").reason == "duplicate"
    assert handler.runs == 1


def test_a_webhook_whose_handler_outlives_the_lease_runs_once() -> None:
    receiver, handler = slow_receiver(MemoryStore())
    body, headers = signed_delivery(SECRET, job_id=str(uuid.uuid4()))
    first, answers = run_in_thread(lambda: receiver.handle(body, headers))
    assert handler.started.wait(DEADLINE)
    time.sleep(OUTLIVE)
    retry = receiver.handle(body, headers)  # the sender's retry after its 30 s time-out
    assert (retry.status_code, retry.reason) == (429, "in_flight")
    handler.finish.set()
    first.join(DEADLINE)
    assert [a.reason for a in answers] == ["processed"]
    assert receiver.handle(body, headers).reason == "duplicate"
    assert handler.runs == 1


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_an_async_callers_handler_in_a_thread_keeps_its_claim(kind: str, tmp_path: Path) -> None:
    """``process_async``: a blocking store runs the delivery in one thread, the memory store on the loop."""
    receiver, handler = slow_receiver(stores(tmp_path)[kind])
    event = new_event()

    async def main() -> tuple[Outcome, Outcome]:
        first = asyncio.ensure_future(receiver.process_async(event, via="inbox"))
        assert await asyncio.to_thread(handler.started.wait, DEADLINE)
        await asyncio.sleep(OUTLIVE)
        again = await receiver.process_async(event, via="reconcile")
        handler.finish.set()
        return await first, again

    done, again = asyncio.run(main())
    assert (done.reason, again.reason) == ("processed", "in_flight")
    assert handler.runs == 1


async def twice_with_a_coroutine_handler(store: Any) -> tuple[str, str, int]:
    """One event processed by a slow coroutine handler, and again once its lease has run out
    three times over: both answers' reasons and how many times the handler ran."""
    receiver = Receiver(SECRET, store=store, lease=LEASE)
    runs: list[Event] = []
    finish = asyncio.Event()

    @receiver.on()
    async def slow(event: Event) -> None:
        runs.append(event)
        await finish.wait()

    event = new_event()
    first = asyncio.ensure_future(receiver.process_async(event, via="inbox"))
    while not runs:
        await asyncio.sleep(0.01)
    await asyncio.sleep(OUTLIVE)
    again = await second_delivery(receiver.process_async(event, via="reconcile"), runs)
    finish.set()
    return (await first).reason, again.reason, len(runs)


def test_a_coroutine_handler_keeps_its_claim() -> None:
    answers = asyncio.run(asyncio.wait_for(twice_with_a_coroutine_handler(MemoryStore()), DEADLINE))
    assert answers == ("processed", "in_flight", 1)


def test_a_claim_whose_handler_raised_is_released_and_no_longer_renewed() -> None:
    store = MemoryStore()
    receiver = Receiver(SECRET, store=store, lease=LEASE)

    @receiver.on()
    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    event = new_event()
    assert receiver.process(event).reason == "handler_error"
    heartbeat = receiver._heartbeat
    assert heartbeat is not None
    assert len(heartbeat) == 0
    assert store.claim(delivery_key(event), LEASE).state is ClaimState.NEW


def test_a_held_claim_is_renewed_and_a_dropped_one_runs_out() -> None:
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    held, dropped = store.claim("held", LEASE), store.claim("dropped", LEASE)
    assert held.token is not None
    assert dropped.token is not None
    heartbeat.hold("held", held.token, LEASE)
    heartbeat.hold("dropped", dropped.token, LEASE)
    heartbeat.drop("dropped", dropped.token)
    time.sleep(OUTLIVE)
    assert store.claim("held", LEASE).state is ClaimState.IN_FLIGHT
    assert store.claim("dropped", LEASE).state is ClaimState.NEW
    heartbeat.drop("held", held.token)


def assert_a_new_claim_is_renewed(heartbeat: Heartbeat, store: MemoryStore) -> None:
    """A claim held now (its thread ended before) is renewed past its lease."""
    again = store.claim("k2", LEASE)
    assert again.token is not None
    heartbeat.hold("k2", again.token, LEASE)
    time.sleep(OUTLIVE)
    assert store.claim("k2", LEASE).state is ClaimState.IN_FLIGHT
    heartbeat.drop("k2", again.token)


def test_the_thread_ends_when_no_claim_is_held_and_starts_again_with_the_next() -> None:
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)

    def beating() -> bool:
        return heartbeat._thread is not None and heartbeat._thread.is_alive()

    claim = store.claim("k", LEASE)
    assert claim.token is not None
    heartbeat.hold("k", claim.token, LEASE)
    assert beating()
    heartbeat.drop("k", claim.token)
    deadline = time.monotonic() + DEADLINE
    while beating() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not beating()
    assert_a_new_claim_is_renewed(heartbeat, store)


def test_with_the_default_lease_an_idle_thread_ends_within_seconds_not_a_third_of_the_lease() -> None:
    # A receiver's heartbeat thread used to sleep out a third of the lease (40 s by default)
    # before it saw that no claim was held: a test suite that builds many receivers kept a
    # hundred or more idle threads alive, each waited for by every fork().
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    claim = store.claim("k", DEFAULT_LEASE)
    assert claim.token is not None
    heartbeat.hold("k", claim.token, DEFAULT_LEASE)
    thread = heartbeat._thread
    assert thread is not None
    heartbeat.drop("k", claim.token)
    thread.join(DEADLINE)
    assert not thread.is_alive()
    # ... and one holding a claim still renews it on the lease's own rhythm, not every second.
    renewals: list[float] = []

    def renew(key: str, token: str, lease: float) -> bool:
        renewals.append(time.monotonic())
        return store.renew(key, token, lease)

    counting = Heartbeat(renew)
    again = store.claim("k2", 6.0)
    assert again.token is not None
    counting.hold("k2", again.token, 6.0)  # renewed every 2 s
    time.sleep(4.5)
    counting.drop("k2", again.token)
    assert len(renewals) == 2, renewals


def test_a_claim_whose_event_loop_closed_is_let_go_quietly(caplog: pytest.LogCaptureFixture) -> None:
    # An async store's claim is renewed on its loop; a loop closed with the claim still held (a
    # cancelled run, asyncio.run ending) can renew nothing again: the claim runs out within its
    # lease instead of a warning every third of it for as long as the process lives.
    store = MemoryStore()

    async def renew(key: str, token: str, lease: float) -> bool:
        return store.renew(key, token, lease)

    heartbeat = Heartbeat(renew)
    claim = store.claim("k", LEASE)
    assert claim.token is not None
    loop = asyncio.new_event_loop()
    heartbeat.hold("k", claim.token, LEASE, loop)
    loop.close()
    deadline = time.monotonic() + DEADLINE
    while len(heartbeat) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(heartbeat) == 0
    assert "not renewed" not in caplog.text
    time.sleep(OUTLIVE)
    assert store.claim("k", LEASE).state is ClaimState.NEW


def test_a_shorter_lease_held_later_is_renewed_in_time() -> None:
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    long = store.claim("long", 60.0)
    short = store.claim("short", LEASE)
    assert long.token is not None
    assert short.token is not None
    heartbeat.hold("long", long.token, 60.0)  # the thread waits 20 s ...
    heartbeat.hold("short", short.token, LEASE)  # ... until a lease of 0.3 s is held
    time.sleep(OUTLIVE)
    assert store.claim("short", LEASE).state is ClaimState.IN_FLIGHT
    heartbeat.drop("long", long.token)
    heartbeat.drop("short", short.token)


def test_a_shorter_lease_held_while_the_thread_idles_is_renewed_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # The thread looks every 3 s here (1 s by default): it sees the drop at 3 s and idles, waiting
    # for the next claim, until 6 s; the short claim is held at 4.5 s, in the middle of that.
    monkeypatch.setattr("kreuzberg_webhooks.lifecycle.heartbeat._IDLE", 3.0)
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    long = store.claim("long", 60.0)
    assert long.token is not None
    heartbeat.hold("long", long.token, 60.0)  # renewed every 20 s ...
    heartbeat.drop("long", long.token)  # ... and none held now
    time.sleep(4.5)
    short = store.claim("short", LEASE)
    assert short.token is not None
    heartbeat.hold("short", short.token, LEASE)  # a lease of 0.3 s, held before the thread ended
    time.sleep(OUTLIVE)
    assert store.claim("short", LEASE).state is ClaimState.IN_FLIGHT
    heartbeat.drop("short", short.token)


def test_a_claim_taken_over_is_reported_lost_and_no_longer_renewed(caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    store = MemoryStore(clock=lambda: clock[0])
    heartbeat = Heartbeat(store.renew)
    first = store.claim("k", LEASE)
    assert first.token is not None
    clock[0] += 2 * LEASE  # this process stalled past its lease: another took the event over
    second = store.claim("k", LEASE)
    assert second.state is ClaimState.NEW
    with caplog.at_level(logging.WARNING, logger="kreuzberg_webhooks"):
        heartbeat.hold("k", first.token, LEASE)
        deadline = time.monotonic() + DEADLINE
        while len(heartbeat) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(heartbeat) == 0
    assert "claim lost while its handlers ran (key=k)" in caplog.text
    assert second.token is not None
    assert store.renew("k", second.token, LEASE)  # the new holder's claim, untouched


def test_a_store_without_renew_gets_no_heartbeat_and_still_processes() -> None:
    class OldStore:
        """A user's store written before ``renew`` existed."""

        def __init__(self) -> None:
            self.inner = MemoryStore()

        def claim(self, key: str, lease: float) -> Claim:
            return self.inner.claim(key, lease)

        def complete(self, key: str, token: str, retention: float) -> None:
            self.inner.complete(key, token, retention)

        def release(self, key: str, token: str) -> None:
            self.inner.release(key, token)

    receiver = Receiver(SECRET, store=OldStore())
    receiver.add_handler("*", lambda event: None)
    assert receiver._heartbeat is None
    assert receiver.process(new_event()).reason == "processed"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_forked_child_holds_none_of_its_parents_claims() -> None:
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    claim = store.claim("k", 60.0)
    assert claim.token is not None
    heartbeat.hold("k", claim.token, 60.0)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it holds and whether a thread runs for it
        os.write(write, f"{len(heartbeat)} {heartbeat._thread is None}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as child:
        seen = child.read()
    os.waitpid(pid, 0)
    heartbeat.drop("k", claim.token)
    assert seen == "0 True"


@pytest.mark.parametrize("asynchronous", [False, True], ids=["RedisStore", "AsyncRedisStore"])
def test_a_redis_claim_is_renewed_while_a_coroutine_handler_runs(redis_url: str, asynchronous: bool) -> None:
    """A real Redis: the sync store's claim renewed from the heartbeat's thread, the async
    store's on the event loop it was made on."""

    async def main() -> tuple[str, str, int]:
        store = open_store(redis_url, asynchronous=asynchronous)
        try:
            return await twice_with_a_coroutine_handler(store)
        finally:
            if asynchronous:
                await store.aclose()  # type: ignore[union-attr]
            else:
                store.close()  # type: ignore[union-attr]

    answers = asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert answers == ("processed", "in_flight", 1)


def test_claims_held_while_the_thread_starts_and_ends_are_all_renewed() -> None:
    """Many threads hold and drop claims of random lengths on a short lease, so the heartbeat's
    thread keeps ending (nothing held) and starting again: no claim held past its lease is lost."""
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    lease = 0.06
    lost: list[str] = []
    rng = random.Random(20261207)
    lengths = [[rng.choice([0.0, 0.001, 0.02, 0.1, 0.2]) for _ in range(12)] for _ in range(4)]

    def worker(n: int) -> None:
        for i, length in enumerate(lengths[n]):
            key = f"k{n}-{i}"
            claim = store.claim(key, lease)
            assert claim.token is not None
            heartbeat.hold(key, claim.token, lease)
            time.sleep(length)
            if store.claim(key, lease).state is not ClaimState.IN_FLIGHT:  # another request's look
                lost.append(key)
            heartbeat.drop(key, claim.token)
            store.complete(key, claim.token, 60.0)
            time.sleep(rng.choice([0.0, 0.05, 0.15]))  # now and then long enough for the thread to end

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert lost == []
    assert len(heartbeat) == 0


# -- what the inbox worker needs of it: a stop, and its own name in the log and the thread list --


def _beating(heartbeat: Heartbeat) -> bool:
    thread = heartbeat._thread
    return thread is not None and thread.is_alive()


def test_stop_ends_an_idle_thread_now_and_the_next_claim_starts_another() -> None:
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    claim = store.claim("k", 60.0)
    assert claim.token is not None
    heartbeat.hold("k", claim.token, 60.0)  # the thread waits 20 s before it looks again
    thread = heartbeat._thread
    assert thread is not None
    heartbeat.drop("k", claim.token)
    heartbeat.stop(join=True)
    assert not thread.is_alive()  # joined: it did not wait out its 20 s
    assert not _beating(heartbeat)
    assert_a_new_claim_is_renewed(heartbeat, store)


def test_stop_without_join_ends_an_idle_thread_soon() -> None:
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    claim = store.claim("k", 60.0)
    assert claim.token is not None
    heartbeat.hold("k", claim.token, 60.0)
    thread = heartbeat._thread
    assert thread is not None
    heartbeat.drop("k", claim.token)
    heartbeat.stop(join=False)
    thread.join(DEADLINE)  # well within the 20 s it would otherwise wait
    assert not thread.is_alive()


def test_stop_leaves_a_held_claim_renewed() -> None:
    # A handler still running after a stopping worker's grace keeps its claim until it ends.
    store = MemoryStore()
    heartbeat = Heartbeat(store.renew)
    claim = store.claim("k", LEASE)
    assert claim.token is not None
    heartbeat.hold("k", claim.token, LEASE)
    heartbeat.stop(join=True)
    assert _beating(heartbeat)
    time.sleep(OUTLIVE)
    assert store.claim("k", LEASE).state is ClaimState.IN_FLIGHT
    heartbeat.drop("k", claim.token)


def test_stop_before_any_claim_does_nothing() -> None:
    heartbeat = Heartbeat(MemoryStore().renew)
    heartbeat.stop(join=True)
    assert heartbeat._thread is None


def test_the_log_lines_and_the_thread_carry_the_name_given(caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    store = MemoryStore(clock=lambda: clock[0])
    failing = [True]

    def renew(key: str, token: str, lease: float) -> bool:
        if failing[0]:
            failing[0] = False
            raise ConnectionError("down at renewal")
        return store.renew(key, token, lease)

    heartbeat = Heartbeat(renew, claim="inbox lease", thread="kreuzberg-inbox-heartbeat")
    first = store.claim("k", LEASE)
    assert first.token is not None
    with caplog.at_level(logging.WARNING, logger="kreuzberg_webhooks"):
        heartbeat.hold("k", first.token, LEASE)
        thread = heartbeat._thread
        assert thread is not None
        assert thread.name == "kreuzberg-inbox-heartbeat"
        deadline = time.monotonic() + DEADLINE
        while "not renewed" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        clock[0] += 2 * LEASE  # then another took the claim over
        assert store.claim("k", LEASE).state is ClaimState.NEW
        while len(heartbeat) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(heartbeat) == 0
    assert "inbox lease not renewed (key=k): down at renewal" in caplog.text
    assert "inbox lease lost while its handlers ran (key=k)" in caplog.text
    assert "replay store claim" not in caplog.text


def test_by_default_it_names_a_replay_store_claim(caplog: pytest.LogCaptureFixture) -> None:
    heartbeat = Heartbeat(MemoryStore().renew)
    with caplog.at_level(logging.WARNING, logger="kreuzberg_webhooks"):
        heartbeat.hold("k", "not-a-token", LEASE)  # nothing holds k: the first renewal answers False
        thread = heartbeat._thread
        assert thread is not None
        assert thread.name == "kreuzberg-webhooks-heartbeat"
        deadline = time.monotonic() + DEADLINE
        while len(heartbeat) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert "replay store claim lost while its handlers ran (key=k): another delivery may run them" in caplog.text


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), st.integers(0, 2)),
        st.tuples(st.just("hold_for"), st.integers(0, 2), st.sampled_from([60.0, 90.0])),
        st.tuples(st.just("drop"), st.integers(0, 2)),
        st.tuples(st.just("stop"), st.booleans()),
        st.tuples(st.just("wait"), st.sampled_from([30.0, 60.0])),  # the clock moves on: limits end on the dot
        st.tuples(st.just("renew")),  # a round of renewals comes up
    ),
    max_size=16,
)


@settings(max_examples=200, deadline=None)
@given(steps=_STEPS)
@example(steps=[("hold_for", 0, 60.0), ("hold", 1), ("wait", 60.0), ("renew",), ("renew",)])
def test_any_run_of_holds_drops_limits_and_stops_renews_exactly_what_is_held_inside_its_limit(
    steps: list[tuple[Any, ...]],
) -> None:
    """A model of the heartbeat: a claim is renewed only while it is held and, if it was held
    with a limit, before its limit; one past its limit is dropped; a claim held has a thread."""
    now = [0.0]
    renewed: list[str] = []

    def renew(key: str, token: str, lease: float) -> bool:
        renewed.append(key)
        return True

    # A lease of 60 s: the thread's own rounds come every 20 s of real time, never during a run.
    heartbeat = Heartbeat(renew, clock=lambda: now[0])
    held: dict[str, float] = {}  # key -> the clock's time its renewal ends (inf: none)
    for operation, *arguments in steps:
        if operation in ("hold", "hold_for", "drop"):
            key = f"k{arguments[0]}"
        if operation == "hold":
            heartbeat.hold(key, "t", 60.0)
            held[key] = float("inf")
        elif operation == "hold_for":
            heartbeat.hold_for(key, "t", 60.0, arguments[1])
            held[key] = now[0] + arguments[1]
        elif operation == "drop":
            heartbeat.drop(key, "t")
            held.pop(key, None)
        elif operation == "wait":
            now[0] += arguments[0]
        elif operation == "renew":
            renewed.clear()
            heartbeat._renew_held()
            assert sorted(renewed) == sorted(key for key, until in held.items() if until > now[0])
            held = {key: until for key, until in held.items() if until > now[0]}
        else:
            heartbeat.stop(join=arguments[0])
            if arguments[0] and not held:  # joined: no thread is left
                assert heartbeat._thread is None or not heartbeat._thread.is_alive()
        assert len(heartbeat) == len(held)
        if held:  # every claim held has a thread to renew it (an ending one may be taking over)
            deadline = time.monotonic() + DEADLINE
            while not _beating(heartbeat) and time.monotonic() < deadline:
                time.sleep(0.001)
            assert _beating(heartbeat)
    for key in held:
        heartbeat.drop(key, "t")
    heartbeat.stop(join=True)
    assert not _beating(heartbeat)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_fork_on_the_event_loop_does_not_wait_for_a_renewal_that_waits_for_the_loop() -> None:
    """An async store's claim is renewed by its event loop: a fork() made on that loop while the
    renewal waits for it goes ahead at once (it waited the renewal's whole 30 s time-out)."""
    requested = threading.Event()

    async def renewed() -> bool:
        return True

    def renew(key: str, token: str, lease: float) -> Any:
        requested.set()
        return renewed()

    heartbeat = Heartbeat(renew)

    async def main() -> float:
        heartbeat.hold("k", "t", 0.06, asyncio.get_running_loop())
        assert requested.wait(DEADLINE)  # on the loop: the renewal now waits for it
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        heartbeat.drop("k", "t")
        return time.monotonic() - started

    assert asyncio.run(main()) < DEADLINE


# -- guard mode: the application's own view runs between begin and settle ------------------


def guarded_receiver(store: Any, **options: Any) -> tuple[Receiver, list[Event]]:
    """A receiver in guard mode, with a handler that counts what endpoint mode would run."""
    receiver = Receiver(SECRET, store=store, lease=LEASE, **options)
    handled: list[Event] = []
    receiver.add_handler("*", handled.append)
    return receiver, handled


def begun(answer: Delivery | Outcome) -> Delivery:
    assert isinstance(answer, Delivery), f"not claimed: {answer!r}"
    return answer


def refused_as(answer: Delivery | Outcome) -> tuple[int, str]:
    assert isinstance(answer, Outcome), f"claimed again: {answer!r}"
    return answer.status_code, answer.reason


def held(receiver: Receiver) -> int:
    heartbeat = receiver._heartbeat
    assert heartbeat is not None
    return len(heartbeat)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_guarded_view_that_outlives_the_lease_keeps_its_claim_until_it_is_settled(kind: str, tmp_path: Path) -> None:
    receiver, handled = guarded_receiver(stores(tmp_path)[kind])
    body, headers = signed_delivery(SECRET, job_id=str(uuid.uuid4()))
    delivery = begun(receiver.begin(body, headers))
    assert held(receiver) == 1
    time.sleep(OUTLIVE)  # the view runs for three leases: only a renewal keeps the claim
    assert refused_as(receiver.begin(body, headers)) == (429, "in_flight")
    assert refused_as(receiver.handle(body, headers)) == (429, "in_flight")
    assert refused_as(receiver.process(delivery.event, scope=delivery.scope)) == (429, "in_flight")
    assert receiver.settle(delivery, 200) is None  # the view answered 200: the event is done
    assert held(receiver) == 0
    assert refused_as(receiver.handle(body, headers)) == (200, "duplicate")
    assert refused_as(receiver.begin(body, headers)) == (200, "duplicate")
    assert handled == []  # the view was the event's one run


@pytest.mark.parametrize("asynchronous", [False, True], ids=["RedisStore", "AsyncRedisStore"])
def test_a_guarded_view_on_redis_keeps_its_claim_until_it_is_settled(redis_url: str, asynchronous: bool) -> None:
    """``begin_async``/``settle_async`` on a real Redis: the sync store's claim renewed from the
    heartbeat's thread, the async store's on the event loop it was made on."""

    async def main() -> list[tuple[int, str]]:
        store = open_store(redis_url, asynchronous=asynchronous)
        try:
            receiver, handled = guarded_receiver(store)
            body, headers = signed_delivery(SECRET, job_id=str(uuid.uuid4()))
            delivery = begun(await receiver.begin_async(body, headers))
            await asyncio.sleep(OUTLIVE)
            answers = [
                refused_as(await receiver.begin_async(body, headers)),
                refused_as(await receiver.handle_async(body, headers)),
                refused_as(await receiver.process_async(delivery.event, scope=delivery.scope)),
            ]
            assert await receiver.settle_async(delivery, 204) is None
            assert held(receiver) == 0
            answers.append(refused_as(await receiver.handle_async(body, headers)))
            assert handled == []
            return answers
        finally:
            if asynchronous:
                await store.aclose()  # type: ignore[union-attr]
            else:
                store.close()  # type: ignore[union-attr]

    answers = asyncio.run(asyncio.wait_for(main(), DEADLINE))
    assert answers == [(429, "in_flight")] * 3 + [(200, "duplicate")]


@pytest.mark.parametrize("how", ["status", "error", "no answer"])
def test_a_guard_claim_settled_without_a_2xx_is_released_and_no_longer_renewed(how: str) -> None:
    receiver, _ = guarded_receiver(MemoryStore())
    body, headers = signed_delivery(SECRET, job_id=str(uuid.uuid4()))
    delivery = begun(receiver.begin(body, headers))
    assert held(receiver) == 1
    if how == "status":
        assert receiver.settle(delivery, 503) is None  # the view's own answer stands
    elif how == "error":
        answer = receiver.settle(delivery, None, RuntimeError("the view raised"))
        assert answer is not None
        assert (answer.status_code, answer.reason) == (500, "handler_error")
    else:
        assert receiver.settle(delivery, None) is not None
    assert held(receiver) == 0
    begun(receiver.begin(body, headers))  # released: the sender's retry is processed


def test_a_cancelled_guard_claim_is_kept_for_its_lease_and_then_runs_out() -> None:
    receiver, _ = guarded_receiver(MemoryStore())
    body, headers = signed_delivery(SECRET, job_id=str(uuid.uuid4()))
    delivery = begun(receiver.begin(body, headers))
    time.sleep(OUTLIVE)  # renewed while the view ran
    assert refused_as(receiver.begin(body, headers)) == (429, "in_flight")
    assert receiver.settle(delivery, None, cancelled=True) is None
    assert held(receiver) == 0
    assert refused_as(receiver.begin(body, headers)) == (429, "in_flight")  # kept: its code may still run
    time.sleep(OUTLIVE)  # no longer renewed: the lease runs out
    begun(receiver.begin(body, headers))


async def _begin_and_cancel_async(receiver: Receiver, body: bytes, headers: dict[str, str]) -> list[str]:
    delivery = begun(await receiver.begin_async(body, headers))
    await asyncio.sleep(OUTLIVE)
    reasons = [refused_as(await receiver.begin_async(body, headers))[1]]
    await receiver.settle_async(delivery, None, cancelled=True)
    reasons.append(str(held(receiver)))
    await asyncio.sleep(OUTLIVE)
    again = await receiver.begin_async(body, headers)
    reasons.append("claimed" if isinstance(again, Delivery) else refused_as(again)[1])
    return reasons


def test_settle_async_stops_the_renewal_begin_async_started() -> None:
    receiver, _ = guarded_receiver(MemoryStore())
    body, headers = signed_delivery(SECRET, job_id=str(uuid.uuid4()))
    reasons = asyncio.run(asyncio.wait_for(_begin_and_cancel_async(receiver, body, headers), DEADLINE))
    assert reasons == ["in_flight", "0", "claimed"]


def test_a_delivery_never_settled_is_renewed_up_to_the_limit_then_runs_out(caplog: pytest.LogCaptureFixture) -> None:
    limit = 3 * LEASE
    receiver, _ = guarded_receiver(MemoryStore(), guard_renewal=limit)
    body, headers = signed_delivery(SECRET, job_id=str(uuid.uuid4()))
    with caplog.at_level(logging.WARNING, logger="kreuzberg_webhooks"):
        started = time.monotonic()
        delivery = begun(receiver.begin(body, headers))  # and never settled: an adapter lost it
        time.sleep(2 * LEASE)  # past its first lease, inside the limit: renewed
        assert refused_as(receiver.begin(body, headers)) == (429, "in_flight")
        deadline = time.monotonic() + DEADLINE
        while held(receiver) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert held(receiver) == 0
        # Renewed before the limit at the latest: one lease after it, the claim has run out.
        time.sleep(max(0.0, started + limit + LEASE - time.monotonic()))
        begun(receiver.begin(body, headers))
    assert (
        f"replay store claim still held after {limit:g} s, its limit: no longer renewed (key={delivery.key})"
        in caplog.text
    )


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "3600", LEASE / 2])
def test_a_guard_renewal_that_cannot_work_is_refused_at_construction(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="guard_renewal"):
        Receiver(SECRET, lease=LEASE, guard_renewal=bad)


def test_the_guard_renewal_is_an_hour_by_default_or_the_lease_if_longer() -> None:
    assert Receiver(SECRET).guard_renewal == DEFAULT_GUARD_RENEWAL == 3600.0
    assert Receiver(SECRET, lease=7200).guard_renewal == 7200.0  # a long lease set before the limit existed
    assert Receiver(SECRET, lease=LEASE, guard_renewal=LEASE).guard_renewal == LEASE
    assert Receiver(SECRET, guard_renewal=600).guard_renewal == 600.0
