"""The inbox and worker the settings describe: ``KREUZBERG_WEBHOOKS["INBOX"]``, ``["INBOX_RETRY"]``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ...exceptions import ConfigurationError
from ..base import RetryPolicy
from ..worker import InboxWorker
from .signals import send_dead, send_failed

__all__ = ["embedded_worker", "inbox_from_setting", "retry_policy_from_settings"]


def inbox_from_setting(value: Any) -> Any:
    """The inbox for an ``INBOX`` value: ``"django"`` (this app's table), an inbox URL, or an inbox."""
    if value == "django":
        from django.apps import apps

        if not apps.is_installed("kreuzberg_webhooks.inbox.django"):
            raise ImproperlyConfigured(
                "KREUZBERG_WEBHOOKS['INBOX'] is 'django': add 'kreuzberg_webhooks.inbox.django' to INSTALLED_APPS "
                "and run manage.py migrate"
            )
        from .inbox import DjangoInbox

        return DjangoInbox()
    if isinstance(value, str):
        from .. import open_inbox

        try:
            return open_inbox(value)
        except ConfigurationError as error:
            raise ImproperlyConfigured(f"KREUZBERG_WEBHOOKS['INBOX']: {error}") from error
    if callable(getattr(value, "enqueue", None)):
        return value
    raise ImproperlyConfigured("KREUZBERG_WEBHOOKS['INBOX'] must be 'django', an inbox URL or an inbox")


def retry_policy_from_settings() -> RetryPolicy:
    """``KREUZBERG_WEBHOOKS["INBOX_RETRY"]``: a dict of :class:`RetryPolicy` options, or a policy."""
    from ...adapters.django.conf import get_setting

    value = get_setting("INBOX_RETRY", default=None)
    if value is None:
        return RetryPolicy()
    if isinstance(value, RetryPolicy):
        return value
    try:
        return RetryPolicy(**{name.lower(): option for name, option in dict(value).items()})
    except (ConfigurationError, TypeError) as error:
        raise ImproperlyConfigured(f"KREUZBERG_WEBHOOKS['INBOX_RETRY']: {error}") from error


class _SettingsWorker(InboxWorker):
    """Looks the worker's receiver up before each round
    (:func:`~kreuzberg_webhooks.adapters.django.inbox_mode.worker_receiver`): each delivery runs
    the mounted webhook view's ``handle_event`` — the ready view's runs the handlers registered
    with ``on()``, then sends ``webhook_received`` — with the handlers of apps whose ``ready()``
    ran after the worker started, and the receiver ``override_settings`` rebuilt."""

    def run_once(self) -> int:
        from ...adapters.django.inbox_mode import worker_receiver

        self.receiver = worker_receiver()
        return super().run_once()


def embedded_worker(**options: Any) -> InboxWorker:
    """A worker for the configured receiver and its inbox, sending this app's signals."""
    from ...adapters.django.conf import get_receiver

    receiver = get_receiver()
    if receiver.inbox is None:
        raise ImproperlyConfigured("KREUZBERG_WEBHOOKS['INBOX'] is not set: there is no inbox to work on")
    options.setdefault("policy", retry_policy_from_settings())
    return _SettingsWorker(receiver, on_failure=send_failed, on_dead=send_dead, **options)
