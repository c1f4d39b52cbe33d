"""The emulator's jobs: what ``GET /v1/jobs/{id}`` answers at any moment, and what a webhook carries.

A job's status follows from the clock alone: ``pending`` for the first half
of its delay, ``processing`` for the second, then its final status. So the
documents need no background work; only webhooks are scheduled.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["CrawlJob", "Job", "WebhookConfig", "rfc3339"]

#: The SDK guide: inline ``results`` only when they are at most 100 KiB.
INLINE_RESULTS_LIMIT = 100 * 1024


def rfc3339(seconds: float) -> str:
    """Unix *seconds* as the API writes times: ``2025-12-21T10:00:00Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """The ``webhook`` block of ``POST /v1/extract``: where to deliver, the secret, metadata to echo."""

    url: str
    secret: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Job:
    """One extraction job."""

    id: str
    filename: str
    mime_type: str
    data: bytes
    created: float
    finishes: float
    outcome: str
    webhook: WebhookConfig | None = None
    source_url: str | None = None
    #: The extracted text; ``None``: the uploaded bytes, decoded.
    extracted: str | None = None
    #: Whether its webhooks have gone out (a cancelled job finishes early, once).
    announced: bool = False

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
        return "processing" if now >= (self.created + self.finishes) / 2 else "pending"

    def result(self) -> dict[str, Any] | None:
        """The extraction result, for a job that ended with one."""
        if self.outcome not in ("completed", "partial_success"):
            return None
        metadata: dict[str, Any] = {"source": "kreuzberg-webhooks emulator"}
        if self.outcome == "partial_success":
            metadata["warnings"] = ["some pages could not be read"]
        return {"content": self.text, "mime_type": "text/plain", "tables": [], "images": [], "metadata": metadata}

    def document(self, now: float) -> dict[str, Any]:
        """The ``JobResponse`` for ``GET /v1/jobs/{id}`` at *now*."""
        status = self.status(now)
        done = status == self.outcome and now >= self.finishes
        document: dict[str, Any] = {
            "id": self.id,
            "filename": self.filename,
            "status": status,
            "created_at": rfc3339(self.created),
            "processing_time_ms": round((self.finishes - self.created) * 1000) if done else None,
            "result": self.result() if done else None,
            "child_job_ids": [],
        }
        if done and status == "failed":
            document["error_message"] = "extraction failed: the document could not be read"
        return document

    def summary(self, now: float) -> dict[str, Any]:
        """The ``JobSummary`` for ``GET /v1/jobs``."""
        status = self.status(now)
        return {
            "id": self.id,
            "filename": self.filename,
            "mime_type": self.mime_type,
            "status": status,
            "created_at": rfc3339(self.created),
            "completed_at": rfc3339(self.finishes) if now >= self.finishes else None,
        }

    def inline_results(self) -> list[dict[str, Any]] | None:
        """``results`` for an inline webhook event: only on success, only up to 100 KiB."""
        result = self.result()
        if result is None or len(json.dumps(result).encode()) > INLINE_RESULTS_LIMIT:
            return None
        return [result]


@dataclass(slots=True)
class CrawlJob:
    """A crawl job: one extraction job per seed URL."""

    id: str
    seed_urls: list[str]
    jobs: list[Job]
    created: float
    webhook: WebhookConfig | None = None

    @property
    def finishes(self) -> float:
        """When the last of its jobs finishes."""
        return max((job.finishes for job in self.jobs), default=self.created)

    def status(self, now: float) -> str:
        """``crawling``, ``extracting``, then ``completed`` (``partial_success`` if any job failed)."""
        if now < self.finishes:
            return "extracting" if any(now >= job.finishes for job in self.jobs) else "crawling"
        failed = sum(job.outcome == "failed" for job in self.jobs)
        if failed and failed == len(self.jobs):
            return "failed"
        return "partial_success" if failed else "completed"

    def document(self, now: float) -> dict[str, Any]:
        """The ``CrawlJobResponse`` for ``GET /v1/jobs/{id}`` at *now*."""
        done = [job for job in self.jobs if now >= job.finishes]
        return {
            "id": self.id,
            "status": self.status(now),
            "seed_urls": list(self.seed_urls),
            "output_mode": "extract",
            "created_at": rfc3339(self.created),
            "progress": {
                "pages_crawled": len(self.jobs),
                "documents_discovered": len(self.jobs),
                "documents_extracted": sum(job.outcome != "failed" for job in done),
                "documents_failed": sum(job.outcome == "failed" for job in done),
            },
            "jobs": [
                {
                    "id": job.id,
                    "filename": job.filename,
                    "status": job.status(now),
                    "source_url": job.source_url,
                    "processing_time_ms": round((job.finishes - job.created) * 1000) if now >= job.finishes else None,
                }
                for job in self.jobs
            ],
        }

    def summary(self, now: float) -> dict[str, Any]:
        """A ``JobSummary``-like line for ``GET /v1/jobs``."""
        return {
            "id": self.id,
            "filename": self.seed_urls[0] if self.seed_urls else "",
            "mime_type": "text/html",
            "status": self.status(now),
            "created_at": rfc3339(self.created),
            "completed_at": rfc3339(self.finishes) if now >= self.finishes else None,
        }
