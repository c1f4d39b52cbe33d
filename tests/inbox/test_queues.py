"""TaskQueueInbox without a broker: what a task does with each state of its delivery, what a lost
message costs (nothing: the sweep runs it), and that a write the broker refused is still acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest

from kreuzberg_webhooks import ConfigurationError, MemoryStore, Receiver, ReplayWindow
from kreuzberg_webhooks.inbox import DeliveryState, RetryPolicy, SQLiteInbox
from kreuzberg_webhooks.inbox.queues import TaskQueueInbox
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.inbox.support import SECRET, CountingHandler
from tests.stores.contract import FrozenClock


class Broker:
    """Records the messages a queue would carry; refuses them while ``down``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, float]] = []
        self.down = False

    def __call__(self, key: str, countdown: float) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.messages.append((key, countdown))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[TaskQueueInbox, Receiver, Broker, CountingHandler, FrozenClock]:
    clock, broker, handler = FrozenClock(), Broker(), CountingHandler()
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3", clock=clock)
    queue = TaskQueueInbox(
        inbox, broker, policy=RetryPolicy(first_delay=30, max_delay=30, max_attempts=3, max_age=None), clock=clock
    )
    receiver = Receiver(SECRET, store=MemoryStore(clock=clock), inbox=queue, clock=clock, window=ReplayWindow(60, 60))
    receiver.on()(handler)
    queue.bind(receiver)
    return queue, receiver, broker, handler, clock


def deliver(receiver: Receiver, clock: FrozenClock) -> int:
    body, headers = signed_delivery(SECRET, job_event_payload(now=clock.now))
    return receiver.handle(body, headers).status_code


def test_a_new_delivery_sends_its_key_and_the_task_runs_it_once(setup: tuple) -> None:  # type: ignore[type-arg]
    queue, receiver, broker, handler, clock = setup
    assert deliver(receiver, clock) == 202
    ((key, countdown),) = broker.messages
    assert countdown == 0
    assert queue.run(key) == "done"
    assert queue.run(key) == "skipped"  # a duplicate message
    assert sum(handler.calls.values()) == 1


def test_a_copy_sends_nothing(setup: tuple) -> None:  # type: ignore[type-arg]
    _queue, receiver, broker, _, clock = setup
    body, headers = signed_delivery(SECRET, job_event_payload(now=clock.now))
    assert receiver.handle(body, headers).status_code == 202
    assert receiver.handle(body, headers).status_code == 200
    assert len(broker.messages) == 1


def test_a_failure_sends_a_message_for_the_next_attempt_then_dead_is_skipped(setup: tuple) -> None:  # type: ignore[type-arg]
    queue, receiver, broker, handler, clock = setup
    deliver(receiver, clock)
    key = broker.messages[0][0]
    handler.failing = True
    assert queue.run(key) == "retry"
    assert broker.messages[-1] == (key, 30)
    clock.advance(30)
    assert queue.run(key) == "retry"
    clock.advance(30)
    assert queue.run(key) == "dead"
    assert queue.run(key) == "skipped"
    assert len(broker.messages) == 3


def test_a_message_for_a_leased_delivery_looks_again_after_the_lease(setup: tuple) -> None:  # type: ignore[type-arg]
    queue, receiver, broker, handler, clock = setup
    deliver(receiver, clock)
    key = broker.messages[0][0]
    held = queue.inbox.claim(key, 60)  # a worker that then died
    assert held is not None
    assert queue.run(key) == "deferred"
    assert broker.messages[-1] == (key, 61)
    clock.advance(61)
    assert queue.run(key) == "done"
    assert sum(handler.calls.values()) == 1


def test_a_write_the_broker_refused_is_acknowledged_and_the_sweep_runs_it(setup: tuple) -> None:  # type: ignore[type-arg]
    queue, receiver, broker, handler, clock = setup
    broker.down = True
    statuses = [deliver(receiver, clock) for _ in range(3)]
    assert statuses == [202, 202, 202]  # durable in the inbox: acknowledged
    assert broker.messages == []
    assert queue.sweep() == 3
    assert sum(handler.calls.values()) == 3
    assert queue.counts()[DeliveryState.DONE] == 3


def test_retry_from_operations_sends_messages_again(setup: tuple) -> None:  # type: ignore[type-arg]
    queue, receiver, broker, handler, clock = setup
    deliver(receiver, clock)
    key = broker.messages[0][0]
    handler.failing = True
    for _ in range(3):
        queue.run(key)
        clock.advance(30)
    assert queue.get(key) is not None
    assert queue.list(DeliveryState.DEAD)[0].key == key
    handler.failing = False
    broker.messages.clear()
    assert queue.retry(state=DeliveryState.DEAD) == 1
    assert broker.messages == [(key, 0)]
    assert queue.run(key) == "done"
    assert queue.purge(DeliveryState.DONE) == 1


def test_running_before_bind_is_refused(tmp_path: Path) -> None:
    queue = TaskQueueInbox(SQLiteInbox(tmp_path / "inbox.sqlite3"), Broker())
    with pytest.raises(ConfigurationError, match="bind"):
        queue.run("anything")


def test_a_send_that_is_not_callable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        TaskQueueInbox(SQLiteInbox(tmp_path / "inbox.sqlite3"), "not callable")  # type: ignore[arg-type]
