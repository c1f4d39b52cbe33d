"""RQ for inbox deliveries: the job carries the inbox key, the job claims it.

::

    # tasks.py — imported by the web app; the RQ worker imports it through the job
    queue = RQInbox(redis.Redis.from_url(url), open_inbox(url), import_path="tasks:queue")
    receiver = queue.bind(Receiver(secret, store=open_store(url), inbox=queue))

    # run workers with the scheduler (retries are jobs scheduled for their next attempt):
    #   rq worker --with-scheduler kreuzberg-webhooks

An RQ job names a function, not an object, so every job calls
:func:`process_delivery` with *import_path* (``"module:attribute"`` of this
object) and the key; the worker imports the module, which builds the receiver
and registers its handlers. A worker killed mid-job leaves the delivery leased
in the inbox; schedule :func:`sweep` (rq-scheduler, cron) to pick up what a
lost job left behind. Needs the ``[rq]`` extra.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

try:
    import rq
except ImportError as error:  # rq is the optional [rq] extra
    raise ImportError('the RQ binding needs rq: pip install "kreuzberg-webhooks[rq]"') from error

from ..exceptions import ConfigurationError
from ..protocol.durations import duration
from .base import Inbox, RetryPolicy
from .queues import TaskQueueInbox
from .worker import FailureHook

__all__ = ["DEFAULT_JOB_TIMEOUT", "DEFAULT_QUEUE", "RQInbox", "process_delivery", "sweep"]

#: Seconds RQ lets a delivery's job run by default before it kills it (a handler's time limit).
DEFAULT_JOB_TIMEOUT = 3600.0

#: The RQ queue the jobs go to by default.
DEFAULT_QUEUE = "kreuzberg-webhooks"


class RQInbox(TaskQueueInbox):
    """Writes deliveries to *inbox* and enqueues an RQ job per delivery key.

    :param connection: the Redis client RQ uses.
    :param inbox: a sync inbox every web and RQ worker can reach.
    :param import_path: ``"module:attribute"`` where this object lives, for the RQ worker.
    :param queue_name: the RQ queue.
    :param job_timeout: seconds RQ lets one delivery's job run before it kills it (its
        delivery then comes back after its lease). Not a lease: the worker renews the
        delivery's claim while its handlers run.

    Other parameters as :class:`~kreuzberg_webhooks.inbox.worker.InboxWorker`.
    """

    def __init__(
        self,
        connection: Any,
        inbox: Inbox,
        *,
        import_path: str,
        queue_name: str = DEFAULT_QUEUE,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        policy: RetryPolicy | None = None,
        lease: float | None = None,
        on_failure: FailureHook | Sequence[FailureHook] = (),
        on_dead: FailureHook | Sequence[FailureHook] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(import_path, str) or import_path.count(":") != 1:
            raise ConfigurationError("import_path must be 'module:attribute', where the RQ worker finds this object")
        super().__init__(
            inbox, self._enqueue_job, policy=policy, lease=lease, on_failure=on_failure, on_dead=on_dead, clock=clock
        )
        self.import_path = import_path
        self.queue = rq.Queue(queue_name, connection=connection)
        self._job_timeout = max(math.ceil(duration(job_timeout, "job_timeout")), 1)

    def _enqueue_job(self, key: str, countdown: float) -> None:
        options: dict[str, Any] = {"job_timeout": self._job_timeout, "result_ttl": 0, "failure_ttl": 7 * 24 * 3600}
        if countdown > 0:
            self.queue.enqueue_in(timedelta(seconds=countdown), process_delivery, self.import_path, key, **options)
        else:
            self.queue.enqueue(process_delivery, self.import_path, key, **options)


def _find(import_path: str) -> RQInbox:
    module_name, _, attribute = import_path.partition(":")
    found = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(found, RQInbox):
        raise ConfigurationError(f"{import_path} is not an RQInbox")
    return found


def process_delivery(import_path: str, key: str) -> str:
    """The RQ job: process delivery *key* with the :class:`RQInbox` at *import_path*."""
    return _find(import_path).run(key)


def sweep(import_path: str) -> int:
    """An RQ job (or a cron entry) that processes every due delivery; how many."""
    return _find(import_path).sweep()
