"""The deliveries every benchmark sends: the small event, signed for us and for each peer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from kreuzberg_webhooks import sign, sign_timestamped
from kreuzberg_webhooks.testing import job_document_payload, new_event_id, webhook_event_payload

#: 40 random-looking characters, as the dashboard generates (fixed so runs compare).
SECRET = "kzb_whsec_" + hashlib.sha256(b"kreuzberg-webhooks benchmark").hexdigest()[:40]
#: The Standard Webhooks / Svix secret format: ``whsec_`` and base64 key bytes.
PEER_SECRET = "whsec_" + base64.b64encode(SECRET.encode()[:32]).decode()
#: An endpoint receives the events of one project: every delivery carries its id.
PROJECT_ID = "1cbb9d72-660a-4df2-ba3d-66d83b6afaff"


def event_body(now: float | None = None) -> bytes:
    """A small job event as the sender writes it (``json.dumps`` defaults), 237 bytes.

    Every call is a new event of a new job (fresh ``event_id`` and ``job_id``).
    """
    now = time.time() if now is None else now
    payload = {
        "event_id": new_event_id(now),
        "job_id": str(uuid.uuid4()),
        "project_id": PROJECT_ID,
        "status": "completed",
        "error_message": None,
        "timestamp": int(now),
        "attempt_count": 1,
    }
    return json.dumps(payload).encode()


def ours(body: bytes) -> dict[str, str]:
    """Headers of a Kreuzberg Cloud delivery of *body*."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "kreuzberg-webhook/1.0",
        "X-Webhook-Signature": sign(body, SECRET),
    }


def webhook_event_body(now: float | None = None) -> bytes:
    """The inline webhook's ``WebhookEvent`` for a completed job whose result is fetched
    (no inline ``results``), as the sender writes it (``json.dumps`` defaults).

    Every call is a new event of a new job.
    """
    payload = webhook_event_payload(now=now, inline_results=False)
    return json.dumps(payload).encode()


def timestamped(body: bytes, now: float | None = None) -> dict[str, str]:
    """Headers of an inline-webhook delivery of *body*: ``t=<now>,v1=<hex>``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "kreuzberg-webhook/1.0",
        "X-Webhook-Signature": sign_timestamped(body, SECRET, timestamp=int(time.time() if now is None else now)),
    }


def unique_deliveries(count: int) -> list[tuple[bytes, dict[str, str]]]:
    """*count* signed deliveries of distinct events (so none is a duplicate)."""
    now = time.time()
    return [(body, ours(body)) for body in (event_body(now) for _ in range(count))]


def standard_webhooks(body: bytes) -> dict[str, str]:
    """Headers for the same body in the Standard Webhooks scheme (``webhook-*``)."""
    from standardwebhooks.webhooks import Webhook

    msg_id = "msg_" + os.urandom(8).hex()
    # Whole seconds, signed and sent alike (standardwebhooks 1.3 signs the datetime as given).
    now = datetime.now(UTC).replace(microsecond=0)
    signature = Webhook(PEER_SECRET).sign(msg_id, now, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}


def svix(body: bytes) -> dict[str, str]:
    """Headers for the same body in Svix's scheme (``svix-*``)."""
    from svix.webhooks import Webhook

    msg_id = "msg_" + os.urandom(8).hex()
    signature = Webhook(PEER_SECRET).sign(msg_id, datetime.now(UTC), body.decode())
    return {"svix-id": msg_id, "svix-timestamp": str(int(time.time())), "svix-signature": signature}


def stripe(body: bytes) -> str:
    """The ``Stripe-Signature`` header for the same body (``t=…,v1=…``)."""
    timestamp = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def job_document_body(size: int) -> bytes:
    """A job document whose ``result.content`` makes the body about *size* bytes.

    The content is text with line breaks, escaped in JSON as the sender does.
    """
    line = "Invoice 12345 - total due: 1,234.56 EUR; payable within 30 days.\n"
    payload: dict[str, Any] = job_document_payload()
    base = len(json.dumps(payload).encode())
    encoded_line = len(json.dumps(line).encode()) - 2
    payload["result"]["content"] = line * max(1, (size - base) // encoded_line)
    return json.dumps(payload).encode()
