"""The webhook endpoint described in OpenAPI 3.1: its request body, signature header and answers.

Standard library only; a framework adapter merges the fragment into its own
document (``KreuzbergWebhook.route_options()`` does it for FastAPI). The
answers are built from the error tree in :mod:`kreuzberg_webhooks.exceptions`,
so every status and reason the receiver can send is listed, and nothing else.
"""

from __future__ import annotations

from typing import Any

from .exceptions import WebhookError
from .protocol.keys import MAX_EVENT_ID_LENGTH, MAX_JOB_ID_LENGTH
from .protocol.signing import DEFAULT_SCHEMES
from .protocol.verify import DEFAULT_SIGNATURE_HEADER

__all__ = ["ANSWER_SCHEMA", "ERROR_SCHEMA", "PAYLOAD_SCHEMAS", "webhook_operation"]

_UUID = {"type": "string", "format": "uuid"}
_JOB_ID = {
    "type": "string",
    "minLength": 1,
    "description": "A UUID (an extraction or crawl job) or a ULID (a RAG job); one longer than "
    f"{MAX_JOB_ID_LENGTH} characters is accepted and keyed by its digest.",
}
_EVENT_ID = {
    "type": "string",
    "minLength": 1,
    "description": "Stable across retries of the same event (a UUID from the service); one longer than "
    f"{MAX_EVENT_ID_LENGTH} characters is accepted and keyed by its digest.",
}
_STATUS = {
    "type": "string",
    "description": "The job's status: completed, partial_success, failed or cancelled when it is final "
    "(any case: COMPLETED is completed; a status this version does not know is accepted and passed on "
    "as a lower-case string).",
    "examples": ["completed"],
}
_METADATA = {
    "type": ["object", "null"],
    "additionalProperties": True,
    "description": "The metadata given when the job was submitted, echoed back.",
}
_TIMESTAMP = {
    "type": ["string", "integer"],
    "description": "When the event happened: an RFC 3339 date-time (or unix seconds).",
}
_ERROR = {
    "type": "object",
    "description": "Why the job failed.",
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    "additionalProperties": True,
}
_PROGRESS = {
    "type": "object",
    "description": "The crawl's counters.",
    "properties": {
        name: {"type": "integer"}
        for name in ("documents_discovered", "documents_extracted", "documents_failed", "pages_crawled")
    },
    "additionalProperties": True,
}
_RESULT = {
    "type": ["object", "null"],
    "description": "The extraction result; absent until the job is done.",
    "properties": {
        "content": {"type": ["string", "null"]},
        "mime_type": {"type": ["string", "null"]},
        "tables": {"type": "array"},
        "images": {"type": "array"},
        "metadata": {"type": "object", "additionalProperties": True},
    },
    "additionalProperties": True,
}
_TIME = {"type": ["string", "integer", "null"], "description": "ISO 8601 (or unix seconds)."}

#: The JSON Schema of every body shape the receiver accepts, by name. Each is
#: lenient like the receiver: unknown fields are allowed and kept in ``event.raw``.
PAYLOAD_SCHEMAS: dict[str, dict[str, Any]] = {
    "JobEvent": {
        "title": "JobEvent",
        "description": "The small event of a project (dashboard) webhook.",
        "type": "object",
        "required": ["event_id", "job_id", "project_id", "status", "timestamp"],
        "properties": {
            "event_id": _EVENT_ID,
            "job_id": _JOB_ID,
            "project_id": _UUID,
            "status": _STATUS,
            "error_message": {"type": ["string", "null"], "description": "Why the job failed."},
            "timestamp": {"type": "integer", "description": "When the event happened, in unix seconds."},
            "attempt_count": {"type": "integer", "minimum": 1, "description": "1 on the first attempt."},
        },
        "additionalProperties": True,
    },
    "JobDocument": {
        "title": "JobDocument",
        "description": "An extraction job's document (``job_type`` ``extraction``): a per-request webhook's "
        "body, or ``GET /v1/jobs/{id}``.",
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": _JOB_ID,
            "job_type": {"type": "string", "enum": ["extraction"]},
            "status": _STATUS,
            "filename": {"type": ["string", "null"]},
            "mime_type": {"type": ["string", "null"]},
            "created_at": _TIME,
            "completed_at": _TIME,
            "processing_time_ms": {"type": ["integer", "null"]},
            "error": {"type": ["string", "null"], "description": "Why the job failed."},
            "error_message": {"type": ["string", "null"], "description": "Why the job failed (older field)."},
            "result": _RESULT,
            "webhook_delivery": {
                "type": "object",
                "description": "The service's own record of the job's inline webhook.",
                "properties": {
                    "attempt_count": {"type": "integer"},
                    "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                    "last_error": {"type": ["string", "null"]},
                },
                "additionalProperties": True,
            },
            "child_job_ids": {"type": "array", "items": {"type": "string"}},
            "parent_crawl_job_id": {"type": ["string", "null"]},
            "source_url": {"type": ["string", "null"]},
            "cached": {"type": ["boolean", "null"]},
            "pages_extracted": {"type": ["integer", "null"]},
            "tables_extracted": {"type": ["integer", "null"]},
            "images_extracted": {"type": ["integer", "null"]},
            "metadata": _METADATA,
        },
        "additionalProperties": True,
    },
    "WebhookEvent": {
        "title": "WebhookEvent",
        "description": "The job event of an inline webhook (the ``webhook`` block of ``POST /v1/extract``), "
        "usually signed ``t=…,v1=…``.",
        "type": "object",
        "required": ["event", "job_id", "timestamp"],
        "properties": {
            "event": {
                "type": "string",
                "description": "The event type: job.completed, job.failed or job.cancelled.",
                "examples": ["job.completed"],
            },
            "event_id": _EVENT_ID,
            "job_id": _JOB_ID,
            "timestamp": _TIMESTAMP,
            "results": {
                "type": ["object", "array"],
                "description": "The result (an object, the ``result`` of GET /v1/jobs/{job_id}; a list from older "
                "senders), on job.completed, when it fits in 100 KiB; otherwise fetch it.",
            },
            "error": _ERROR,
            "metadata": _METADATA,
        },
        "additionalProperties": True,
    },
    "CrawlWebhookEvent": {
        "title": "CrawlWebhookEvent",
        "description": "A crawl's webhook: crawl.completed (status completed or partial_success) or crawl.failed.",
        "type": "object",
        "required": ["event", "crawl_job_id", "timestamp"],
        "properties": {
            "event": {"type": "string", "examples": ["crawl.completed"]},
            "event_id": _EVENT_ID,
            "crawl_job_id": _JOB_ID,
            "status": _STATUS,
            "timestamp": _TIMESTAMP,
            "progress": _PROGRESS,
            "error": _ERROR,
            "metadata": _METADATA,
        },
        "additionalProperties": True,
    },
    "AutoTuneWebhookEvent": {
        "title": "AutoTuneWebhookEvent",
        "description": "An auto-tune run's webhook: auto_tune.completed or auto_tune.failed.",
        "type": "object",
        "required": ["event", "auto_tune_job_id", "timestamp"],
        "properties": {
            "event": {"type": "string", "examples": ["auto_tune.completed"]},
            "event_id": _EVENT_ID,
            "auto_tune_job_id": _JOB_ID,
            "project_id": _UUID,
            "status": _STATUS,
            "timestamp": _TIMESTAMP,
            "trials_completed": {"type": "integer"},
            "trials_total": {"type": "integer"},
            "best_score": {"type": ["number", "null"]},
            "error": _ERROR,
            "metadata": _METADATA,
        },
        "additionalProperties": True,
    },
    "CrawlJobDocument": {
        "title": "CrawlJobDocument",
        "description": "A crawl job's document (``job_type`` ``crawl``), listing the extraction jobs it spawned "
        "(the ``jobs`` entries' ids, or ``job_ids``).",
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": _JOB_ID,
            "job_type": {"type": "string", "enum": ["crawl"]},
            "status": _STATUS,
            "job_ids": {"type": "array", "items": {"type": "string"}},
            "jobs": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
            "progress": _PROGRESS,
            "output_mode": {"type": "string"},
            "seed_urls": {"type": "array", "items": {"type": "string"}},
            "pages": {"type": "array"},
            "created_at": _TIME,
            "filename": {"type": ["string", "null"]},
            "processing_time_ms": {"type": ["integer", "null"]},
            "error_message": {"type": ["string", "null"]},
            "result": {"type": ["object", "null"], "additionalProperties": True},
            "metadata": _METADATA,
        },
        "additionalProperties": True,
    },
    "UnknownEvent": {
        "title": "UnknownEvent",
        "description": "A signed event of a family this version does not know: any ``event`` with an "
        "``event_id``. Acknowledged, deduplicated by its ``event_id`` and handed to the catch-all handlers.",
        "type": "object",
        "required": ["event", "event_id"],
        "properties": {"event": {"type": "string"}, "event_id": _EVENT_ID, "timestamp": _TIMESTAMP},
        "additionalProperties": True,
    },
}

#: The body of every refused delivery: a stable reason code and a fixed sentence.
ERROR_SCHEMA: dict[str, Any] = {
    "title": "WebhookErrorAnswer",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "The stable reason code (the status table's reason column)."},
        "detail": {"type": "string", "description": "A fixed sentence; never the body, a secret or a signature."},
    },
}

#: The body of an acknowledged delivery.
ANSWER_SCHEMA: dict[str, Any] = {
    "title": "WebhookAnswer",
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": ["processed", "queued", "duplicate"]}},
}

_DESCRIPTIONS = {
    400: "Signed, but not a valid delivery, or its timestamp is outside the replay window. The sender does not retry.",
    401: "The signature is missing, malformed or matches no secret. The sender does not retry.",
    413: "The body is over the receiver's limit.",
    429: "The same event is being processed by another request; retry after ``Retry-After`` seconds.",
    500: "A handler raised; the claim was released, so the sender's retry is processed.",
    503: "The replay store or the secrets are unavailable; the sender retries.",
}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds left on the other request's claim.", "schema": {"type": "integer"}}
}


#: Answers only a handler run in the request can give.
_HANDLER_REASONS = frozenset({"in_flight", "handler_error"})
#: Not an answer to a POST: the operation documents POST only.
_NOT_FOR_POST = frozenset({"method_not_allowed"})


def _reasons_by_status(inbox: bool) -> dict[int, list[str]]:
    """Every concrete reason code the error tree can answer, grouped by status."""
    found: dict[int, set[str]] = {}
    pending: list[type[WebhookError]] = [WebhookError]
    while pending:
        cls = pending.pop()
        subclasses = cls.__subclasses__()
        pending.extend(subclasses)
        if cls is WebhookError or subclasses or cls.reason in _NOT_FOR_POST:
            continue
        if not (inbox and cls.reason in _HANDLER_REASONS):
            found.setdefault(cls.status_code, set()).add(cls.reason)
    return {status: sorted(reasons) for status, reasons in sorted(found.items())}


#: Each signature format: how the header's value looks (an ECMA-262 pattern) and a description.
_SIGNATURE_FORMATS: dict[str, tuple[str, str]] = {
    "sha256": (
        "sha256=[0-9a-fA-F]{64}",
        "``sha256=<hex>``: the HMAC-SHA256 of the raw body, keyed with the webhook secret (dashboard webhooks)",
    ),
    "t-v1": (
        r"(?=(?:[^,]*,)*t=[0-9]+(?:,|$))(?=(?:[^,]*,)*v1=[0-9a-fA-F]{64}(?:,|$))[^\s]+",
        "``t=<unix seconds>,v1=<hex>``: the HMAC-SHA256 of ``<t>.`` followed by the raw body "
        "(inline webhooks); several ``v1=`` while the sender rotates its secret",
    ),
}


def _signature_parameter(header: str, schemes: tuple[str, ...]) -> dict[str, Any]:
    known = [_SIGNATURE_FORMATS[name] for name in schemes if name in _SIGNATURE_FORMATS]
    schema: dict[str, Any] = {"type": "string"}
    if known and len(known) == len(schemes):  # a custom scheme's shape is unknown: no pattern then
        schema["pattern"] = "^(?:" + "|".join(pattern for pattern, _ in known) + ")$"
    formats = "; or ".join(description for _, description in known) or "the receiver's signature"
    return {
        "name": header,
        "in": "header",
        "required": True,
        "description": f"The signature: {formats}.",
        "schema": schema,
    }


def webhook_operation(
    header: str = DEFAULT_SIGNATURE_HEADER, *, schemes: tuple[str, ...] = DEFAULT_SCHEMES, inbox: bool = False
) -> dict[str, Any]:
    """The OpenAPI operation fields of the webhook route: ``requestBody``, ``parameters`` and ``responses``.

    :param header: the signature header's name, as the receiver is configured.
    :param schemes: the names of the signature formats the receiver accepts
        (``Verifier(schemes=…)``; both by default).
    :param inbox: the receiver writes deliveries to an inbox (``Receiver(inbox=…)``):
        a new delivery is answered ``202 queued``, and no handler runs in the
        request (so no ``429 in_flight`` or ``500 handler_error``).
    """
    responses: dict[str, Any] = {
        "200": {
            "description": "Acknowledged: processed now, or a duplicate of an event already processed "
            "(then with the header ``x-kreuzberg-duplicate: true``).",
            "content": {"application/json": {"schema": ANSWER_SCHEMA}},
        }
    }
    if inbox:
        responses["202"] = {
            "description": "Written durably to the inbox; the handlers run later, out of the request.",
            "content": {"application/json": {"schema": ANSWER_SCHEMA}},
        }
        responses["200"]["description"] = "Acknowledged: a duplicate of a delivery already queued, running or done."
    for status, reasons in _reasons_by_status(inbox).items():
        error_schema = {**ERROR_SCHEMA, "properties": {**ERROR_SCHEMA["properties"], "error": {"enum": reasons}}}
        response: dict[str, Any] = {
            "description": f"{_DESCRIPTIONS.get(status, 'Refused.')} Reasons: {', '.join(reasons)}.",
            "content": {"application/json": {"schema": error_schema}},
        }
        if status == 429:
            response["headers"] = _RETRY_AFTER
        responses[str(status)] = response
    return {
        "requestBody": {
            "required": True,
            "description": "The delivery exactly as the sender signed it; every shape below is accepted.",
            "content": {"application/json": {"schema": {"anyOf": list(PAYLOAD_SCHEMAS.values())}}},
        },
        "parameters": [
            _signature_parameter(header, schemes),
            {
                "name": "X-Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The event id, sent by the sender for information; deduplication uses signed "
                "content only.",
                "schema": {"type": "string"},
            },
        ],
        "responses": responses,
    }
