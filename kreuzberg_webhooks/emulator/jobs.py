"""The emulator's jobs: what ``GET /v1/jobs/{id}`` answers at any moment, and what a webhook carries.

A job's status follows from the clock alone: ``pending`` for the first half
of its delay, ``processing`` for the second, then its final status. So the
documents need no background work; only webhooks (and a real extractor) are
scheduled. The shapes are those of the vendor's SDK models (``docs/contract.md``):
an extraction job document has ``job_type``, ``mime_type``, ``error`` and, when
its request named a webhook, ``webhook_delivery``; its ``result`` is absent
until the job is done.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .webhooks import WebhookDelivery

__all__ = ["CrawlJob", "Job", "WebhookConfig", "rfc3339"]

#: The SDK guide: inline ``results`` only when they are at most 100 KiB.
INLINE_RESULTS_LIMIT = 100 * 1024
#: What a failed job's ``error`` says.
FAILURE_REASON = "extraction failed: the document could not be read"
_SUCCESS = ("completed", "partial_success")


def rfc3339(seconds: float) -> str:
    """Unix *seconds* as the API writes times: ``2025-12-21T10:00:00Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """The ``webhook`` block of ``POST /v1/extract``: where to deliver, the secret, metadata to echo."""

    url: str
    secret: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def delivery_record(delivery: WebhookDelivery | None) -> dict[str, Any]:
    """The service's own record of a request webhook: ``{attempt_count, status, last_error}``.

    A dropped event (:attr:`Faults.drop`) was lost on the way after the service counted it
    delivered, as when a proxy in front of the receiver answered 2xx: ``delivered``, one attempt.
    """
    if delivery is None:
        return {"attempt_count": 0, "status": "pending", "last_error": None}
    own = [attempt for attempt in list(delivery.attempts) if attempt.kind in ("first", "retry")]
    errors = [attempt.answer for attempt in own if not attempt.answer.startswith("2")]
    last_error = None
    if errors:
        answer = errors[-1]
        last_error = f"HTTP {answer} from receiver" if answer.isdigit() else answer
    outcome = delivery.outcome
    if outcome == "dropped":
        return {"attempt_count": 1, "status": "delivered", "last_error": None}
    status = {"delivered": "delivered", "rejected": "failed", "dead-lettered": "failed"}.get(outcome, "pending")
    return {"attempt_count": len(own), "status": status, "last_error": last_error}


@dataclass(slots=True)
class Job:
    """One extraction job."""

    id: str
    filename: str
    mime_type: str
    data: bytes
    created: float
    #: When it reaches its final status; ``inf`` while a real extractor is still reading it.
    finishes: float
    outcome: str
    webhook: WebhookConfig | None = None
    source_url: str | None = None
    parent_crawl_job_id: str | None = None
    #: The extracted text; ``None``: the uploaded bytes, decoded.
    extracted: str | None = None
    #: Why it failed (the extractor's message), for a failed job.
    error: str | None = None
    #: Whether its webhooks have gone out (a cancelled job finishes early, once).
    announced: bool = False
    #: The request webhook's delivery, once the job finished and it went out.
    delivery: WebhookDelivery | None = None

    @classmethod
    def new(cls, filename: str, mime_type: str, data: bytes, *, now: float, delay: float, outcome: str) -> Job:
        """A job submitted at *now* that reaches *outcome* after *delay* seconds."""
        return cls(str(uuid.uuid4()), filename, mime_type, data, now, now + delay, outcome)

    @property
    def text(self) -> str:
        """The extracted text: the extractor's, else the uploaded bytes decoded."""
        return self.extracted if self.extracted is not None else self.data.decode("utf-8", "replace")

    def status(self, now: float) -> str:
        """The status at unix time *now*."""
        if now >= self.finishes:
            return self.outcome
        if math.isinf(self.finishes):
            return "processing"
        return "processing" if now >= (self.created + self.finishes) / 2 else "pending"

    def result(self) -> dict[str, Any] | None:
        """The extraction result (an ``ExtractedDocument``), for a job that ended with one."""
        if self.outcome not in _SUCCESS:
            return None
        metadata: dict[str, Any] = {"source": "kreuzberg-webhooks emulator"}
        if self.outcome == "partial_success":
            metadata["warnings"] = ["some pages could not be read"]
        return {"content": self.text, "mime_type": self.mime_type, "tables": [], "images": [], "metadata": metadata}

    def document(self, now: float) -> dict[str, Any]:
        """The extraction job document of ``GET /v1/jobs/{id}`` at *now*."""
        status = self.status(now)
        done = now >= self.finishes
        document: dict[str, Any] = {
            "id": self.id,
            "job_type": "extraction",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "status": status,
            "created_at": rfc3339(self.created),
            "cached": False,
            "child_job_ids": [],
        }
        if self.parent_crawl_job_id is not None:
            document["parent_crawl_job_id"] = self.parent_crawl_job_id
            document["source_url"] = self.source_url
        if done:
            document["completed_at"] = rfc3339(self.finishes)
            document["processing_time_ms"] = round((self.finishes - self.created) * 1000)
            result = self.result()
            if result is not None:
                document["result"] = result
                document.update(pages_extracted=1, tables_extracted=0, images_extracted=0)
            if status == "failed":
                document["error"] = self.error or FAILURE_REASON
        if self.webhook is not None:
            document["webhook_delivery"] = delivery_record(self.delivery)
        return document

    def summary(self, now: float) -> dict[str, Any]:
        """The ``JobSummary`` line of ``GET /v1/jobs``."""
        summary: dict[str, Any] = {
            "id": self.id,
            "job_type": "extraction",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "status": self.status(now),
            "created_at": rfc3339(self.created),
        }
        if now >= self.finishes:
            summary["completed_at"] = rfc3339(self.finishes)
        if self.parent_crawl_job_id is not None:
            summary["parent_crawl_job_id"] = self.parent_crawl_job_id
            summary["source_url"] = self.source_url
        if self.webhook is not None:
            summary["webhook_delivery"] = delivery_record(self.delivery)
        return summary

    def result_envelope(self) -> dict[str, Any]:
        """The ``JobResult`` of ``GET /v1/jobs/{id}/result`` for a job that ended with a result."""
        result = self.result()
        assert result is not None, "only a successful job has a result"
        document = {
            "content": result["content"],
            "mime_type": result["mime_type"],
            "metadata": result["metadata"],
            "tables": [],
            "counts": {"pages": 1, "tables": 0, "images": 0},
        }
        return {
            "job_id": self.id,
            "status": self.outcome,
            "cached": False,
            "completed_at": rfc3339(self.finishes),
            "child_job_ids": [],
            "results": [document],
            "errors": [],
        }

    def inline_results(self) -> dict[str, Any] | None:
        """``results`` of an inline webhook event: the job's result object, only on success,
        only up to 100 KiB."""
        result = self.result()
        if result is None or len(json.dumps(result).encode()) > INLINE_RESULTS_LIMIT:
            return None
        return result


@dataclass(slots=True)
class CrawlJob:
    """A crawl job: one extraction job per seed URL."""

    id: str
    seed_urls: list[str]
    jobs: list[Job]
    created: float
    webhook: WebhookConfig | None = None
    delivery: WebhookDelivery | None = None

    @property
    def finishes(self) -> float:
        """When the last of its jobs finishes."""
        return max((job.finishes for job in self.jobs), default=self.created)

    def status(self, now: float) -> str:
        """``crawling``, ``extracting``, then ``completed`` (``partial_success`` if some jobs failed,
        ``failed`` if all did); ``cancelled`` once it was cancelled (``DELETE``)."""
        if now < self.finishes:
            return "extracting" if any(now >= job.finishes for job in self.jobs) else "crawling"
        if any(job.outcome == "cancelled" for job in self.jobs):
            return "cancelled"
        failed = sum(job.outcome != "completed" for job in self.jobs)
        if failed and failed == len(self.jobs):
            return "failed"
        return "partial_success" if failed else "completed"

    def progress(self, now: float) -> dict[str, int]:
        """The ``CrawlProgress`` at *now*."""
        done = [job for job in self.jobs if now >= job.finishes]
        return {
            "documents_discovered": len(self.jobs),
            "documents_extracted": sum(job.outcome in _SUCCESS for job in done),
            "documents_failed": sum(job.outcome not in _SUCCESS for job in done),
            "pages_crawled": len(self.jobs),
        }

    def document(self, now: float) -> dict[str, Any]:
        """The crawl job document of ``GET /v1/jobs/{id}`` at *now*."""
        return {
            "id": self.id,
            "job_type": "crawl",
            "status": self.status(now),
            "seed_urls": list(self.seed_urls),
            "output_mode": "documents",
            "created_at": rfc3339(self.created),
            "progress": self.progress(now),
            "jobs": [
                {
                    "id": job.id,
                    "filename": job.filename,
                    "status": job.status(now),
                    "source_url": job.source_url,
                    **(
                        {"processing_time_ms": round((job.finishes - job.created) * 1000)}
                        if now >= job.finishes
                        else {}
                    ),
                }
                for job in self.jobs
            ],
        }

    def summary(self, now: float) -> dict[str, Any]:
        """Its ``JobSummary`` line of ``GET /v1/jobs``: a crawl still running reads ``processing``
        there, the statuses a summary knows being the extraction job's."""
        status = self.status(now)
        summary: dict[str, Any] = {
            "id": self.id,
            "job_type": "crawl",
            "filename": self.seed_urls[0] if self.seed_urls else "",
            "mime_type": "text/html",
            "status": "processing" if status in ("crawling", "extracting") else status,
            "created_at": rfc3339(self.created),
        }
        if now >= self.finishes:
            summary["completed_at"] = rfc3339(self.finishes)
        return summary
