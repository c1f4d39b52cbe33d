"""Build realistic signed deliveries for tests, the pytest plugin and the CLI.

Standard library only::

    from kreuzberg_webhooks.testing import signed_delivery

    body, headers = signed_delivery("whsec-…", status="failed", error_message="OCR timeout")
    response = client.post("/webhooks/kreuzberg", content=body, headers=headers)

    # The inline webhook's WebhookEvent, signed t=<unix seconds>,v1=<hex>:
    body, headers = signed_delivery("whsec-…", webhook_event_payload(event="job.failed"))
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from .signing import sign, sign_timestamped
from .verify import DEFAULT_SIGNATURE_HEADER

__all__ = [
    "OMIT",
    "SCHEMES",
    "FrozenClock",
    "crawl_job_document_payload",
    "default_scheme",
    "job_document_payload",
    "job_event_payload",
    "new_event_id",
    "sign_with",
    "signed_delivery",
    "webhook_event_payload",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: Leave a field out of the payload entirely: ``job_event_payload(status=OMIT)``.
OMIT: Any = object()
#: The signature formats :func:`signed_delivery` can produce (``Verifier(schemes=...)`` names).
SCHEMES = ("sha256", "t-v1")


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


def _rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def webhook_event_payload(
    *, now: float | None = None, event: str = "job.completed", inline_results: bool = True, **overrides: Any
) -> dict[str, Any]:
    """The inline webhook's ``WebhookEvent``, with any field overridden (or ``OMIT``-ted).

    ``job.completed`` carries small inline ``results`` (``inline_results=False``
    leaves them out, as the sender does for a result over 100 KiB);
    ``job.failed`` carries an ``error``. ``timestamp`` is RFC 3339, as the
    vendor's schema has it.
    """
    now = time.time() if now is None else now
    payload: dict[str, Any] = {
        "event": event,
        "event_id": new_event_id(now),
        "job_id": str(uuid.uuid4()),
        "timestamp": _rfc3339(now),
        "metadata": {"batch": "2026-09"},
    }
    if event == "job.completed" and inline_results:
        payload["results"] = [{"content": "Invoice total: $1,234.56", "mime_type": "text/markdown"}]
    if event == "job.failed":
        payload["error"] = {"code": "2001", "message": "extraction failed: OCR timeout"}
    return _apply(payload, overrides)


def job_document_payload(
    *, now: float | None = None, metadata: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """The full job document of a per-request webhook, with echoed ``metadata``; created at *now*
    (default: the current time), inside the verifier's document window."""
    status = overrides.get("status", "completed")
    has_result = status in ("completed", "partial_success")
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "filename": "invoice.pdf",
        "status": status,
        "created_at": _rfc3339(time.time() if now is None else now),
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


def crawl_job_document_payload(*, job_count: int = 2, now: float | None = None, **overrides: Any) -> dict[str, Any]:
    """A crawl job's document: the *job_count* extraction jobs it spawned, listed in ``job_ids``."""
    fields: dict[str, Any] = {
        "filename": None,
        "processing_time_ms": None,
        "result": None,
        "job_ids": [str(uuid.uuid4()) for _ in range(job_count)],
        **overrides,
    }
    return job_document_payload(now=now, **fields)


def signed_delivery(
    secret: str | bytes | None,
    payload: dict[str, Any] | bytes | None = None,
    *,
    header: str = DEFAULT_SIGNATURE_HEADER,
    signature: str | None = None,
    scheme: str | None = None,
    signed_at: float | None = None,
    **overrides: Any,
) -> tuple[bytes, dict[str, str]]:
    """Return ``(body, headers)`` for a delivery as Kreuzberg Cloud sends it.

    *payload* defaults to :func:`job_event_payload` with *overrides*; bytes are
    sent as they are. *signature* replaces the computed header value (to send
    a deliberately wrong one); a ``None`` secret sends no signature header.

    *scheme* is ``"sha256"`` (``sha256=<hex>`` over the body) or ``"t-v1"``
    (``t=<signed_at>,v1=<hex>``; *signed_at* defaults to now). By default a
    ``WebhookEvent`` payload (one with an ``event``) is signed ``t-v1``, as the
    sender does, and everything else ``sha256``.
    """
    if payload is None:
        payload = job_event_payload(**overrides)
    elif overrides:
        raise TypeError("pass field overrides or a payload, not both")
    if scheme is None:
        scheme = default_scheme(payload)
    elif scheme not in SCHEMES:
        raise ValueError(f"unknown signature scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "kreuzberg-webhook/test"}
    if isinstance(payload, dict) and "event_id" in payload and "event" not in payload:
        headers["X-Idempotency-Key"] = str(payload["event_id"])
    if signature is not None:
        headers[header] = signature
    elif secret is not None:
        headers[header] = sign_with(scheme, body, secret, signed_at=signed_at)
    return body, headers


def default_scheme(payload: dict[str, Any] | bytes | None) -> str:
    """The format the sender signs *payload* with: ``t-v1`` for a ``WebhookEvent``, else ``sha256``."""
    return "t-v1" if isinstance(payload, dict) and "event" in payload else "sha256"


def sign_with(scheme: str, body: bytes, secret: str | bytes, *, signed_at: float | None = None) -> str:
    """The signature header value for *body* in *scheme* (``"sha256"`` or ``"t-v1"``)."""
    if scheme == "t-v1":
        return sign_timestamped(body, secret, timestamp=None if signed_at is None else int(signed_at))
    if scheme == "sha256":
        return sign(body, secret)
    raise ValueError(f"unknown signature scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
