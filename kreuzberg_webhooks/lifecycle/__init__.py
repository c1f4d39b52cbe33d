"""The delivery lifecycle: from a request's bytes to the answer, exactly once.

- :mod:`~kreuzberg_webhooks.lifecycle.exchange` — one request at the webhook path:
  method, headers and the body limit decide 405 and 413, or collect the body.
- :mod:`~kreuzberg_webhooks.lifecycle.flows` — the decisions, written once: generators
  that start from a verified delivery and yield steps (call the store or the inbox, run
  the handlers), given plain values (lease, retention, observers).
- :mod:`~kreuzberg_webhooks.lifecycle.drivers` — the two drivers, sync and async, that
  send each step's result back into a flow.
- :mod:`~kreuzberg_webhooks.lifecycle.heartbeat` — keeps the replay store's claim of every
  event whose handlers are running (one thread per store renews them).
- :mod:`~kreuzberg_webhooks.lifecycle.outcome` — the answer (:class:`Outcome`), what
  observers are told (:class:`DeliveryReport`), and the one log line of a delivery.
- :mod:`~kreuzberg_webhooks.lifecycle.receiver` — the :class:`Receiver`: configuration,
  the handler registry, the entry points adapters call; it verifies a delivery, starts
  its flow and performs the steps.

Nothing here but the package itself imports the receiver.
"""

from __future__ import annotations

from .exchange import Exchange
from .flows import Delivery
from .outcome import DeliveryReport, Outcome
from .receiver import CATCH_ALL, DEFAULT_LEASE, Receiver

__all__ = ["CATCH_ALL", "DEFAULT_LEASE", "Delivery", "DeliveryReport", "Exchange", "Outcome", "Receiver"]
