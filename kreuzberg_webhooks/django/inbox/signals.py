"""Django signals for inbox deliveries that fail.

``delivery_failed`` is sent after every failed attempt and ``delivery_dead``
when a delivery is given up; both with ``failure`` (a
:class:`~kreuzberg_webhooks.inbox.worker.DeliveryFailure`: the record, the
error, the next attempt or ``None``). Workers built by this app (the embedded
one, ``manage.py kreuzberg_inbox worker``) send them; for a worker of your own,
pass ``on_failure=send_failed, on_dead=send_dead``.
"""

from __future__ import annotations

from django.dispatch import Signal

from ...inbox.worker import DeliveryFailure

__all__ = ["delivery_dead", "delivery_failed", "send_dead", "send_failed"]

delivery_failed = Signal()
delivery_dead = Signal()


def send_failed(failure: DeliveryFailure) -> None:
    """Send :data:`delivery_failed` (a worker's ``on_failure`` hook)."""
    delivery_failed.send(sender=DeliveryFailure, failure=failure)


def send_dead(failure: DeliveryFailure) -> None:
    """Send :data:`delivery_dead` (a worker's ``on_dead`` hook)."""
    delivery_dead.send(sender=DeliveryFailure, failure=failure)
