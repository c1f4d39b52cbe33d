"""What the protocol's tests share: a secret, a frozen now, a verifier, signed bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kreuzberg_webhooks import ReplayWindow, Verifier, WebhookError, sign
from kreuzberg_webhooks.testing import job_event_payload

SECRET = "verify-test-secret-0123456789abcdef0123"
OLD_SECRET = "verify-old-secret-0123456789abcdef01234"
NOW = 1_800_000_000.0
HOUR = 3600.0
#: A narrow window: ten minutes back, one minute ahead.
WINDOW = ReplayWindow(max_age=600, max_future=60)


def make_verifier(secrets: Any = SECRET, **options: Any) -> Verifier:
    options.setdefault("clock", lambda: NOW)
    return Verifier(secrets, **options)


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Webhook-Signature": sign(body, secret)}


def rejection(verifier: Verifier, body: bytes, headers: dict[str, str]) -> WebhookError:
    """The error *verifier* raises for the delivery; fails the test on anything else."""
    with pytest.raises(WebhookError) as caught:
        verifier.verify(body, headers)
    return caught.value


def event_body(**overrides: Any) -> bytes:
    return json.dumps(job_event_payload(now=NOW, **overrides)).encode()


VALID = event_body()
PREFIX = VALID[:-1]  # the valid object without its closing brace
