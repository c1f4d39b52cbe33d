"""A helper for the tests that look at the WebhookError a call raises, if any."""

from __future__ import annotations

from collections.abc import Callable

from kreuzberg_webhooks import WebhookError


def error_from(call: Callable[[], object]) -> WebhookError | None:
    """The WebhookError *call* raises, or None; anything else propagates and fails the test."""
    try:
        call()
    except WebhookError as error:
        return error
    return None
