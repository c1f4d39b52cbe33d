"""The Django signal sent for every delivery the ready view processes."""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["webhook_received"]

#: Sent once per verified, not-yet-processed delivery by
#: :class:`~kreuzberg_webhooks.django.KreuzbergWebhookView` (and any
#: view that keeps the mixin's default ``handle_event``), after the handlers
#: registered on the receiver. Keyword arguments: ``sender`` (the view class),
#: ``event`` (the typed event) and ``request`` (``None`` in inbox mode, where the
#: inbox worker sends it after the request was answered). A receiver that raises makes the
#: delivery answer 500 and releases its claim, so the sender's retry runs every
#: receiver again: make them idempotent or keep the side effects in one.
webhook_received = Signal()
