"""Typed, frozen events for every delivery shape of ``docs/contract.md`` §2.

* :class:`JobEvent` — the small project-webhook event (``event_id``, ``job_id``,
  ``status``, ``timestamp`` …).
* :class:`JobDocument` — the full job document of a per-request webhook, with
  the caller's ``metadata`` echoed back.
* :class:`CrawlJobDocument` — a crawl job listing the extraction jobs it spawned.
* :class:`WebhookEvent` — the inline webhook's event (``event``, ``event_id``,
  ``job_id``, ``timestamp``, inline ``results`` or an ``error``).

Parsing is strict about what identifies a delivery (ids, status, timestamp)
and lenient about everything else: unknown statuses stay plain strings and
every event keeps the whole decoded payload in ``raw``, so a new kind of event
is never dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias
from uuid import UUID

from ._hot import parse_uuid, project_uuid, slot_setter
from .exceptions import InvalidField, MissingField
from .keys import delivery_key

__all__ = [
    "CrawlJobDocument",
    "Event",
    "EventType",
    "JobDocument",
    "JobEvent",
    "JobFailure",
    "JobResult",
    "JobStatus",
    "WebhookEvent",
    "parse_event",
]

_MAX_ID_LENGTH = 256


class JobStatus(StrEnum):
    """A job's status; deliveries normally carry one of the terminal four."""

    AWAITING_UPLOAD = "awaiting_upload"
    PENDING = "pending"
    PROCESSING = "processing"
    CHUNKING = "chunking"
    AGGREGATING = "aggregating"
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
    """The event types a project subscribes to."""

    JOB_COMPLETED = "job.completed"
    JOB_FAILED = "job.failed"
    JOB_CANCELLED = "job.cancelled"


# `partial_success` is a completed job with a partial result (docs/contract.md §2).
_TYPES: dict[str, str] = {
    JobStatus.COMPLETED: EventType.JOB_COMPLETED,
    JobStatus.PARTIAL_SUCCESS: EventType.JOB_COMPLETED,
    JobStatus.FAILED: EventType.JOB_FAILED,
    JobStatus.CANCELLED: EventType.JOB_CANCELLED,
}


def event_type_for(status: str) -> str:
    """The event type of a status: ``job.completed`` for ``partial_success`` too,
    ``job.<status>`` for a status this version does not know."""
    return _TYPES.get(status) or f"job.{status}"


@dataclass(frozen=True, slots=True)
class JobEvent:
    """The small event a project webhook delivers."""

    event_id: str
    job_id: UUID
    project_id: UUID
    #: A :class:`JobStatus`, or the plain string of a status this version does not know.
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


# A frozen dataclass's __init__ stores each field through object.__setattr__;
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
    """The extraction result inside a job document."""

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


class _Document:
    """What both document shapes derive from their signed ``id`` and ``status``.

    They carry no event id, so replay protection rests on the signed job id
    and the type its status gives (``kreuzberg_webhooks.keys``).
    """

    __slots__ = ()
    id: UUID
    status: JobStatus | str
    created_at: datetime | None
    raw: dict[str, Any]
    event_id = None

    @property
    def job_id(self) -> UUID:
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
        is later. The verifier's document window bounds a replay by it (``docs/contract.md`` §4);
        ``None`` when the document carries neither in ISO 8601."""
        times = [t for t in (self.created_at, _lenient_datetime(self.raw.get("completed_at"))) if t is not None]
        return max(times) if times else None


@dataclass(frozen=True, slots=True)
class JobDocument(_Document):
    """A full job document delivered by a per-request webhook."""

    id: UUID
    status: JobStatus | str
    filename: str | None
    created_at: datetime | None
    processing_time_ms: int | None
    error_message: str | None
    result: JobResult | None = field(compare=False)
    #: The ``metadata`` given in the ``webhook`` block of ``POST /v1/extract``, echoed back.
    metadata: dict[str, Any] = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CrawlJobDocument(_Document):
    """A crawl job document: the per-document extraction jobs it spawned."""

    id: UUID
    status: JobStatus | str
    job_ids: tuple[UUID, ...]
    created_at: datetime | None
    metadata: dict[str, Any] = field(compare=False, repr=False)
    raw: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class JobFailure:
    """Why a job failed: the ``error`` of a ``job.failed`` :class:`WebhookEvent`."""

    #: The vendor's error code, a string such as ``"2001"``.
    code: str | None
    message: str | None


_EVENT_TYPES: dict[str, EventType] = {t.value: t for t in EventType}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """The event an inline webhook delivers (``webhook: {url, secret, metadata}`` on
    ``POST /v1/extract``), usually signed ``t=…,v1=…``.

    ``results`` comes inline only on ``job.completed`` and only when the result
    fits in 100 KiB: when :attr:`must_fetch_results` is true, fetch it with
    ``GET /v1/jobs/{job_id}``.
    """

    #: The body's ``event``: an :class:`EventType`, or the plain string of a type this version does not know.
    type: EventType | str
    #: Stable across retries of the same event; ``None`` if the sender left it out
    #: (the vendor's OpenAPI schema does not require it, its guide says it is always sent).
    event_id: str | None
    job_id: UUID
    #: When the event happened (the signed ``timestamp``), timezone-aware UTC.
    timestamp: datetime
    #: Why the job failed (``job.failed`` only).
    error: JobFailure | None
    #: The ``metadata`` given in the ``webhook`` block of ``POST /v1/extract``, echoed back.
    metadata: dict[str, Any] = field(compare=False, repr=False)
    #: The inline results, or ``None`` when they were not sent (see :attr:`must_fetch_results`).
    results: list[Any] | None = field(compare=False, repr=False)
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
        """Whether the results came in the body (``results`` is a list)."""
        return self.results is not None

    @property
    def must_fetch_results(self) -> bool:
        """Whether the job completed but its results were too large to send inline."""
        return self.results is None and self.type == EventType.JOB_COMPLETED

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


Event: TypeAlias = JobEvent | JobDocument | CrawlJobDocument | WebhookEvent


# -- parsing ---------------------------------------------------------------


#: What ``data.get(name, _MISSING)`` returns for an absent field; the checks below
#: answer it with MissingField (a helper call per field costs a tenth of a parse).
_MISSING: Any = object()


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


def _identifier(value: Any, name: str) -> str:
    # Printable excludes lone surrogates and control characters, which would
    # not survive a store, a log line or a header.
    if type(value) is str and 0 < len(value) <= _MAX_ID_LENGTH and value.isprintable():
        return value
    if value is _MISSING:
        raise _missing(name)
    raise InvalidField(
        f"the field {name!r} must be a non-empty printable string of at most {_MAX_ID_LENGTH} characters"
    )


def _status(value: Any) -> JobStatus | str:
    if type(value) is not str or not value or len(value) > 64 or not value.isprintable():
        if value is _MISSING:
            raise _missing("status")
        raise InvalidField("the field 'status' must be a non-empty string")
    return _STATUSES.get(value, value)


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
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _lenient_int(value: Any) -> int | None:
    return value if type(value) is int else None


def _lenient_str(value: Any) -> str | None:
    return value if type(value) is str else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if type(value) is dict else {}


def _list(value: Any) -> list[Any]:
    return value if type(value) is list else []


def parse_job_event(data: dict[str, Any]) -> JobEvent:
    """Build a :class:`JobEvent` from a decoded small-event payload."""
    attempt_count = data.get("attempt_count", 1)
    if type(attempt_count) is not int or attempt_count < 1:
        raise InvalidField("the field 'attempt_count' must be a positive integer")
    # Checked in this order, so the first bad field is the one reported.
    event_id = _identifier(data.get("event_id", _MISSING), "event_id")
    job_id = _uuid(data.get("job_id", _MISSING), "job_id")
    project = data.get("project_id", _MISSING)
    # Every delivery to an endpoint carries the same project_id (or one of a few): remembered.
    project_id = (type(project) is str and project_uuid(project)) or _uuid(project, "project_id")
    status = _status(data.get("status", _MISSING))
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


def _lenient_uuid(value: Any) -> UUID | None:
    try:
        return _uuid(value, "job_ids")
    except InvalidField:
        return None


def _crawl_job_ids(data: dict[str, Any]) -> tuple[UUID, ...] | None:
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
        ids = [(job.get("job_id") or job.get("id")) if type(job) is dict else job for job in jobs]
    if type(ids) is not list:
        return ()
    return tuple(uuid for uuid in map(_lenient_uuid, ids) if uuid is not None)


def parse_job_document(data: dict[str, Any]) -> JobDocument | CrawlJobDocument:
    """Build a :class:`JobDocument` (or :class:`CrawlJobDocument`) from a decoded job document."""
    job_id = _uuid(_required(data, "id"), "id")
    status = _status(_required(data, "status"))
    metadata = _mapping(data.get("metadata"))
    created_at = _lenient_datetime(data.get("created_at"))
    job_ids = _crawl_job_ids(data)
    if job_ids is not None:
        return CrawlJobDocument(
            id=job_id, status=status, job_ids=job_ids, created_at=created_at, metadata=metadata, raw=data
        )
    result_data = data.get("result")
    result = None
    if type(result_data) is dict:
        result = JobResult(
            content=_lenient_str(result_data.get("content")),
            mime_type=_lenient_str(result_data.get("mime_type")),
            tables=_list(result_data.get("tables")),
            images=_list(result_data.get("images")),
            metadata=_mapping(result_data.get("metadata")),
        )
    return JobDocument(
        id=job_id,
        status=status,
        filename=_lenient_str(data.get("filename")),
        created_at=created_at,
        processing_time_ms=_lenient_int(data.get("processing_time_ms")),
        error_message=_lenient_str(data.get("error_message")),
        result=result,
        metadata=metadata,
        raw=data,
    )


def _webhook_event_type(value: Any) -> EventType | str:
    if type(value) is str and 0 < len(value) <= 64 and value.isprintable():
        return _EVENT_TYPES.get(value, value)
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


def parse_webhook_event(data: dict[str, Any]) -> WebhookEvent:
    """Build a :class:`WebhookEvent` from a decoded inline-webhook payload."""
    # Checked in this order, so the first bad field is the one reported. The
    # common cases (a known type, no error) skip a helper call each: benchmark
    # row "1 t=" is this function's caller.
    kind = data.get("event", _MISSING)
    kind = _EVENT_TYPES.get(kind) or _webhook_event_type(kind) if type(kind) is str else _webhook_event_type(kind)
    event_id = data.get("event_id")
    if event_id is not None:
        event_id = _identifier(event_id, "event_id")
    job_id = _uuid(data.get("job_id", _MISSING), "job_id")
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
    _set_webhook_results(event, results if type(results) is list else None)
    _set_webhook_raw(event, data)
    return event


def parse_event(data: dict[str, Any]) -> Event:
    """Build the typed event for a decoded payload of any shape.

    A payload whose ``event`` is ``job.…`` is a :class:`WebhookEvent`; one with
    an ``event_id`` and a ``project_id`` (or a ``status`` but no ``id``) is the
    small :class:`JobEvent`; one with an ``id`` is a job (or crawl job) document.
    Raises :class:`~kreuzberg_webhooks.InvalidPayload` subclasses for a missing
    or mistyped field.
    """
    kind = data.get("event")
    if type(kind) is str and kind.startswith("job."):
        return parse_webhook_event(data)
    if "event_id" in data and ("project_id" in data or ("status" in data and "id" not in data)):
        return parse_job_event(data)
    if "id" in data:
        return parse_job_document(data)
    # What is left is reported against the shape it resembles most.
    if kind is not None:
        return parse_webhook_event(data)
    if "event_id" in data:
        return parse_job_event(data)
    raise MissingField("the payload has none of 'event', 'event_id' and 'id'")
