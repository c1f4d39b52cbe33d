"""Build realistic signed deliveries for tests, the pytest plugin and the CLI.

Every body has the shape the vendor's own SDK models give it (``xberg-io-sdk``:
``WebhookEvent``, ``CrawlWebhookEvent``, ``AutoTuneWebhookEvent``, the job
documents), with UUID event ids. Standard library only::

    from kreuzberg_webhooks.testing import payload_for_event, signed_delivery

    body, headers = signed_delivery("whsec-…", status="failed", error_message="OCR timeout")
    response = client.post("/webhooks/kreuzberg", content=body, headers=headers)

    # A webhook of any family, signed t=<unix seconds>,v1=<hex> as the sender signs it:
    body, headers = signed_delivery("whsec-…", webhook_event_payload(event="job.failed"))
    body, headers = signed_delivery("whsec-…", payload_for_event("crawl.completed", status="partial_success"))
    body, headers = signed_delivery("whsec-…", payload_for_event("auto_tune.failed"))
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from ..protocol.signing import sign, sign_timestamped
from ..protocol.verify import DEFAULT_SIGNATURE_HEADER

__all__ = [
    "AUTO_TUNE_EVENT_TYPES",
    "CRAWL_EVENT_TYPES",
    "EVENT_TYPES",
    "JOB_EVENT_TYPES",
    "OMIT",
    "SCHEMES",
    "FrozenClock",
    "auto_tune_webhook_event_payload",
    "crawl_job_document_payload",
    "crawl_webhook_event_payload",
    "default_scheme",
    "job_document_payload",
    "job_event_payload",
    "new_event_id",
    "new_ulid",
    "payload_for_event",
    "sign_with",
    "signed_delivery",
    "statuses_for_event",
    "unknown_event_payload",
    "webhook_event_payload",
]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

#: The job family's events (the SDK's ``WebhookEvent``), identity ``job_id``.
JOB_EVENT_TYPES = ("job.completed", "job.failed", "job.cancelled")
#: The crawl family's events (``CrawlWebhookEvent``), identity ``crawl_job_id``.
CRAWL_EVENT_TYPES = ("crawl.completed", "crawl.failed")
#: The auto-tune family's events (``AutoTuneWebhookEvent``), identity ``auto_tune_job_id``.
AUTO_TUNE_EVENT_TYPES = ("auto_tune.completed", "auto_tune.failed")
#: Every ``event`` the vendor sends today, family by family.
EVENT_TYPES = JOB_EVENT_TYPES + CRAWL_EVENT_TYPES + AUTO_TUNE_EVENT_TYPES

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
    """A fresh event id: a UUID, as every family's ``event_id`` is.

    Version 7 (its first 48 bits are *now* in milliseconds, the rest random), so
    ids sort by time as the sender's older ULID-like ids did.
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits: 12 for rand_a, 62 for rand_b
    value = (millis << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def new_ulid(now: float | None = None) -> str:
    """A ULID (26 characters, Crockford base32): the ``job_id`` of a RAG job, or an auto-tune job's id."""
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
    # As the SDK's models write it (datetime.isoformat() of an aware UTC time).
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))


#: The inline ``results`` / the document's ``result``: the shape of ``GET /v1/jobs/{id}``'s ``result``.
def _result() -> dict[str, Any]:
    return {
        "content": "Invoice total: $1,234.56",
        "mime_type": "text/markdown",
        "tables": [],
        "images": [],
        "metadata": {"title": "Invoice #12345"},
    }


def webhook_event_payload(
    *, now: float | None = None, event: str = "job.completed", inline_results: bool = True, **overrides: Any
) -> dict[str, Any]:
    """The job family's ``WebhookEvent``, with any field overridden (or ``OMIT``-ted).

    ``job.completed`` carries small inline ``results``, an object (the ``result``
    of ``GET /v1/jobs/{id}``; ``inline_results=False`` leaves them out, as the
    sender does for a result over 100 KiB); ``job.failed`` carries an ``error``.
    ``job_id`` is a UUID (pass ``job_id=new_ulid()`` for a RAG job's).
    ``timestamp`` is RFC 3339, as the vendor's schema has it.
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
        payload["results"] = _result()
    if event == "job.failed":
        payload["error"] = {"code": "2001", "message": "extraction failed: OCR timeout"}
    return _apply(payload, overrides)


def crawl_webhook_event_payload(
    *,
    now: float | None = None,
    event: str = "crawl.completed",
    status: str | None = None,
    documents_discovered: int = 12,
    **overrides: Any,
) -> dict[str, Any]:
    """The crawl family's ``CrawlWebhookEvent``, with any field overridden (or ``OMIT``-ted).

    *status* is ``completed`` or ``partial_success`` for ``crawl.completed``
    (default ``completed``) and ``failed`` for ``crawl.failed``, which carries an
    ``error``. ``progress`` counts *documents_discovered* documents, one failed
    on a partial success. A crawl webhook never carries results.
    """
    now = time.time() if now is None else now
    if status is None:
        status = "failed" if event == "crawl.failed" else "completed"
    failed = {"partial_success": min(1, documents_discovered)}.get(status, 0)
    extracted = 0 if status == "failed" else documents_discovered - failed
    payload: dict[str, Any] = {
        "crawl_job_id": str(uuid.uuid4()),
        "event": event,
        "event_id": new_event_id(now),
        "progress": {
            "documents_discovered": documents_discovered,
            "documents_extracted": extracted,
            "documents_failed": failed,
            "pages_crawled": documents_discovered,
        },
        "status": status,
        "timestamp": _rfc3339(now),
    }
    if status == "failed":
        payload["error"] = {"code": "SEED_UNREACHABLE", "message": "DNS lookup failed"}
    return _apply(payload, overrides)


def auto_tune_webhook_event_payload(
    *, now: float | None = None, event: str = "auto_tune.completed", trials_total: int = 24, **overrides: Any
) -> dict[str, Any]:
    """The auto-tune family's ``AutoTuneWebhookEvent``, with any field overridden (or ``OMIT``-ted).

    ``auto_tune.completed`` ran all *trials_total* trials and has a ``best_score``;
    ``auto_tune.failed`` stopped after a third of them, with an ``error`` and no score.
    """
    now = time.time() if now is None else now
    completed = event != "auto_tune.failed"
    payload: dict[str, Any] = {
        "auto_tune_job_id": new_ulid(now),
        "event": event,
        "event_id": new_event_id(now),
        "project_id": str(uuid.uuid4()),
        "status": "completed" if completed else "failed",
        "timestamp": _rfc3339(now),
        "trials_completed": trials_total if completed else trials_total // 3,
        "trials_total": trials_total,
        "best_score": 0.93 if completed else None,
    }
    if not completed:
        payload["error"] = {"code": "AUTO_TUNE_ERROR", "message": "no trial finished"}
    return _apply(payload, overrides)


def unknown_event_payload(
    *, now: float | None = None, event: str = "document.indexed", **overrides: Any
) -> dict[str, Any]:
    """A webhook whose ``event`` this version does not know: an ``event_id``, and no identity it knows."""
    now = time.time() if now is None else now
    payload: dict[str, Any] = {
        "event": event,
        "event_id": new_event_id(now),
        "timestamp": _rfc3339(now),
        "index_id": "idx-7",
    }
    return _apply(payload, overrides)


def payload_for_event(
    event: str, *, now: float | None = None, status: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """The body of *event*'s family: ``job.*`` a ``WebhookEvent``, ``crawl.*`` a ``CrawlWebhookEvent``,
    ``auto_tune.*`` an ``AutoTuneWebhookEvent``, anything else an event this version does not know.

    *status* matters to a crawl only (``crawl.completed`` with ``partial_success``);
    given for another family it must be the one *event* implies.
    """
    allowed = statuses_for_event(event)
    if status is not None and allowed and status not in allowed:
        raise ValueError(f"{event} does not carry the status {status!r}: expected one of {', '.join(allowed)}")
    if event in CRAWL_EVENT_TYPES:
        return crawl_webhook_event_payload(now=now, event=event, status=status, **overrides)
    if event in JOB_EVENT_TYPES:
        return webhook_event_payload(now=now, event=event, **overrides)
    if event in AUTO_TUNE_EVENT_TYPES:
        return auto_tune_webhook_event_payload(now=now, event=event, **overrides)
    return unknown_event_payload(now=now, event=event, **overrides)


def statuses_for_event(event: str) -> tuple[str, ...]:
    """The job statuses *event* stands for (``job.completed`` and ``crawl.completed``: ``completed``
    and ``partial_success``); empty for an event this version does not know."""
    if event in ("job.completed", "crawl.completed"):
        return ("completed", "partial_success")
    if event in EVENT_TYPES:
        return (event.split(".", 1)[1],)
    return ()


def job_document_payload(
    *, now: float | None = None, metadata: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """An extraction job's document (``job_type: "extraction"``) as a per-request webhook carries it,
    with echoed ``metadata``; created at *now* (default: the current time), inside the verifier's
    document window.

    ``result`` is there only once the job is done (``completed``, ``partial_success``):
    absent, not ``null``, before. A failed job has its reason in ``error`` (and in the
    older ``error_message``).
    """
    now = time.time() if now is None else now
    status = overrides.get("status", "completed")
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "job_type": "extraction",
        "filename": "invoice.pdf",
        "mime_type": "application/pdf",
        "status": status,
        "created_at": _rfc3339(now),
        "processing_time_ms": 1234,
        "metadata": {"request_id": "abc123"} if metadata is None else metadata,
    }
    if status in ("completed", "partial_success"):
        payload["result"] = _result()
    if status == "failed":
        payload["error"] = payload["error_message"] = "extraction failed"
    return _apply(payload, overrides)


def crawl_job_document_payload(*, job_count: int = 2, now: float | None = None, **overrides: Any) -> dict[str, Any]:
    """A crawl job's document (``job_type: "crawl"``): ``progress`` and the *job_count* extraction
    jobs it spawned, listed in ``jobs``; with echoed ``metadata``."""
    now = time.time() if now is None else now
    status = overrides.get("status", "completed")
    failed = 0 if status == "completed" else min(1, job_count)
    jobs = [
        {
            "id": str(uuid.uuid4()),
            "filename": f"page-{index + 1}.html",
            "status": "failed" if index < failed else "completed",
            "source_url": f"https://example.com/docs/{index + 1}",
        }
        for index in range(job_count)
    ]
    payload: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "job_type": "crawl",
        "status": status,
        "created_at": _rfc3339(now),
        "output_mode": "documents",
        "seed_urls": ["https://example.com/docs"],
        "progress": {
            "documents_discovered": job_count,
            "documents_extracted": job_count - failed,
            "documents_failed": failed,
            "pages_crawled": job_count,
        },
        "jobs": jobs,
        "metadata": {"request_id": "abc123"},
    }
    return _apply(payload, overrides)


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
    webhook of any family (a payload with an ``event``) is signed ``t-v1``, as the
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
    """The format the sender signs *payload* with: ``t-v1`` for a webhook of any family, else ``sha256``."""
    return "t-v1" if isinstance(payload, dict) and "event" in payload else "sha256"


def sign_with(scheme: str, body: bytes, secret: str | bytes, *, signed_at: float | None = None) -> str:
    """The signature header value for *body* in *scheme* (``"sha256"`` or ``"t-v1"``)."""
    if scheme == "t-v1":
        return sign_timestamped(body, secret, timestamp=None if signed_at is None else int(signed_at))
    if scheme == "sha256":
        return sign(body, secret)
    raise ValueError(f"unknown signature scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
