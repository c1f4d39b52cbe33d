"""A webhook view of the application's own, for the inbox-mode cases: its handle_event records what it saw."""

from __future__ import annotations

import os
import time
from typing import Any

from django.http import HttpRequest
from django.views import View

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.django import AsyncKreuzbergWebhookMixin, KreuzbergWebhookMixin

#: (view, event_id, request) per handle_event call, in this process.
CALLS: list[tuple[str, str | None, Any]] = []


def _record(view: str, event: Event, request: HttpRequest | None) -> None:
    CALLS.append((view, event.event_id, request))
    log = os.environ.get("KREUZBERG_TEST_EVENTS_LOG")
    if log:  # a worker in another process: the test reads the file
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{view} {event.event_id}\n")
    block = os.environ.get("KREUZBERG_TEST_BLOCK_FILE")
    while block and os.path.exists(block):  # a handler stuck until the test removes the file
        time.sleep(0.01)


class JobWebhook(KreuzbergWebhookMixin, View):  # type: ignore[misc]
    def handle_event(self, request: HttpRequest | None, event: Event) -> None:
        _record("sync", event, request)


class AsyncJobWebhook(AsyncKreuzbergWebhookMixin, View):  # type: ignore[misc]
    async def handle_event(self, request: HttpRequest | None, event: Event) -> None:
        _record("async", event, request)
