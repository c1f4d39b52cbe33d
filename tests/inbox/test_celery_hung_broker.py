"""CeleryInbox with a broker that accepts connections and never answers: the delivery is durable
in the inbox before the message is sent, so the webhook is still answered 202 in bounded time, and
the sweep runs the handler once."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import celery
import pytest

from kreuzberg_webhooks import MemoryStore, Receiver
from kreuzberg_webhooks.inbox import DeliveryState, SQLiteInbox
from kreuzberg_webhooks.inbox.celery import CeleryInbox
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery
from tests.inbox.support import SECRET, CountingHandler


@pytest.fixture
def hung_broker() -> Iterator[str]:
    """A TCP listener on 127.0.0.1 that accepts every connection and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    closing.set()
    listener.close()
    for connection in accepted:
        connection.close()


@pytest.mark.slow
def test_a_hung_broker_still_gets_the_webhook_answered_and_the_sweep_runs_it(tmp_path: Path, hung_broker: str) -> None:
    app = celery.Celery("hung", broker=hung_broker)
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    queue = CeleryInbox(app, inbox, send_timeout=0.5)
    handler = CountingHandler()
    receiver = queue.bind(Receiver(SECRET, store=MemoryStore(), inbox=queue))
    receiver.on()(handler)
    payload = job_event_payload()
    body, headers = signed_delivery(SECRET, payload)
    answers: list[int] = []
    request = threading.Thread(target=lambda: answers.append(receiver.handle(body, headers).status_code), daemon=True)
    request.start()
    request.join(20)  # a bound, not a timing: a hung send never returns at all
    assert answers == [202], "the webhook was not answered while the broker hung"
    assert inbox.counts()[DeliveryState.QUEUED] == 1
    assert queue.sweep() == 1
    assert handler.calls == {str(payload["job_id"]): 1}
