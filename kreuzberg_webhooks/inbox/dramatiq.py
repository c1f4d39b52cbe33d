"""Dramatiq for inbox deliveries: the message carries the inbox key, the actor claims it.

::

    # tasks.py — imported by the web app and by ``dramatiq tasks``
    dramatiq.set_broker(RedisBroker(url="redis://localhost:6379/0"))
    queue = DramatiqInbox(open_inbox("postgresql://app@db/app"))
    receiver = queue.bind(Receiver(secret, store=open_store("postgresql://app@db/app"), inbox=queue))

Dramatiq acknowledges a message after the actor returns, so a worker killed
mid-delivery leaves it to be delivered again; the inbox's lease keeps the
handlers to one run. Retries are the inbox's (a message is sent with a delay
for the next attempt), so the actor has ``max_retries=0``. Schedule
:meth:`~kreuzberg_webhooks.inbox.queues.TaskQueueInbox.sweep` (``queue.sweep_actor``)
every minute or so for lost messages. Needs the ``[dramatiq]`` extra.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

try:
    import dramatiq
except ImportError as error:  # dramatiq is the optional [dramatiq] extra
    raise ImportError('the Dramatiq binding needs dramatiq: pip install "kreuzberg-webhooks[dramatiq]"') from error

from .base import Inbox, RetryPolicy
from .queues import TaskQueueInbox
from .worker import FailureHook

__all__ = ["DEFAULT_ACTOR_NAME", "DramatiqInbox"]

#: The name the processing actor is declared under (the sweep adds ``_sweep``).
DEFAULT_ACTOR_NAME = "kreuzberg_webhooks_inbox_process"


class DramatiqInbox(TaskQueueInbox):
    """Writes deliveries to *inbox* and sends their keys to a Dramatiq actor.

    :param inbox: a sync inbox every web and Dramatiq worker can reach.
    :param broker: the Dramatiq broker (default: the global one, ``dramatiq.get_broker()``).
    :param queue_name: the Dramatiq queue.
    :param actor_name: the processing actor's name.

    Other parameters as :class:`~kreuzberg_webhooks.inbox.worker.InboxWorker`.
    """

    def __init__(
        self,
        inbox: Inbox,
        *,
        broker: Any = None,
        queue_name: str = "kreuzberg-webhooks",
        actor_name: str = DEFAULT_ACTOR_NAME,
        policy: RetryPolicy | None = None,
        lease: float | None = None,
        on_failure: FailureHook | Sequence[FailureHook] = (),
        on_dead: FailureHook | Sequence[FailureHook] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            inbox, self._send_message, policy=policy, lease=lease, on_failure=on_failure, on_dead=on_dead, clock=clock
        )
        options: dict[str, Any] = {"queue_name": queue_name, "max_retries": 0}
        if broker is not None:
            options["broker"] = broker

        def process_delivery(key: str) -> str:
            return self.run(key)

        def sweep() -> int:
            return self.sweep()

        self.actor: Any = dramatiq.actor(actor_name=actor_name, **options)(process_delivery)
        self.sweep_actor: Any = dramatiq.actor(actor_name=actor_name + "_sweep", **options)(sweep)

    def _send_message(self, key: str, countdown: float) -> None:
        self.actor.send_with_options(args=(key,), delay=int(countdown * 1000) if countdown > 0 else None)
