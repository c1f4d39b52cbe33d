"""Inbox mode through the receiver: 202 once durable, 200 for copies, 503 without the write,
and the handlers run later, once (``docs/contract.md`` §4b)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from kreuzberg_webhooks import MemoryStore, Receiver, ReplayWindow
from kreuzberg_webhooks.inbox import DeliveryState, InboxEntry, RetryPolicy, SQLiteInbox
from kreuzberg_webhooks.inbox.worker import InboxWorker
from kreuzberg_webhooks.testing import FrozenClock, job_event_payload, signed_delivery
from tests.inbox.support import SECRET, CountingHandler


def make_receiver(inbox: object, clock: FrozenClock, handler: CountingHandler) -> Receiver:
    receiver = Receiver(
        SECRET, store=MemoryStore(clock=clock), inbox=inbox, clock=clock, window=ReplayWindow(3 * 3600, 60)
    )
    receiver.on()(handler)
    return receiver


def test_a_delivery_is_queued_then_processed_once_by_the_worker(tmp_path: Path) -> None:
    clock, handler = FrozenClock(), CountingHandler()
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    receiver = make_receiver(inbox, clock, handler)
    body, headers = signed_delivery(SECRET, job_event_payload(now=clock.now))
    first = receiver.handle(body, headers)
    assert (first.status_code, first.reason) == (202, "queued")
    assert handler.calls == {}  # not in the request
    again = receiver.handle(body, headers)
    assert (again.status_code, again.reason) == (200, "duplicate")
    InboxWorker(receiver, clock=clock).drain()
    assert sum(handler.calls.values()) == 1
    (listed,) = inbox.list()
    record = inbox.get(listed.key)
    assert record is not None
    assert record.state is DeliveryState.DONE
    assert record.entry.body == body
    assert dict(record.entry.headers)["x-webhook-signature"] == headers["X-Webhook-Signature"]
    assert receiver.handle(body, headers).reason == "duplicate"


def test_a_handler_failing_for_an_hour_loses_nothing_and_answers_no_4xx(tmp_path: Path) -> None:
    # The sender retries each event five times in about five and a half minutes; the
    # handler is down for an hour. Every copy is acknowledged, every event runs once after.
    clock, handler = FrozenClock(), CountingHandler()
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    receiver = make_receiver(inbox, clock, handler)
    policy = RetryPolicy(first_delay=30, max_delay=900, max_attempts=None, max_age=24 * 3600)
    worker = InboxWorker(receiver, policy=policy, clock=clock)
    deliveries = [signed_delivery(SECRET, job_event_payload(now=clock.now)) for _ in range(20)]
    handler.failing = True
    statuses: list[int] = []
    schedule = [0, 5, 30, 120, 180]  # seconds between the sender's attempts
    for wait in schedule:
        clock.advance(wait)
        statuses.extend(receiver.handle(body, headers).status_code for body, headers in deliveries)
        worker.drain()
    end = clock.now + 3600
    while clock.now < end:
        clock.advance(60)
        worker.drain()
    assert handler.calls == {}
    assert set(statuses) <= {200, 202}
    assert statuses.count(202) == len(deliveries)
    handler.failing = False
    clock.advance(policy.max_delay)
    worker.drain()
    assert sorted(handler.calls.values()) == [1] * len(deliveries)
    assert inbox.counts()[DeliveryState.DONE] == len(deliveries)


class _BrokenInbox:
    def enqueue(self, entry: InboxEntry) -> bool:
        raise OSError("disk full")


def test_an_inbox_that_cannot_write_is_answered_503(tmp_path: Path) -> None:
    clock, handler = FrozenClock(), CountingHandler()
    receiver = make_receiver(_BrokenInbox(), clock, handler)
    body, headers = signed_delivery(SECRET, job_event_payload(now=clock.now))
    outcome = receiver.handle(body, headers)
    assert (outcome.status_code, outcome.reason) == (503, "store_unavailable")
    assert handler.calls == {}


def test_the_async_path_queues_through_a_sync_inbox(tmp_path: Path) -> None:
    clock, handler = FrozenClock(), CountingHandler()
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    receiver = make_receiver(inbox, clock, handler)
    body, headers = signed_delivery(SECRET, job_event_payload(now=clock.now))

    async def scenario() -> list[int]:
        outcomes = await asyncio.gather(*(receiver.handle_async(body, headers) for _ in range(8)))
        return sorted(o.status_code for o in outcomes)

    assert asyncio.run(scenario()) == [200] * 7 + [202]
    assert inbox.counts()[DeliveryState.QUEUED] == 1


@pytest.mark.parametrize("rejected", ["bad-signature", "stale"])
def test_rejected_deliveries_never_reach_the_inbox(tmp_path: Path, rejected: str) -> None:
    clock, handler = FrozenClock(), CountingHandler()
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    receiver = make_receiver(inbox, clock, handler)
    if rejected == "bad-signature":
        body, headers = signed_delivery("another-secret-0123456789abcdef0123", job_event_payload(now=clock.now))
    else:
        body, headers = signed_delivery(SECRET, job_event_payload(now=time.time() - 10 * 24 * 3600))
    assert receiver.handle(body, headers).status_code in (400, 401)
    assert inbox.list() == []
