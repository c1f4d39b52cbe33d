"""The Django signal sent for every event the ready view processes: by webhook, inbox worker or reconciler."""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["webhook_received"]

#: Sent once per event the project receives, after the handlers registered on the receiver, by
#: :class:`~kreuzberg_webhooks.django.KreuzbergWebhookView` (and any view that keeps the mixin's
#: default ``handle_event``): for a verified, not-yet-processed delivery in the request; in inbox
#: mode by the inbox worker; and by the reconciler for a job whose webhook never came (given
#: :func:`~kreuzberg_webhooks.django.get_receiver`: its ``process`` runs the mounted view's
#: ``handle_event``). Keyword arguments: ``sender`` (the view class), ``event`` (the typed event)
#: and ``request`` (``None`` from the inbox worker and the reconciler: no request is being
#: answered). Which path brought the event: ``kreuzberg_webhooks.cloud.delivered_via()``
#: (``"reconcile"`` or ``"webhook"``). A receiver that raises makes the delivery answer 500 and
#: releases its claim, so the sender's retry (or the worker's, the reconciler's next pass) runs
#: every receiver again: make them idempotent or keep the side effects in one.
webhook_received = Signal()
