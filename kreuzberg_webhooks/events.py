"""Typed, frozen events for every delivery shape of ``docs/contract.md`` §2.

* :class:`JobEvent` — the small project-webhook event (``event_id``, ``job_id``,
  ``status``, ``timestamp`` …).
* :class:`JobDocument` — the full job document of a per-request webhook (or of
  ``GET /v1/jobs/{id}``), with the caller's ``metadata`` echoed back.
* :class:`CrawlJobDocument` — a crawl job listing the extraction jobs it spawned.
* :class:`WebhookEvent` — the inline webhook's job event (``event``, ``event_id``,
  ``job_id``, ``timestamp``, inline ``results`` or an ``error``).
* :class:`CrawlWebhookEvent` — a crawl's webhook (``crawl.completed``, ``crawl.failed``).
* :class:`AutoTuneWebhookEvent` — an auto-tune run's webhook (``auto_tune.completed``,
  ``auto_tune.failed``).
* :class:`UnknownEvent` — a signed event of a family this version does not know,
  identified by its ``event_id`` (forward compatibility, ``docs/contract.md`` §2e).

Parsing is strict about what identifies a delivery (ids, status, timestamp)
and lenient about everything else: unknown statuses stay plain strings and
every event keeps the whole decoded payload in ``raw``, so a new kind of event
is never dropped. Statuses and event types are read in lower case (the Pro tier
sends ``COMPLETED``), and a job id is a string: a UUID written lower-case with
hyphens, anything else (a ULID) as sent.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias
from uuid import UUID

from ._hot import parse_uuid, project_uuid, slot_setter
from .exceptions import InvalidField, InvalidPayload, MissingField
from .protocol.keys import (
    MAX_EVENT_ID_LENGTH,
    MAX_EVENT_TYPE_LENGTH,
    MAX_JOB_ID_LENGTH,
    MAX_STATUS_LENGTH,
    bounded,
    delivery_key,
)

logger = logging.getLogger("kreuzberg_webhooks")

__all__ = [
    "AutoTuneWebhookEvent",
    "CrawlJobDocument",
    "CrawlProgress",
    "CrawlWebhookEvent",
    "Event",
    "EventType",
    "JobDocument",
    "JobEvent",
    "JobFailure",
    "JobResult",
    "JobStatus",
    "UnknownEvent",
    "WebhookDelivery",
    "WebhookEvent",
    "canonical_job_id",
    "parse_event",
]


class JobStatus(StrEnum):
    """A job's (or crawl job's) status; deliveries normally carry one of the terminal four."""

    AWAITING_UPLOAD = "awaiting_upload"
    PENDING = "pending"
    PROCESSING = "processing"
    CHUNKING = "chunking"
    AGGREGATING = "aggregating"
    #: A crawl job fetching pages.
    CRAWLING = "crawling"
    #: A crawl job extracting the pages it fetched.
    EXTRACTING = "extracting"
    COMPLETED = "completed"
    PARTIAL_SUCCESS = "partial_success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job will not change status again."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.PARTIAL_SUCCESS, JobStatus.FAILED, JobStatus.CANCELLED})
_STATUSES: dict[str, JobStatus] = {s.value: s for s in JobStatus}


class EventType(StrEnum):
    """The event types handlers register for (``Receiver.on``)."""

    JOB_COMPLETED = "job.completed"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"
    CRAWL_COMPLETED = "crawl.completed"
    CRAWL_FAILED = "crawl.failed"
    #: A cancelled crawl job's document; the service sends no ``crawl.cancelled`` webhook.
    CRAWL_CANCELLED = "crawl.cancelled"
    AUTO_TUNE_COMPLETED = "auto_tune.completed"
    AUTO_TUNE_FAILED = "auto_tune.failed"


# `partial_success` is a completed job with a partial result (docs/contract.md §2).
_TYPES: dict[str, str] = {
    JobStatus.COMPLETED: EventType.JOB_COMPLETED,
    JobStatus.PARTIAL_SUCCESS: EventType.JOB_COMPLETED,
    JobStatus.FAILED: EventType.JOB_FAILED,
    JobStatus.CANCELLED: EventType.JOB_CANCELLED,
}
_CRAWL_TYPES: dict[str, str] = {
    JobStatus.COMPLETED: EventType.CRAWL_COMPLETED,
    JobStatus.PARTIAL_SUCCESS: EventType.CRAWL_COMPLETED,
    JobStatus.FAILED: EventType.CRAWL_FAILED,
    JobStatus.CANCELLED: EventType.CRAWL_CANCELLED,
}


def event_type_for(status: str) -> str:
    """The event type of a job's status: ``job.completed`` for ``partial_success`` too,
    ``job.<status>`` for a status this version does not know."""
    return _TYPES.get(status) or f"job.{status}"


def crawl_event_type_for(status: str) -> str:
    """The event type of a crawl job's status: ``crawl.completed`` for ``partial_success``
    too, ``crawl.<status>`` for a status this version does not know."""
    return _CRAWL_TYPES.get(status) or f"crawl.{status}"


@dataclass(frozen=True, slots=True)
class JobEvent:
    """The small event a project webhook delivers."""

    event_id: str
    #: The job's id: a UUID written lower-case with hyphens, or a ULID as sent.
    job_id: str
    project_id: UUID
    #: A :class:`JobStatus`, or the plain (lower-case) string of a status this version does not know.
    status: JobStatus | str
    error_message: str | None
    #: When the event happened (the signed ``timestamp``), timezone-aware UTC.
    timestamp: datetime
    #: 1 on the first try; a handler can tell a late retry from a first delivery.
    attempt_count: int
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def type(self) -> str:
        """``job.completed``, ``job.failed``, ``job.cancelled`` (or ``job.<status>``)."""
        # event_type_for inlined: the receiver dispatches on this for every delivery.
        return _TYPES.get(self.status) or f"job.{self.status}"

    @property
    def is_retry(self) -> bool:
        """Whether the sender has tried this event before."""
        return self.attempt_count > 1

    @property
    def dedup_key(self) -> str:
        """The key replay protection uses for this event with static secrets (``keys.delivery_key``)."""
        return delivery_key(self)


# A frozen dataclass's __init__ stores each field through object.__setattr__ (benchmark row "1 slots");
# the slots' own setters store the same values for a third of the cost, and a
# JobEvent is built on every delivery. JobEvent has no __post_init__ to skip.
_set_event_id = slot_setter(JobEvent, "event_id")
_set_job_id = slot_setter(JobEvent, "job_id")
_set_project_id = slot_setter(JobEvent, "project_id")
_set_status = slot_setter(JobEvent, "status")
_set_error_message = slot_setter(JobEvent, "error_message")
_set_timestamp = slot_setter(JobEvent, "timestamp")
_set_attempt_count = slot_setter(JobEvent, "attempt_count")
_set_raw = slot_setter(JobEvent, "raw")


@dataclass(frozen=True, slots=True)
class JobResult:
    """The extraction result inside a job document (or a ``WebhookEvent``'s inline ``results``)."""

    content: str | None
    mime_type: str | None
    tables: list[Any] = field(compare=False, repr=False)
    images: list[Any] = field(compare=False, repr=False)
    metadata: dict[str, Any] = field(compare=False, repr=False)

    @property
    def warnings(self) -> list[Any]:
        """``metadata.warnings`` — the partial cause of a ``partial_success``."""
        value = self.metadata.get("warnings")
        return value if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """The service's own record of a job's inline webhook: the ``webhook_delivery`` of a job document."""

    #: Delivery attempts made so far.
    attempt_count: int
    #: ``pending``, ``delivered`` or ``failed`` (lower case; another string from a newer service).
    status: str
    #: The most recent failed attempt's diagnostic, e.g. ``"HTTP 503 from receiver"``.
    last_error: str | None

    @property
    def delivered(self) -> bool:
        """Whether the service says the webhook got through."""
        return self.status == "delivered"


@dataclass(frozen=True, slots=True)
class CrawlProgress:
    """A crawl's counters (``progress`` of a crawl webhook or crawl job document)."""

    documents_discovered: int | None
    documents_extracted: int | None
    documents_failed: int | None
    pages_crawled: int | None


class _Document:
    """What both document shapes derive from their signed ``id`` and ``status``.

    They carry no event id, so replay protection rests on the signed job id
    and the type its status gives (``kreuzberg_webhooks.protocol.keys``).
    """

    __slots__ = ()
    id: str
    status: JobStatus | str
    created_at: datetime | None
    raw: dict[str, Any]
    event_id = None

    @property
    def job_id(self) -> str:
        """The job's (or crawl job's) id: ``id`` in the document."""
        return self.id

    @property
    def type(self) -> str:
        """The event type derived from the status."""
        return event_type_for(self.status)

    @property
    def dedup_key(self) -> str:
        """The key replay protection uses for this event with static secrets (``keys.delivery_key``)."""
        return delivery_key(self)

    @property
    def signed_time(self) -> datetime | None:
        """The latest time the document carries: ``created_at``, or its ``completed_at`` when that
        is later, each in ISO 8601 or unix seconds. The verifier's document window bounds a
        replay by it (``docs/contract.md`` §4); ``None`` when the document carries neither."""
        times = [t for t in (self.created_at, _lenient_datetime(self.raw.get("completed_at"))) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class JobDocument(_Document):
    """An extraction job's document, delivered by a per-request webhook or read with ``GET /v1/jobs/{id}``."""

    #: The job's id: a UUID written lower-case with hyphens, or another id as sent.
    id: str
    status: JobStatus | str
    filename: str | None
    created_at: datetime | None
    processing_time_ms: int | None
    #: Why the job failed: the document's ``error_message``, or its ``error`` (the current field).
    error_message: str | None
    #: The result; ``None`` until the job is done (the service leaves it out until then).
    result: JobResult | None = field(compare=False)
    #: The ``metadata`` given in the ``webhook`` block of ``POST /v1/extract``, echoed back.
    metadata: dict[str, Any] = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False)
    #: ``"extraction"`` (the document's ``job_type``), ``None`` when the sender left it out.
    job_type: str | None = None
    mime_type: str | None = None
    #: Why the job failed: the document's ``error``, or its ``error_message`` (the older field).
    error: str | None = None
    completed_at: datetime | None = None
    #: The service's record of the job's inline webhook, when it has one.
    webhook_delivery: WebhookDelivery | None = None
    #: The jobs this one was split into.
    child_job_ids: tuple[str, ...] = ()
    #: The crawl job that spawned this job, and the page it came from.
    parent_crawl_job_id: str | None = None
    source_url: str | None = None
    #: Whether the result came from the service's cache, when known.
    cached: bool | None = None
    pages_extracted: int | None = None
    tables_extracted: int | None = None
    images_extracted: int | None = None


@dataclass(frozen=True, slots=True)
class CrawlJobDocument(_Document):
    """A crawl job document: the per-document extraction jobs it spawned."""

    id: str
    status: JobStatus | str
    #: The child extraction jobs' ids (``jobs[].id``, or an older ``job_ids`` list).
    job_ids: tuple[str, ...]
    created_at: datetime | None
    metadata: dict[str, Any] = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False)
    #: ``"crawl"`` (the document's ``job_type``), ``None`` when the sender left it out.
    job_type: str | None = None
    progress: CrawlProgress | None = None

    @property
    def type(self) -> str:
        """``crawl.completed`` (also for ``partial_success``), ``crawl.failed``, ``crawl.cancelled``:
        the crawl's webhook and its document key as one job."""
        return crawl_event_type_for(self.status)


@dataclass(frozen=True, slots=True)
class JobFailure:
    """Why a job failed: the ``error`` of a failed event (``job.failed``, ``crawl.failed`` …)."""

    #: The vendor's error code, a string such as ``"EXTRACTION_ERROR"``.
    code: str | None
    message: str | None


_EVENT_TYPES: dict[str, EventType] = {t.value: t for t in EventType}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """The job event an inline webhook delivers (``webhook: {url, secret, metadata}`` on
    ``POST /v1/extract``), usually signed ``t=…,v1=…``.

    ``results`` comes inline only on ``job.completed`` and only when the result
    fits in 100 KiB: when :attr:`must_fetch_results` is true, fetch it with
    ``GET /v1/jobs/{job_id}``.
    """

    #: The body's ``event``: an :class:`EventType`, or the plain string of a ``job.`` type this version does not know.
    type: EventType | str
    #: Stable across retries of the same event; ``None`` if the sender left it out
    #: (the vendor's OpenAPI schema does not require it, its guide says it is always sent).
    event_id: str | None
    #: The job's id: a UUID (an extraction job) written lower-case with hyphens, or a ULID
    #: (a RAG ingest, reindex or migrate job) as sent.
    job_id: str
    #: When the event happened (the signed ``timestamp``), timezone-aware UTC.
    timestamp: datetime
    #: Why the job failed (``job.failed`` only).
    error: JobFailure | None
    #: The ``metadata`` given in the ``webhook`` block of ``POST /v1/extract``, echoed back.
    metadata: dict[str, Any] = field(compare=False, repr=False)
    #: The inline results: an object (the ``result`` of ``GET /v1/jobs/{id}``, the current
    #: shape), a list (older senders), or ``None`` when they were not sent (see
    #: :attr:`must_fetch_results`).
    results: dict[str, Any] | list[Any] | None = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def status(self) -> JobStatus | str:
        """The job status the type names: ``completed`` for ``job.completed`` and so on.

        A ``partial_success`` job arrives as ``job.completed``; fetch the job to tell them apart.
        """
        name = self.type.removeprefix("job.")
        return _STATUSES.get(name, name)

    @property
    def has_inline_results(self) -> bool:
        """Whether the results came in the body (``results`` is an object or a list)."""
        return self.results is not None

    @property
    def must_fetch_results(self) -> bool:
        """Whether the job completed but its results were too large to send inline."""
        return self.results is None and self.type == EventType.JOB_COMPLETED

    @property
    def result(self) -> JobResult | None:
        """The inline result object as a :class:`JobResult`; ``None`` when ``results`` is absent
        or a list (read :attr:`results` for those)."""
        results = self.results
        return _job_result(results) if type(results) is dict else None

    @property
    def dedup_key(self) -> str:
        """The key replay protection uses for this event with static secrets (``keys.delivery_key``)."""
        return delivery_key(self)


# Built without __init__ as JobEvent is (see _set_event_id); no __post_init__ to skip.
_set_webhook_type = slot_setter(WebhookEvent, "type")
_set_webhook_event_id = slot_setter(WebhookEvent, "event_id")
_set_webhook_job_id = slot_setter(WebhookEvent, "job_id")
_set_webhook_timestamp = slot_setter(WebhookEvent, "timestamp")
_set_webhook_error = slot_setter(WebhookEvent, "error")
_set_webhook_metadata = slot_setter(WebhookEvent, "metadata")
_set_webhook_results = slot_setter(WebhookEvent, "results")
_set_webhook_raw = slot_setter(WebhookEvent, "raw")


@dataclass(frozen=True, slots=True)
class CrawlWebhookEvent:
    """A crawl's webhook: ``crawl.completed`` (its ``status`` ``completed`` or
    ``partial_success``) or ``crawl.failed``. It never carries results: fetch
    the crawl job (``GET /v1/jobs/{crawl_job_id}``) for its pages."""

    #: ``crawl.completed``, ``crawl.failed``, or the plain string of a ``crawl.`` type this version does not know.
    type: EventType | str
    event_id: str | None
    #: The crawl job's id: the same job as the :class:`CrawlJobDocument` whose ``id`` it is.
    crawl_job_id: str
    status: JobStatus | str
    timestamp: datetime
    progress: CrawlProgress | None
    error: JobFailure | None
    metadata: dict[str, Any] = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def job_id(self) -> str:
        """The crawl job's id (``crawl_job_id``): what the delivery is keyed by."""
        return self.crawl_job_id

    @property
    def dedup_key(self) -> str:
        """The key replay protection uses for this event with static secrets (``keys.delivery_key``)."""
        return delivery_key(self)


@dataclass(frozen=True, slots=True)
class AutoTuneWebhookEvent:
    """An auto-tune run's webhook: ``auto_tune.completed`` or ``auto_tune.failed``; the full
    result is at ``GET /v1/auto-tune/{auto_tune_job_id}/result``."""

    type: EventType | str
    event_id: str | None
    #: The auto-tune job's id, as sent (a ULID).
    auto_tune_job_id: str
    #: The project, a UUID written lower-case with hyphens (another string as sent); ``None`` if absent.
    project_id: str | None
    status: JobStatus | str
    timestamp: datetime
    trials_completed: int | None
    trials_total: int | None
    best_score: float | None
    error: JobFailure | None
    metadata: dict[str, Any] = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def job_id(self) -> str:
        """The auto-tune job's id (``auto_tune_job_id``): what the delivery is keyed by."""
        return self.auto_tune_job_id

    @property
    def dedup_key(self) -> str:
        """The key replay protection uses for this event with static secrets (``keys.delivery_key``)."""
        return delivery_key(self)


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """A correctly signed event of a family this version does not know: a JSON object whose
    ``event`` names no family parsed here, carrying an ``event_id``.

    It is deduplicated by its ``event_id`` and reaches only the catch-all handlers
    (``Receiver.on()``, ``"*"``) and those registered for ``"unknown"``
    (``docs/contract.md`` §2e). Everything it carries is in :attr:`raw`.
    """

    #: The body's ``event``, in lower case.
    type: str
    event_id: str
    #: The body's ``timestamp`` (RFC 3339 or unix seconds), ``None`` when it has no usable one.
    timestamp: datetime | None
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def job_id(self) -> None:
        """No job this version can name: the delivery is keyed by :attr:`event_id`."""
        return None

    @property
    def dedup_key(self) -> str:
        """The key replay protection uses for this event with static secrets (``keys.delivery_key``)."""
        return delivery_key(self)


Event: TypeAlias = (
    JobEvent | JobDocument | CrawlJobDocument | WebhookEvent | CrawlWebhookEvent | AutoTuneWebhookEvent | UnknownEvent
)


# -- parsing ---------------------------------------------------------------


#: What ``data.get(name, _MISSING)`` returns for an absent field; the checks below
#: answer it with MissingField (a helper call per field costs a tenth of a parse).
_MISSING: Any = object()

# A UUID already in its canonical spelling: kept as it is (one C call, no UUID built).
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _missing(name: str) -> MissingField:
    return MissingField(f"the field {name!r} is missing")


def _required(data: dict[str, Any], name: str) -> Any:
    try:
        return data[name]
    except KeyError:
        raise _missing(name) from None


def _uuid(value: Any, name: str) -> UUID:
    if type(value) is str:
        uuid = parse_uuid(value)
        if uuid is not None:
            return uuid
    if value is _MISSING:
        raise _missing(name)
    raise InvalidField(f"the field {name!r} is not a UUID string")


def canonical_job_id(value: str) -> str | None:
    """The canonical spelling of a job id: a UUID in any spelling ``uuid.UUID`` reads is
    written lower-case with hyphens, any other non-empty printable string (a ULID) is kept
    as sent (a digest past :data:`~kreuzberg_webhooks.protocol.keys.MAX_JOB_ID_LENGTH`).
    ``None`` for an empty or unprintable string."""
    if _CANONICAL_UUID.fullmatch(value):
        return value
    if not value or not value.isprintable():
        return None
    uuid = parse_uuid(value)
    if uuid is not None:
        return str(uuid)
    return bounded(value, MAX_JOB_ID_LENGTH)


def _job_id(value: Any, name: str) -> str:
    if type(value) is str:
        canonical = canonical_job_id(value)
        if canonical is not None:
            return canonical
    if value is _MISSING:
        raise _missing(name)
    raise InvalidField(f"the field {name!r} must be a non-empty printable string (a UUID or a ULID)")


def _identifier(value: Any, name: str) -> str:
    # Printable excludes lone surrogates and control characters, which would
    # not survive a store, a log line or a header. A longer id is still an
    # identity: its digest stands in (keys.bounded).
    if type(value) is str and value and value.isprintable():
        return value if len(value) <= MAX_EVENT_ID_LENGTH else bounded(value, MAX_EVENT_ID_LENGTH)
    if value is _MISSING:
        raise _missing(name)
    raise InvalidField(f"the field {name!r} must be a non-empty printable string")


def _status(value: Any) -> JobStatus | str:
    if type(value) is str:
        known = _STATUSES.get(value)
        if known is not None:
            return known
        if value and value.isprintable():
            lowered = value.lower()  # the Pro tier's "COMPLETED" is "completed"
            return _STATUSES.get(lowered) or bounded(lowered, MAX_STATUS_LENGTH)
    if value is _MISSING:
        raise _missing("status")
    raise InvalidField("the field 'status' must be a non-empty printable string")


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or type(value) is str:
        return value
    raise InvalidField(f"the field {name!r} must be a string or null")


def _unix_seconds(value: Any) -> float:
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        try:
            return float(value)
        except OverflowError:  # an int of hundreds of digits: float() cannot hold it
            raise InvalidField("the field 'timestamp' is out of range") from None
    if value is _MISSING:
        raise _missing("timestamp")
    raise InvalidField("the field 'timestamp' must be a number of unix seconds")


def _utc(seconds: float) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)  # positional: a keyword costs a third more
    except (OverflowError, OSError, ValueError):
        raise InvalidField("the field 'timestamp' is out of range") from None


def _lenient_datetime(value: Any) -> datetime | None:
    """An ISO 8601 time (UTC when it has no offset) or a number of unix seconds; ``None`` otherwise."""
    kind = type(value)
    if kind is int or kind is float:
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):  # NaN, infinities, out of range
            return None
    if kind is not str or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _lenient_int(value: Any) -> int | None:
    return value if type(value) is int else None


def _lenient_float(value: Any) -> float | None:
    if type(value) is float and math.isfinite(value):
        return value
    return float(value) if type(value) is int and abs(value) < 2**53 else None


def _lenient_bool(value: Any) -> bool | None:
    return value if type(value) is bool else None


def _lenient_str(value: Any) -> str | None:
    return value if type(value) is str else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if type(value) is dict else {}


def _list(value: Any) -> list[Any]:
    return value if type(value) is list else []


def _lenient_job_id(value: Any) -> str | None:
    return canonical_job_id(value) if type(value) is str else None


def _lenient_job_ids(value: Any) -> tuple[str, ...]:
    return tuple(job for job in map(_lenient_job_id, _list(value)) if job is not None)


def _job_result(data: dict[str, Any]) -> JobResult:
    return JobResult(
        content=_lenient_str(data.get("content")),
        mime_type=_lenient_str(data.get("mime_type")),
        tables=_list(data.get("tables")),
        images=_list(data.get("images")),
        metadata=_mapping(data.get("metadata")),
    )


def _webhook_delivery(value: Any) -> WebhookDelivery | None:
    if type(value) is not dict:
        return None
    attempts, status = value.get("attempt_count"), value.get("status")
    if type(attempts) is not int or type(status) is not str:
        return None
    last_error = _lenient_str(value.get("last_error"))
    return WebhookDelivery(attempt_count=attempts, status=status.lower(), last_error=last_error)


def _progress(value: Any) -> CrawlProgress | None:
    if type(value) is not dict:
        return None
    return CrawlProgress(
        documents_discovered=_lenient_int(value.get("documents_discovered")),
        documents_extracted=_lenient_int(value.get("documents_extracted")),
        documents_failed=_lenient_int(value.get("documents_failed")),
        pages_crawled=_lenient_int(value.get("pages_crawled")),
    )


def parse_job_event(data: dict[str, Any]) -> JobEvent:
    """Build a :class:`JobEvent` from a decoded small-event payload."""
    attempt_count = data.get("attempt_count", 1)
    if type(attempt_count) is not int or attempt_count < 1:
        raise InvalidField("the field 'attempt_count' must be a positive integer")
    # Checked in this order, so the first bad field is the one reported.
    event_id = _identifier(data.get("event_id", _MISSING), "event_id")
    job_id = data.get("job_id", _MISSING)
    if type(job_id) is not str or not _CANONICAL_UUID.fullmatch(job_id):  # the sender's spelling: kept as is
        job_id = _job_id(job_id, "job_id")
    project = data.get("project_id", _MISSING)
    # Every delivery to an endpoint carries the same project_id (or one of a few): remembered.
    project_id = (type(project) is str and project_uuid(project)) or _uuid(project, "project_id")
    status = data.get("status", _MISSING)
    status = (type(status) is str and _STATUSES.get(status)) or _status(status)
    error_message = _optional_str(data, "error_message")
    timestamp = _utc(_unix_seconds(data.get("timestamp", _MISSING)))
    # JobEvent(...) without its __init__: see _set_event_id above.
    event = JobEvent.__new__(JobEvent)
    _set_event_id(event, event_id)
    _set_job_id(event, job_id)
    _set_project_id(event, project_id)
    _set_status(event, status)
    _set_error_message(event, error_message)
    _set_timestamp(event, timestamp)
    _set_attempt_count(event, attempt_count)
    _set_raw(event, data)
    return event


def _crawl_job_ids(data: dict[str, Any]) -> tuple[str, ...] | None:
    """The child jobs of a crawl document, or ``None`` when *data* is not one.

    Lenient: the children are not the delivery's identity, dedupe key or
    replay window, so an entry without an id (a page that failed), a ``null``
    or anything else odd is skipped rather than refused (a 400 would lose the
    crawl for good); ``raw`` keeps the listing as sent.
    """
    ids = data.get("job_ids")
    if ids is None:
        jobs = data.get("jobs")
        if type(jobs) is not list:
            return None
        ids = [(job.get("id") or job.get("job_id")) if type(job) is dict else job for job in jobs]
    return _lenient_job_ids(ids)


def parse_job_document(data: dict[str, Any]) -> JobDocument | CrawlJobDocument:
    """Build a :class:`JobDocument` (or :class:`CrawlJobDocument`) from a decoded job document.

    The document's ``job_type`` says which (``"crawl"``, ``"extraction"``); without one, a
    document listing child jobs (``jobs`` or ``job_ids``) is a crawl.
    """
    job_id = _job_id(_required(data, "id"), "id")
    status = _status(_required(data, "status"))
    metadata = _mapping(data.get("metadata"))
    created_at = _lenient_datetime(data.get("created_at"))
    job_type = _lenient_str(data.get("job_type"))
    if job_type is not None:
        job_type = job_type.lower()  # in one case, as the statuses are
    job_ids = _crawl_job_ids(data)
    if job_type == "crawl" or (job_type is None and job_ids is not None):
        return CrawlJobDocument(
            id=job_id,
            status=status,
            job_ids=job_ids or (),
            created_at=created_at,
            metadata=metadata,
            raw=data,
            job_type=job_type,
            progress=_progress(data.get("progress")),
        )
    result_data = data.get("result")
    error = data.get("error")
    if type(error) is dict:  # {code, message}: the message is the reason
        error = error.get("message")
    error = _lenient_str(error)
    error_message = _lenient_str(data.get("error_message"))
    return JobDocument(
        id=job_id,
        status=status,
        filename=_lenient_str(data.get("filename")),
        created_at=created_at,
        processing_time_ms=_lenient_int(data.get("processing_time_ms")),
        error_message=error_message if error_message is not None else error,
        result=_job_result(result_data) if type(result_data) is dict else None,
        metadata=metadata,
        raw=data,
        job_type=job_type,
        mime_type=_lenient_str(data.get("mime_type")),
        error=error if error is not None else error_message,
        completed_at=_lenient_datetime(data.get("completed_at")),
        webhook_delivery=_webhook_delivery(data.get("webhook_delivery")),
        child_job_ids=_lenient_job_ids(data.get("child_job_ids")),
        parent_crawl_job_id=_lenient_job_id(data.get("parent_crawl_job_id")),
        source_url=_lenient_str(data.get("source_url")),
        cached=_lenient_bool(data.get("cached")),
        pages_extracted=_lenient_int(data.get("pages_extracted")),
        tables_extracted=_lenient_int(data.get("tables_extracted")),
        images_extracted=_lenient_int(data.get("images_extracted")),
    )


def _event_type(value: Any) -> EventType | str:
    if type(value) is str and value and value.isprintable():
        lowered = value.lower()
        return _EVENT_TYPES.get(lowered) or bounded(lowered, MAX_EVENT_TYPE_LENGTH)
    if value is _MISSING:
        raise _missing("event")
    raise InvalidField("the field 'event' must be a non-empty printable string")


def _event_time(value: Any) -> datetime:
    if type(value) is not str:
        return _utc(_unix_seconds(value))
    # RFC 3339 (the vendor's schema); fromisoformat reads it and a little more.
    # A time without an offset is taken as UTC, as the job documents' times are.
    if len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value)
            zone = parsed.tzinfo
            if zone is UTC:  # "…Z", the sender's form: nothing to convert
                return parsed
            return parsed.astimezone(UTC) if zone else parsed.replace(tzinfo=UTC)
        except (ValueError, OverflowError):
            pass
    raise InvalidField("the field 'timestamp' must be an RFC 3339 date-time or a number of unix seconds")


def _job_failure(value: Any) -> JobFailure | None:
    if type(value) is dict:
        code = value.get("code")
        if type(code) is int:  # a number where the schema says string: the same code
            code = str(code)
        return JobFailure(code=_lenient_str(code), message=_lenient_str(value.get("message")))
    if type(value) is str:
        return JobFailure(code=None, message=value)
    return None


def _optional_event_id(data: dict[str, Any]) -> str | None:
    event_id = data.get("event_id")
    return None if event_id is None else _identifier(event_id, "event_id")


def parse_webhook_event(data: dict[str, Any]) -> WebhookEvent:
    """Build a :class:`WebhookEvent` from a decoded inline-webhook payload."""
    # Checked in this order, so the first bad field is the one reported. The
    # common cases (a known type, no error) skip a helper call each: benchmark
    # row "1 t=" is this function's caller.
    kind = data.get("event", _MISSING)
    kind = _EVENT_TYPES.get(kind) or _event_type(kind) if type(kind) is str else _event_type(kind)
    event_id = data.get("event_id")
    if event_id is not None:
        event_id = _identifier(event_id, "event_id")
    job_id = _job_id(data.get("job_id", _MISSING), "job_id")
    timestamp = _event_time(data.get("timestamp", _MISSING))
    error = data.get("error")
    metadata = data.get("metadata")
    results = data.get("results")
    event = WebhookEvent.__new__(WebhookEvent)
    _set_webhook_type(event, kind)
    _set_webhook_event_id(event, event_id)
    _set_webhook_job_id(event, job_id)
    _set_webhook_timestamp(event, timestamp)
    _set_webhook_error(event, None if error is None else _job_failure(error))
    _set_webhook_metadata(event, metadata if type(metadata) is dict else {})
    _set_webhook_results(event, results if type(results) is dict or type(results) is list else None)
    _set_webhook_raw(event, data)
    return event


def parse_crawl_event(data: dict[str, Any]) -> CrawlWebhookEvent:
    """Build a :class:`CrawlWebhookEvent` from a decoded crawl webhook."""
    kind = _event_type(data.get("event", _MISSING))
    event_id = _optional_event_id(data)
    # An older sender (and this package's emulator before 0.2) named it job_id.
    crawl_job_id = _job_id(data.get("crawl_job_id", data.get("job_id", _MISSING)), "crawl_job_id")
    status = data.get("status")
    return CrawlWebhookEvent(
        type=kind,
        event_id=event_id,
        crawl_job_id=crawl_job_id,
        # The status is not the identity: the event's type names the outcome when it is absent.
        status=_status(kind.removeprefix("crawl.") if status is None else status),
        timestamp=_event_time(data.get("timestamp", _MISSING)),
        progress=_progress(data.get("progress")),
        error=_job_failure(data.get("error")),
        metadata=_mapping(data.get("metadata")),
        raw=data,
    )


def parse_auto_tune_event(data: dict[str, Any]) -> AutoTuneWebhookEvent:
    """Build an :class:`AutoTuneWebhookEvent` from a decoded auto-tune webhook."""
    kind = _event_type(data.get("event", _MISSING))
    event_id = _optional_event_id(data)
    auto_tune_job_id = _job_id(data.get("auto_tune_job_id", _MISSING), "auto_tune_job_id")
    status = data.get("status")
    return AutoTuneWebhookEvent(
        type=kind,
        event_id=event_id,
        auto_tune_job_id=auto_tune_job_id,
        project_id=_lenient_job_id(data.get("project_id")),
        status=_status(kind.removeprefix("auto_tune.") if status is None else status),
        timestamp=_event_time(data.get("timestamp", _MISSING)),
        trials_completed=_lenient_int(data.get("trials_completed")),
        trials_total=_lenient_int(data.get("trials_total")),
        best_score=_lenient_float(data.get("best_score")),
        error=_job_failure(data.get("error")),
        metadata=_mapping(data.get("metadata")),
        raw=data,
    )


def parse_unknown_event(data: dict[str, Any]) -> UnknownEvent:
    """Build an :class:`UnknownEvent`: the body's ``event`` and ``event_id``, and its ``timestamp`` when usable."""
    kind = _event_type(data.get("event", _MISSING))
    event_id = _identifier(data.get("event_id", _MISSING), "event_id")
    return UnknownEvent(type=kind, event_id=event_id, timestamp=_lenient_datetime(data.get("timestamp")), raw=data)


_PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    **dict.fromkeys(("job.completed", "job.failed", "job.cancelled"), parse_webhook_event),
    **dict.fromkeys(("crawl.completed", "crawl.failed", "crawl.cancelled"), parse_crawl_event),
    **dict.fromkeys(("auto_tune.completed", "auto_tune.failed"), parse_auto_tune_event),
}
# An event type this version does not know, of a family it does: parsed as that family
# when the body carries the family's identity.
_FAMILIES: tuple[tuple[str, str, Callable[[dict[str, Any]], Event]], ...] = (
    ("job.", "job_id", parse_webhook_event),
    ("crawl.", "crawl_job_id", parse_crawl_event),
    ("auto_tune.", "auto_tune_job_id", parse_auto_tune_event),
)


def _parse_named(data: dict[str, Any], kind: str) -> Event | None:
    """The event of a body whose ``event`` is *kind*, when a family this version knows
    claims it; ``None`` to try the other shapes."""
    lowered = kind.lower()
    parser = _PARSERS.get(lowered)
    if parser is not None:
        return parser(data)
    for prefix, identity, family in _FAMILIES:
        if lowered.startswith(prefix) and identity in data:
            return family(data)
    return None


def _parse_unlisted(data: dict[str, Any]) -> Event:
    """A body whose ``event`` no family claims, with an ``event_id``: the small event or a job
    document when it is a whole one (a new ``event`` key on a known shape), else an
    :class:`UnknownEvent` — never refused for being new."""
    try:
        if "job_id" in data and "project_id" in data:
            return parse_job_event(data)
        if "id" in data and "status" in data:
            return parse_job_document(data)
    except InvalidPayload:
        pass
    return parse_unknown_event(data)


def _unreadable(data: dict[str, Any], error: InvalidPayload) -> UnknownEvent:
    """A known family's event whose fields this version cannot read: still identified by its
    ``event_id`` (when it has a printable one), so kept as an :class:`UnknownEvent` for the
    catch-all handlers rather than refused (``docs/contract.md`` §2e); else *error* is raised."""
    event_id = data.get("event_id")
    if type(event_id) is not str or not event_id or not event_id.isprintable():
        raise error
    try:
        event = parse_unknown_event(data)
    except InvalidPayload:
        raise error from None
    logger.warning(
        "a %s event this version cannot read (%s: %s) is kept as an UnknownEvent for the catch-all handlers",
        event.type,
        error.reason,
        error.detail,
    )
    return event


def parse_event(data: dict[str, Any]) -> Event:
    """Build the typed event for a decoded payload of any shape.

    A payload whose ``event`` is ``job.…``, ``crawl.…`` or ``auto_tune.…`` is that
    family's webhook event; one whose ``event`` is anything else, with an
    ``event_id``, is an :class:`UnknownEvent`. One with an ``event_id`` and a
    ``project_id`` (or a ``status`` but no ``id``) is the small :class:`JobEvent`;
    one with an ``id`` is a job (or crawl job) document. Raises
    :class:`~kreuzberg_webhooks.InvalidPayload` subclasses for a missing or
    mistyped field.
    """
    kind = data.get("event")
    if type(kind) is str:
        try:
            parser = _PARSERS.get(kind)
            if parser is not None:
                return parser(data)
            named = _parse_named(data, kind)
            if named is not None:
                return named
        except InvalidPayload as error:
            return _unreadable(data, error)
        if "event_id" in data:
            return _parse_unlisted(data)
    if "event_id" in data and ("project_id" in data or ("status" in data and "id" not in data)):
        return parse_job_event(data)
    if "id" in data:
        return parse_job_document(data)
    # What is left is reported against the shape it resembles most.
    if type(kind) is str:
        lowered = kind.lower()
        for prefix, _, family in _FAMILIES:
            if lowered.startswith(prefix):
                return family(data)
    if kind is not None:
        return parse_webhook_event(data)
    if "event_id" in data:
        return parse_job_event(data)
    raise MissingField("the payload has none of 'event', 'event_id' and 'id'")
