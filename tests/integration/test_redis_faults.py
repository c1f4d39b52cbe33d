"""Faults around the Redis store, with nothing lost and nothing done twice.

Each case follows ``docs/contract.md`` §3-4: the sender retries 429, 5xx, time-outs
and connection errors, and gives an event up for good on any other 4xx. So a
fault must never be answered 4xx (but 429), and never 2xx unless the handler
ran; every retry the sender makes must end with the handler having run once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kreuzberg_webhooks import Delivery, Event, MemoryStore, Outcome, Receiver, ReplayWindow, parse_event
from kreuzberg_webhooks.lifecycle import DEFAULT_LEASE
from kreuzberg_webhooks.stores.redis import DEFAULT_PREFIX, AsyncRedisStore, RedisStore
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.integration.redis_harness import SECRET, delivery, event_id, poll, serve

if TYPE_CHECKING:
    from tests.redis_server import RedisServer

pytest_plugins = ["tests.redis_server"]

NOW = 1_800_000_000.0


def frozen_receiver(
    store: RedisStore | AsyncRedisStore, seen: list[Event], *, fail_first: int = 0, lease: float = DEFAULT_LEASE
) -> Receiver:
    """A receiver on a frozen clock whose handler records each event, raising for the first *fail_first* calls."""
    window = ReplayWindow(max_age=600, max_future=60)
    receiver = Receiver(SECRET, store=store, lease=lease, clock=lambda: NOW, window=window)
    calls = 0

    @receiver.on()
    def handler(event: Event) -> None:
        nonlocal calls
        calls += 1
        if calls <= fail_first:
            raise RuntimeError("the handler's database is down")
        seen.append(event)

    return receiver


def frozen_delivery() -> tuple[bytes, dict[str, str]]:
    return signed_delivery(SECRET, job_event_payload(now=NOW))


def answer(outcome: Outcome) -> tuple[int, str]:
    return outcome.status_code, outcome.reason


@pytest.fixture
def fast_store(own_redis_server: RedisServer) -> Iterator[RedisStore]:
    """A store on a server of the test's own, with time-outs short enough for a quick test."""
    store = RedisStore.from_url(own_redis_server.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    yield store
    store.close()


# -- Redis unreachable or hung: 503, then processed once it is back --------------------------


def test_redis_down_answers_503_and_the_retry_after_restart_runs_the_handler_once(
    own_redis_server: RedisServer, fast_store: RedisStore
) -> None:
    seen: list[Event] = []
    receiver = frozen_receiver(fast_store, seen)
    body, headers = frozen_delivery()

    own_redis_server.stop()
    answers = [answer(receiver.handle(body, headers)) for _ in range(3)]
    assert answers == [(503, "store_unavailable")] * 3
    assert seen == []

    own_redis_server.start()  # the same port; a pooled connection is stale and is replaced
    assert answer(receiver.handle(body, headers)) == (200, "processed")
    assert answer(receiver.handle(body, headers)) == (200, "duplicate")
    assert len(seen) == 1


def test_async_receiver_redis_down_answers_503_and_recovers(own_redis_server: RedisServer) -> None:
    async def scenario() -> tuple[list[tuple[int, str]], int]:
        store = AsyncRedisStore.from_url(own_redis_server.url, socket_timeout=0.3, socket_connect_timeout=0.3)
        seen: list[Event] = []
        receiver = frozen_receiver(store, seen)
        body, headers = frozen_delivery()
        answers = [answer(await receiver.handle_async(body, headers))]  # opens a pooled connection
        own_redis_server.stop()
        answers.append(answer(await receiver.handle_async(body, headers)))
        own_redis_server.start()  # forgot everything: the first answer's "done" is gone with it
        body, headers = frozen_delivery()
        answers.append(answer(await receiver.handle_async(body, headers)))
        answers.append(answer(await receiver.handle_async(body, headers)))
        await store.aclose()
        return answers, len(seen)

    answers, handled = asyncio.run(scenario())
    assert answers == [(200, "processed"), (503, "store_unavailable"), (200, "processed"), (200, "duplicate")]
    assert handled == 2


def test_a_hung_redis_answers_503_quickly_and_the_event_is_processed_within_one_lease(
    own_redis_server: RedisServer,
) -> None:
    # The default time-outs (2 s, one retry), not the test's: the sender waits 30 s. A hung
    # Redis is ambiguous: the claim was sent and may run once Redis wakes up, leaving a lease
    # nobody works under. It holds the event for one lease at most (429s meanwhile, which the
    # sender retries); the retry after it runs the handler. The lease is scaled down here.
    lease = 1.0
    store = RedisStore.from_url(own_redis_server.url)
    seen: list[Event] = []
    receiver = frozen_receiver(store, seen, lease=lease)
    body, headers = frozen_delivery()
    assert store.claim("event:warm-up", 1).token  # a pooled connection, as in a running app
    own_redis_server.pause()
    try:
        started = time.monotonic()
        assert answer(receiver.handle(body, headers)) == (503, "store_unavailable")
        elapsed = time.monotonic() - started
    finally:
        own_redis_server.resume()
    assert elapsed < 10, f"a hung Redis held the delivery for {elapsed:.1f} s"
    assert seen == []

    answers: list[tuple[int, str]] = []

    def retry_processed() -> bool:
        answers.append(answer(receiver.handle(body, headers)))
        return answers[-1][0] != 429

    poll(retry_processed, timeout=lease + 10, what="the retry after the stranded lease")
    assert set(answers[:-1]) <= {(429, "in_flight")}
    assert answers[-1] == (200, "processed")
    assert answer(receiver.handle(body, headers)) == (200, "duplicate")
    assert len(seen) == 1
    store.close()


def test_redis_down_behind_a_real_server_answers_503_then_processes(
    tmp_path: Path, own_redis_server: RedisServer
) -> None:
    body, headers = delivery()
    with serve(tmp_path, own_redis_server.url) as app:
        own_redis_server.stop()
        down = app.post(body, headers)
        assert (down.status, down.headers.get("content-type")) == (503, "application/json")
        assert b"store_unavailable" in down.body
        assert str(own_redis_server.port).encode() not in down.body
        own_redis_server.start()
        back = app.post(body, headers)
        again = app.post(body, headers)
        assert (back.status, again.status, again.headers.get("x-kreuzberg-duplicate")) == (200, 200, "true")
        assert len(app.phases(event_id(body))) == 1


# -- a handler that raises: 500, claim released, the retry runs it ------------------------------


def test_a_failing_handler_answers_500_frees_the_key_and_the_retry_runs_it(fast_store: RedisStore) -> None:
    seen: list[Event] = []
    receiver = frozen_receiver(fast_store, seen, fail_first=1)
    body, headers = frozen_delivery()
    assert answer(receiver.handle(body, headers)) == (500, "handler_error")
    key = DEFAULT_PREFIX + parse_event(json.loads(body)).dedup_key
    assert fast_store.client.exists(key) == 0  # released at once: the 5 s retry need not wait for the lease
    assert answer(receiver.handle(body, headers)) == (200, "processed")
    assert fast_store.client.get(key) == b"done"
    assert answer(receiver.handle(body, headers)) == (200, "duplicate")
    assert len(seen) == 1


# -- a worker killed mid-handler: 429 until the lease runs out, then processed -------------------


def test_a_worker_killed_mid_handler_leaves_429s_until_the_lease_expires_then_the_retry_is_processed(
    tmp_path: Path, redis_url: str
) -> None:
    lease = 3.0  # scaled down from 120 s; long enough to see 429s first on a busy machine
    gate = tmp_path / "gate"
    body, headers = delivery()
    event = event_id(body)
    env = {"KREUZBERG_LEASE_SECONDS": str(lease), "KREUZBERG_HANDLER_GATE": str(gate)}
    with serve(tmp_path, redis_url, workers=2, env=env) as app:
        first: list[BaseException] = []

        def send_first() -> None:
            try:
                app.post(body, headers)
            except OSError as error:  # the worker dies under it
                first.append(error)

        sender = threading.Thread(target=send_first)
        sender.start()
        worker = app.wait_for_phase(event, "started")["pid"]
        claimed_at = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        sender.join(20)
        assert first, "the request whose worker was killed got an answer"

        early = app.post(body, headers)
        assert time.monotonic() - claimed_at < lease, "too slow to see the lease still held"
        assert early.status == 429
        assert 1 <= int(early.headers["retry-after"]) <= lease

        gate.touch()  # from now on the handler finishes
        statuses: list[int] = []

        def retry_processed() -> bool:
            statuses.append(app.post(body, headers).status)
            return statuses[-1] != 429

        poll(retry_processed, timeout=lease + 15, what="a retry after the lease expired")
        assert time.monotonic() - claimed_at >= lease - 0.1
        assert set(statuses[:-1]) <= {429}
        assert statuses[-1] == 200
        assert app.post(body, headers).headers.get("x-kreuzberg-duplicate") == "true"
        assert len(app.phases(event, "started")) == 2  # the killed attempt and the retry
        assert len(app.phases(event, "finished")) == 1


# -- a handler slower than the sender's time-out: 429 meanwhile, duplicate after ------------------


def test_a_handler_slower_than_the_sender_time_out_gets_429_meanwhile_and_duplicate_after(
    tmp_path: Path, redis_url: str
) -> None:
    # Scaled down: the sender's 30 s time-out becomes 1 s; the handler runs until the test opens the gate.
    # The lease is the default: it must outlast the time-out, or the retry would run the handler again.
    assert DEFAULT_LEASE > 30 + 5  # the retry 5 s after a 30 s time-out still meets the lease
    gate = tmp_path / "gate"
    body, headers = delivery()
    event = event_id(body)
    with serve(tmp_path, redis_url, env={"KREUZBERG_HANDLER_GATE": str(gate)}) as app:
        with pytest.raises(TimeoutError):
            app.post(body, headers, timeout=1.0)
        app.wait_for_phase(event, "started")

        meanwhile = app.post(body, headers)
        assert meanwhile.status == 429
        assert DEFAULT_LEASE - 30 < int(meanwhile.headers["retry-after"]) <= DEFAULT_LEASE

        gate.touch()
        app.wait_for_phase(event, "finished")
        after = app.post(body, headers)
        assert (after.status, after.headers.get("x-kreuzberg-duplicate")) == (200, "true")
        assert len(app.phases(event, "started")) == 1


# -- the defaults against the documented retry schedule -------------------------------------------
# Redis keeps its own time, which a test cannot freeze; the same contract on a MemoryStore with a
# frozen clock replays the sender's schedule (retries 5 s, 30 s and 5 min apart) at the default lease.

RETRIES = (5, 30, 5 * 60)


class ScheduleClock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return NOW + self.t


def default_receiver(clock: ScheduleClock) -> Receiver:
    return Receiver(SECRET, store=MemoryStore(clock=clock.monotonic), clock=clock.wall)


def test_defaults_a_dead_workers_event_is_processed_by_the_five_minute_retry() -> None:
    clock = ScheduleClock()
    receiver = default_receiver(clock)
    body, headers = frozen_delivery()
    assert isinstance(receiver.begin(body, headers), Delivery)  # claimed, then the worker is killed
    clock.t += 30  # the sender's time-out: no answer
    answers = []
    for gap in RETRIES:
        clock.t += gap
        answers.append(answer(receiver.handle(body, headers)))
    assert answers == [(429, "in_flight"), (429, "in_flight"), (200, "processed")]


def test_defaults_a_slow_handler_is_not_run_again_by_the_retry_that_comes_meanwhile() -> None:
    clock = ScheduleClock()
    receiver = default_receiver(clock)
    body, headers = frozen_delivery()
    delivery = receiver.begin(body, headers)
    assert isinstance(delivery, Delivery)
    clock.t += 30 + RETRIES[0]  # the sender timed out at 30 s and retries 5 s later
    meanwhile = receiver.handle(body, headers)
    assert answer(meanwhile) == (429, "in_flight")
    assert dict(meanwhile.headers)["retry-after"] == str(int(DEFAULT_LEASE - 35))
    clock.t += 60  # the handler finally finishes after 95 s, inside the 120 s lease
    receiver.settle(delivery, 200)
    clock.t += RETRIES[1]
    assert answer(receiver.handle(body, headers)) == (200, "duplicate")


def test_defaults_a_replay_is_remembered_for_the_whole_replay_window() -> None:
    clock = ScheduleClock()
    receiver = default_receiver(clock)
    body, headers = frozen_delivery()
    assert answer(receiver.handle(body, headers)) == (200, "processed")
    clock.t += 24 * 3600  # the oldest timestamp the window accepts
    assert answer(receiver.handle(body, headers)) == (200, "duplicate")
    clock.t += 1
    assert answer(receiver.handle(body, headers)) == (400, "stale_timestamp")
    assert receiver.verifier.window.span == 24 * 3600 + 5 * 60
    assert receiver.retention == receiver.verifier.max_span >= receiver.verifier.window.span  # documents: 7 days


def test_the_core_never_imports_redis() -> None:
    # Only kreuzberg_webhooks.stores.redis imports redis-py; an app without the extra still imports the package.
    code = "import sys, kreuzberg_webhooks, kreuzberg_webhooks.stores; assert 'redis' not in sys.modules, 'redis'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
