"""Build realistic signed deliveries for tests, the pytest plugin and the CLI.

Standard library only::

    from kreuzberg_webhooks.testing import signed_delivery

    body, headers = signed_delivery("whsec-…", status="failed", error_message="OCR timeout")
    response = client.post("/webhooks/kreuzberg", content=body, headers=headers)
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from .signing import sign
from .verify import DEFAULT_SIGNATURE_HEADER

__all__ = [
    "OMIT",
    "FrozenClock",
    "crawl_job_document_payload",
    "job_document_payload",
    "job_event_payload",
    "new_event_id",
    "signed_delivery",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: Leave a field out of the payload entirely: ``job_event_payload(status=OMIT)``.
OMIT: Any = object()


class FrozenClock:
    """A clock that moves only when told to; callable like ``time.time``.

    Pass it as ``clock=`` to :class:`~kreuzberg_webhooks.Verifier`,
    :class:`~kreuzberg_webhooks.Receiver` options or
    :class:`~kreuzberg_webhooks.MemoryStore`, then ``advance()`` it past a
    lease or a replay window instead of sleeping.
    """

    __slots__ = ("now",)

    def __init__(self, now: float | None = None) -> None:
        #: The current unix time; starts at the real (whole-second) time by default,
        #: so deliveries stamped with it also verify against an app on the real clock.
        self.now = float(int(time.time())) if now is None else float(now)

    def __call__(self) -> float:
        return self.now

    def __repr__(self) -> str:
        return f"FrozenClock(now={self.now!r})"

    def advance(self, seconds: float) -> float:
        """Move the clock forward by *seconds* (backward when negative); return the new time."""
        self.now += seconds
        return self.now


def new_event_id(now: float | None = None) -> str:
    """A ULID-like event id: 48-bit milliseconds then 80 random bits, Crockford base32."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _apply(payload: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if value is OMIT:
            payload.pop(key, None)
        else:
            payload[key] = value
    return payload


def job_event_payload(*, now: float | None = None, **overrides: Any) -> dict[str, Any]:
    """The small project-webhook event, with any field overridden (or ``OMIT``-ted)."""
    now = time.time() if now is None else now
    payload: dict[str, Any] = {
        "event_id": new_event_id(now),
        "job_id": str(uuid.uuid4()),
        "project_id": str(uuid.uuid4()),
        "status": "completed",
        "error_message": None,
        "timestamp": int(now),
        "attempt_count": 1,
    }
    return _apply(payload, overrides)


def job_document_payload(*, metadata: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """The full job document of a per-request webhook, with echoed ``metadata``."""
    status = overrides.get("status", "completed")
    has_result = status in ("completed", "partial_success")
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "filename": "invoice.pdf",
        "status": status,
        "created_at": "2025-12-21T10:00:00Z",
        "processing_time_ms": 1234,
        "error_message": "extraction failed" if status == "failed" else None,
        "result": {
            "content": "Invoice total: $1,234.56",
            "mime_type": "text/markdown",
            "tables": [],
            "images": [],
            "metadata": {"title": "Invoice #12345"},
        }
        if has_result
        else None,
        "metadata": {"request_id": "abc123"} if metadata is None else metadata,
    }
    return _apply(payload, overrides)


def crawl_job_document_payload(*, job_count: int = 2, **overrides: Any) -> dict[str, Any]:
    """A crawl job's document: the *job_count* extraction jobs it spawned, listed in ``job_ids``."""
    fields: dict[str, Any] = {
        "filename": None,
        "processing_time_ms": None,
        "result": None,
        "job_ids": [str(uuid.uuid4()) for _ in range(job_count)],
        **overrides,
    }
    return job_document_payload(**fields)


def signed_delivery(
    secret: str | bytes | None,
    payload: dict[str, Any] | bytes | None = None,
    *,
    header: str = DEFAULT_SIGNATURE_HEADER,
    signature: str | None = None,
    **overrides: Any,
) -> tuple[bytes, dict[str, str]]:
    """Return ``(body, headers)`` for a delivery as Kreuzberg Cloud sends it.

    *payload* defaults to :func:`job_event_payload` with *overrides*; bytes are
    sent as they are. *signature* replaces the computed header value (to send
    a deliberately wrong one); a ``None`` secret sends no signature header.
    """
    if payload is None:
        payload = job_event_payload(**overrides)
    elif overrides:
        raise TypeError("pass field overrides or a payload, not both")
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "kreuzberg-webhook/test"}
    if isinstance(payload, dict) and "event_id" in payload:
        headers["X-Idempotency-Key"] = str(payload["event_id"])
    if signature is not None:
        headers[header] = signature
    elif secret is not None:
        headers[header] = sign(body, secret)
    return body, headers
