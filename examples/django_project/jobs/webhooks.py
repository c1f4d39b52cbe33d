"""What the project does with each delivery.

A handler registered with ``on()`` runs once per event (retries and duplicates
are answered before it); the ``webhook_received`` signal is sent right after,
for the parts of a project that prefer Django signals. In inbox mode
(``KREUZBERG_INBOX=1``) both run in the inbox worker, with ``request=None``.
"""

from __future__ import annotations

import logging
from typing import Any

from _shared import record
from django.dispatch import receiver

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.django import on, webhook_received

logger = logging.getLogger(__name__)


@on()  # every event, including statuses Kreuzberg adds later
def record_job(event: Event) -> None:
    """Record the job; its text is fetched later with ``GET /v1/jobs/{job_id}``.

    If this raises, the delivery is answered 500 and the sender's retry runs it again.
    """
    record(event)


@receiver(webhook_received)
def log_job(sender: Any, event: Event, **kwargs: Any) -> None:
    logger.info("Kreuzberg %s %s", event.type, event.job_id or event.event_id)  # an unknown event has no status
