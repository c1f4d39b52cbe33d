"""The embedded inbox worker of the Django app; its settings are read in
:mod:`kreuzberg_webhooks.django.conf`, the one place Django settings are read."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ...inbox.worker import InboxWorker
from ..conf import get_receiver, inbox_from_setting, retry_policy_from_settings
from .signals import send_dead, send_failed

__all__ = ["embedded_worker", "inbox_from_setting", "retry_policy_from_settings"]


class _SettingsWorker(InboxWorker):
    """Looks the worker's receiver up before each round
    (:func:`~kreuzberg_webhooks.django.inbox_mode.worker_receiver`): each delivery runs
    the mounted webhook view's ``handle_event`` — the ready view's runs the handlers registered
    with ``on()``, then sends ``webhook_received`` — with the handlers of apps whose ``ready()``
    ran after the worker started, and the receiver ``override_settings`` rebuilt."""

    def run_once(self) -> int:
        from ..inbox_mode import worker_receiver

        self.receiver = worker_receiver()
        return super().run_once()


def embedded_worker(**options: Any) -> InboxWorker:
    """A worker for the configured receiver and its inbox, sending this app's signals."""
    receiver = get_receiver()
    if receiver.inbox is None:
        raise ImproperlyConfigured("KREUZBERG_WEBHOOKS['INBOX'] is not set: there is no inbox to work on")
    options.setdefault("policy", retry_policy_from_settings())
    return _SettingsWorker(receiver, on_failure=send_failed, on_dead=send_dead, **options)
