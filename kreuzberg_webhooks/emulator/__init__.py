"""A local Kreuzberg Cloud for tests, demos and development: ``kreuzberg-webhooks emulate``.

Standard library only::

    from kreuzberg_webhooks.emulator import Emulator, Faults

    with Emulator("test-key", webhook_url="http://127.0.0.1:8000/webhooks/kreuzberg",
                  webhook_secret=secret, faults=Faults(drop=0.4), time_scale=0.01) as cloud:
        client = JobsClient(api_key="test-key", base_url=cloud.base_url)
"""

from __future__ import annotations

from .jobs import WebhookConfig
from .server import DEFAULT_MAX_UPLOAD, Emulator, EmulatorStats, Faults
from .webhooks import WebhookAttempt, WebhookDelivery

__all__ = [
    "DEFAULT_MAX_UPLOAD",
    "Emulator",
    "EmulatorStats",
    "Faults",
    "WebhookAttempt",
    "WebhookConfig",
    "WebhookDelivery",
]
