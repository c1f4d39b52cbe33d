"""Helpers the inbox tests share: entries built from real payloads, and counting handlers."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from kreuzberg_webhooks import Event, parse_event
from kreuzberg_webhooks.inbox import InboxEntry
from kreuzberg_webhooks.protocol.keys import delivery_key
from kreuzberg_webhooks.protocol.signing import sign
from kreuzberg_webhooks.testing import job_event_payload

__all__ = ["SECRET", "CountingHandler", "entry_for"]

SECRET = "inbox-tests-secret-0123456789abcdef0123"


def entry_for(payload: dict[str, Any] | None = None, *, received_at: float, scope: str = "") -> InboxEntry:
    """The entry the receiver would write for *payload* (default: a fresh job.completed event)."""
    payload = payload if payload is not None else job_event_payload(now=received_at)
    body = json.dumps(payload).encode()
    event = parse_event(payload)
    return InboxEntry(
        key=delivery_key(event, scope),
        scope=scope,
        event_id=event.event_id,
        event_type=event.type,
        job_id=str(event.job_id),
        body=body,
        headers=(("x-webhook-signature", sign(body, SECRET)),),
        received_at=received_at,
    )


class CountingHandler:
    """A handler that counts the events it ran for, and raises while ``failing`` is set."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.failing = False
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if self.failing:
            raise RuntimeError(f"downstream is down (job {event.job_id})")
        with self._lock:
            self.calls[str(event.job_id)] += 1
