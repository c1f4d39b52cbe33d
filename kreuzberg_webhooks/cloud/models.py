"""What the jobs API answers besides job documents: the stored results and the job list.

``GET /v1/jobs/{id}/result`` answers a :class:`JobResults`; ``GET /v1/jobs`` a
:class:`JobList` of :class:`JobSummary` lines. Parsing is lenient, as for job
documents: unknown fields are kept in ``raw``, statuses are lower-cased.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..events import JobResult, WebhookDelivery
from .errors import InvalidResponse

__all__ = ["JobList", "JobResults", "JobSummary", "delivery_of"]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _status(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""


def delivery_of(data: Any) -> WebhookDelivery | None:
    """A ``webhook_delivery`` block (``{attempt_count, status, last_error}``), or ``None`` when
    there is none or it is unreadable."""
    if not isinstance(data, Mapping):
        return None
    count, status = data.get("attempt_count"), data.get("status")
    if isinstance(count, bool) or not isinstance(count, int) or not isinstance(status, str):
        return None
    return WebhookDelivery(count, status.lower(), _str(data.get("last_error")))


@dataclass(frozen=True, slots=True)
class JobSummary:
    """One line of ``GET /v1/jobs``."""

    job_id: str
    job_type: str
    status: str
    filename: str | None
    mime_type: str | None
    created_at: str | None
    completed_at: str | None
    #: The service's record of the job's request webhook.
    webhook_delivery: WebhookDelivery | None
    parent_crawl_job_id: str | None
    source_url: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any) -> JobSummary:
        """Parse one summary; :class:`InvalidResponse` when it has no id."""
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise InvalidResponse("a job summary without an id")
        return cls(
            job_id=data["id"],
            job_type=_str(data.get("job_type")) or "extraction",
            status=_status(data.get("status")),
            filename=_str(data.get("filename")),
            mime_type=_str(data.get("mime_type")),
            created_at=_str(data.get("created_at")),
            completed_at=_str(data.get("completed_at")),
            webhook_delivery=delivery_of(data.get("webhook_delivery")),
            parent_crawl_job_id=_str(data.get("parent_crawl_job_id")),
            source_url=_str(data.get("source_url")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class JobList:
    """A page of ``GET /v1/jobs``: newest first."""

    jobs: tuple[JobSummary, ...]
    total: int
    limit: int
    offset: int

    @classmethod
    def from_dict(cls, data: Any) -> JobList:
        """Parse a page; :class:`InvalidResponse` when it has no ``jobs`` list."""
        if not isinstance(data, Mapping) or not isinstance(data.get("jobs"), list):
            raise InvalidResponse("GET /v1/jobs answered a body without a jobs list")
        jobs = tuple(JobSummary.from_dict(item) for item in data["jobs"])

        def number(name: str, default: int) -> int:
            value = data.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else default

        return cls(jobs, number("total", len(jobs)), number("limit", len(jobs)), number("offset", 0))


def _document(data: Any) -> JobResult:
    if not isinstance(data, Mapping):
        raise InvalidResponse("a stored result that is not an object")
    metadata = data.get("metadata")
    return JobResult(
        content=_str(data.get("content")),
        mime_type=_str(data.get("mime_type")),
        tables=data["tables"] if isinstance(data.get("tables"), list) else [],
        images=data["images"] if isinstance(data.get("images"), list) else [],
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
    )


@dataclass(frozen=True, slots=True)
class JobResults:
    """``GET /v1/jobs/{id}/result``: a finished job's stored results (one per document; several
    when the service split the upload into child jobs) and the errors of the ones that failed."""

    job_id: str
    status: str
    cached: bool
    completed_at: str | None
    child_job_ids: tuple[str, ...]
    results: tuple[JobResult, ...]
    errors: tuple[dict[str, Any], ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any) -> JobResults:
        """Parse the envelope; :class:`InvalidResponse` when it has no ``job_id``."""
        if not isinstance(data, Mapping) or not isinstance(data.get("job_id"), str):
            raise InvalidResponse("GET /v1/jobs/{id}/result answered a body without a job_id")
        results = data.get("results")
        errors = data.get("errors")
        children = data.get("child_job_ids")
        return cls(
            job_id=data["job_id"],
            status=_status(data.get("status")),
            cached=data.get("cached") is True,
            completed_at=_str(data.get("completed_at")),
            child_job_ids=tuple(str(c) for c in children) if isinstance(children, list) else (),
            results=tuple(_document(item) for item in results) if isinstance(results, list) else (),
            errors=tuple(dict(e) for e in errors if isinstance(e, Mapping)) if isinstance(errors, list) else (),
            raw=dict(data),
        )
