"""Celery for inbox deliveries: the message carries the inbox key, the task claims it.

::

    # tasks.py — imported by the web app and by ``celery -A tasks worker``
    app = Celery("tasks", broker="redis://localhost:6379/0")
    app.conf.worker_prefetch_multiplier = 1   # with acks_late: one unacknowledged message per process

    queue = CeleryInbox(app, open_inbox("postgresql://app@db/app"))
    receiver = queue.bind(Receiver(secret, store=open_store("postgresql://app@db/app"), inbox=queue))

    @receiver.on("job.completed")
    def completed(event): ...

    # and schedule the sweep (lost messages, retries from the CLI) with beat:
    app.conf.beat_schedule = {"kreuzberg-sweep": {"task": queue.sweep_task.name, "schedule": 60.0}}

The task is ``acks_late`` with ``reject_on_worker_lost``: a Celery worker killed
mid-task leaves its message to be delivered again, and the inbox's lease keeps
the handlers to one run. Needs the ``[celery]`` extra.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

try:
    import celery
except ImportError as error:  # celery is the optional [celery] extra
    raise ImportError('the Celery binding needs celery: pip install "kreuzberg-webhooks[celery]"') from error

import time

from .base import Inbox, RetryPolicy
from .queues import DEFAULT_SEND_TIMEOUT, TaskQueueInbox
from .worker import FailureHook

__all__ = ["DEFAULT_TASK_NAME", "CeleryInbox"]

#: The name the processing task is registered under (the sweep adds ``.sweep``).
DEFAULT_TASK_NAME = "kreuzberg_webhooks.inbox.process"


class CeleryInbox(TaskQueueInbox):
    """Writes deliveries to *inbox* and sends their keys to Celery.

    :param app: the Celery application; two tasks are registered on it.
    :param inbox: a sync inbox every web and Celery worker can reach (PostgreSQL,
        Redis, or SQLite on one machine).
    :param task_name: the processing task's name.
    :param queue: the Celery queue the messages go to (default: the app's default queue).
    :param send_timeout: seconds a message may take to reach the broker; after that the
        webhook is answered all the same (the delivery is durable) and the sweep runs it.

    Other parameters as :class:`~kreuzberg_webhooks.inbox.worker.InboxWorker`.
    """

    def __init__(
        self,
        app: celery.Celery,
        inbox: Inbox,
        *,
        task_name: str = DEFAULT_TASK_NAME,
        queue: str | None = None,
        policy: RetryPolicy | None = None,
        lease: float | None = None,
        on_failure: FailureHook | Sequence[FailureHook] = (),
        on_dead: FailureHook | Sequence[FailureHook] = (),
        clock: Callable[[], float] = time.time,
        send_timeout: float = DEFAULT_SEND_TIMEOUT,
    ) -> None:
        super().__init__(
            inbox,
            self._send_task,
            policy=policy,
            lease=lease,
            on_failure=on_failure,
            on_dead=on_dead,
            clock=clock,
            send_timeout=send_timeout,
        )
        self.app = app
        self.queue = queue

        @app.task(name=task_name, acks_late=True, reject_on_worker_lost=True, ignore_result=True)  # type: ignore[untyped-decorator]
        def process_delivery(key: str) -> str:
            return self.run(key)

        @app.task(name=task_name + ".sweep", ignore_result=True)  # type: ignore[untyped-decorator]
        def sweep() -> int:
            return self.sweep()

        self.task: Any = process_delivery
        self.sweep_task: Any = sweep

    def _send_task(self, key: str, countdown: float) -> None:
        # No connection retries of Celery's own: the send is bounded by send_timeout, and
        # a message that does not go out is the sweep's.
        options: dict[str, Any] = {"retry": False}
        if countdown > 0:
            options["countdown"] = countdown
        if self.queue is not None:
            options["queue"] = self.queue
        self.task.apply_async((key,), **options)
