"""Handing inbox deliveries to a task queue: what the Celery and RQ bindings share.

The receiver writes the delivery to the inbox, then sends a message that
carries only its key; whichever queue worker gets the message claims the
delivery in the inbox and runs it through an :class:`InboxWorker`. The inbox
stays the one source of truth, so the queue may lose, duplicate or redeliver
messages without a handler running twice:

* a duplicate message finds the delivery done (nothing to do) or leased by
  another worker (it checks again when that lease ends);
* a failed attempt is queued in the inbox with its next attempt time, and a
  message is sent for that time;
* a message that was never sent (the broker was down after the write) or was
  lost is made good by :meth:`TaskQueueInbox.sweep`, which processes whatever is
  due — schedule it every minute or so (Celery beat, rq-scheduler, cron).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigurationError
from ..protocol.durations import duration
from .base import DeliveryState, Inbox, InboxEntry, InboxRecord, RetryPolicy
from .worker import FailureHook, InboxWorker

if TYPE_CHECKING:
    from ..lifecycle.receiver import Receiver

__all__ = ["TaskQueueInbox"]

logger = logging.getLogger("kreuzberg_webhooks")

#: Seconds a message may take to reach the broker before the delivery is left to the sweep.
DEFAULT_SEND_TIMEOUT = 3.0


class TaskQueueInbox:
    """An inbox writer that also sends each new delivery's key to a task queue.

    *send(key, countdown)* puts the message on the queue;
    :class:`~kreuzberg_webhooks.inbox.celery.CeleryInbox` and
    :class:`~kreuzberg_webhooks.inbox.rq.RQInbox` supply theirs.

    Give it to the receiver as its inbox, then :meth:`bind` the receiver so the
    queue's workers know whose handlers to run::

        queue = CeleryInbox(celery_app, SQLiteInbox("inbox.db"))
        receiver = queue.bind(Receiver(secret, store=store, inbox=queue))

    The inbox's read operations (``get``, ``list``, ``counts``, ``retry``,
    ``purge``) are passed through, so operations tools can use this object too.

    Every message is sent within *send_timeout* seconds or given up (the
    delivery is already durable: the sweep runs it). While a send to a broker
    that accepts connections but never answers is still hanging, later messages
    are not tried at all, so a hung broker costs one request *send_timeout*
    seconds and the others nothing.
    """

    def __init__(
        self,
        inbox: Inbox,
        send: Callable[[str, float], object],
        *,
        policy: RetryPolicy | None = None,
        lease: float | None = None,
        on_failure: FailureHook | Sequence[FailureHook] = (),
        on_dead: FailureHook | Sequence[FailureHook] = (),
        clock: Callable[[], float] = time.time,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
    ) -> None:
        if not callable(getattr(inbox, "enqueue", None)) or not callable(getattr(inbox, "claim", None)):
            raise ConfigurationError(
                "a task queue needs a sync inbox (enqueue and claim): see kreuzberg_webhooks.inbox"
            )
        if not callable(send):
            raise ConfigurationError("send must be a callable (key, countdown)")
        self.inbox = inbox
        self._send = send
        self._options: dict[str, Any] = {
            "policy": policy,
            "lease": lease,
            "on_failure": on_failure,
            "on_dead": on_dead,
            "clock": clock,
        }
        self._clock = clock
        self.send_timeout = duration(send_timeout, "send_timeout")
        self._hanging: threading.Thread | None = None
        self._worker: InboxWorker | None = None

    # -- wiring ------------------------------------------------------------------------

    def bind(self, receiver: Receiver) -> Receiver:
        """Use *receiver*'s handlers and replay store for the deliveries; returns *receiver*."""
        self._worker = InboxWorker(receiver, self.inbox, **self._options)
        return receiver

    @property
    def worker(self) -> InboxWorker:
        """The worker that processes deliveries (after :meth:`bind`)."""
        if self._worker is None:
            raise ConfigurationError("bind(receiver) first: the queue does not know whose handlers to run")
        return self._worker

    def send(self, key: str, countdown: float = 0.0) -> None:
        """Send a message for delivery *key*, to be run after *countdown* seconds."""
        self._send(key, countdown)

    # -- the writer's side -------------------------------------------------------------

    def enqueue(self, entry: InboxEntry) -> bool:
        """Write *entry* durably, then send its key; ``False`` for a copy already in the inbox.

        The write decides the answer: once it has committed the delivery is
        acknowledged even if the broker refuses the message (the sweep runs it).
        """
        new = self.inbox.enqueue(entry)
        if new:
            # An inbox in the application's database (DjangoInbox) sends after its transaction
            # commits, so a queue worker never looks for a row it cannot see yet.
            on_commit = getattr(self.inbox, "on_commit", None)
            if on_commit is not None:
                on_commit(lambda: self._send_logged(entry.key))
            else:
                self._send_logged(entry.key)
        return new

    def _send_logged(self, key: str, countdown: float = 0.0) -> None:
        """Send within ``send_timeout`` seconds, or log and leave the delivery to the sweep."""
        hanging = self._hanging
        if hanging is not None and hanging.is_alive():
            logger.error("task queue broker not answering; the inbox sweep will run %s", key)
            return
        failure: list[BaseException] = []

        def send() -> None:
            try:
                self.send(key, countdown)
            except Exception as error:
                failure.append(error)

        thread = threading.Thread(target=send, name="kreuzberg-inbox-send", daemon=True)
        thread.start()
        thread.join(self.send_timeout)
        if thread.is_alive():
            self._hanging = thread
            logger.error(
                "task queue broker did not take the message for %s within %.1f s; the inbox sweep will run it",
                key,
                self.send_timeout,
            )
        elif failure:
            logger.error(
                "task queue refused the message for %s; the inbox sweep will run it",
                key,
                exc_info=failure[0],
            )

    # -- the queue worker's side -----------------------------------------------------------

    def run(self, key: str) -> str:
        """Process delivery *key* (the body of the queue's task). Idempotent.

        Returns what happened: ``done``, ``dead``, ``retry`` (failed; a message
        is sent for its next attempt), ``deferred`` (another worker holds it;
        checked again when its lease ends) or ``skipped`` (already done, dead
        or unknown).
        """
        worker = self.worker
        claim = self.inbox.claim(key, worker.lease)
        if claim is None:
            record = self.inbox.get(key)
            if record is None or record.state in (DeliveryState.DONE, DeliveryState.DEAD):
                return "skipped"
            # Leased by another worker, which may have died: look again when its lease ends.
            self._send_logged(key, self._wait(record) + 1.0)
            return "deferred"
        state = worker.process(claim)
        if state is DeliveryState.QUEUED:
            record = self.inbox.get(key)
            if record is not None and record.state is DeliveryState.QUEUED:
                self._send_logged(key, self._wait(record))
            return "retry"
        return state.value

    def _wait(self, record: InboxRecord) -> float:
        return max(record.next_attempt_at - self._clock(), 0.0)

    def sweep(self, *, max_rounds: int = 100) -> int:
        """Process every due delivery here and now (lost messages, CLI retries); how many."""
        return self.worker.drain(max_rounds=max_rounds)

    # -- operations, passed through -----------------------------------------------------------

    def get(self, key_or_event_id: str) -> InboxRecord | None:
        """See :meth:`Inbox.get`."""
        return self.inbox.get(key_or_event_id)

    def list(self, state: DeliveryState | None = None, limit: int = 100) -> Sequence[InboxRecord]:
        """See :meth:`Inbox.list`."""
        return self.inbox.list(state, limit)

    def counts(self) -> dict[DeliveryState, int]:
        """See :meth:`Inbox.counts`."""
        return self.inbox.counts()

    def retry(self, keys: Sequence[str] = (), *, state: DeliveryState | None = None) -> int:
        """Queue deliveries again (see :meth:`Inbox.retry`) and send a message for each."""
        targets = [r.key for r in self.inbox.list(state, limit=100_000)] if state is not None else list(keys)
        changed = self.inbox.retry(keys, state=state)
        for key in targets:
            record = self.inbox.get(key)
            if record is not None and record.state is DeliveryState.QUEUED:
                self._send_logged(record.key)
        return changed

    def purge(self, state: DeliveryState, older_than: float = 0.0) -> int:
        """See :meth:`Inbox.purge`."""
        return self.inbox.purge(state, older_than)
