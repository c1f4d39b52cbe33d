"""The polling half of Kreuzberg Cloud: fetch, wait for, submit and reconcile jobs.

Needs the ``[cloud]`` extra (httpx): ``pip install "kreuzberg-webhooks[cloud]"``::

    from kreuzberg_webhooks.cloud import JobsClient

    with JobsClient() as client:                     # KREUZBERG_API_KEY, KREUZBERG_API_URL
        job = client.wait_for_job(job_id, timeout=300)
        print(job.status, job.result and job.result.content)
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401 - checked here so the message names the extra
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError('the jobs client needs httpx: pip install "kreuzberg-webhooks[cloud]"') from error

from .client import API_KEY_ENV, API_URL_ENV, DEFAULT_BASE_URL, AsyncJobsClient, JobsClient, Submission
from .errors import (
    APIUnavailable,
    InvalidAPIKey,
    InvalidJobId,
    InvalidResponse,
    JobNotFound,
    JobNotReady,
    JobsAPIError,
    JobTimeout,
    PermanentAPIError,
    ServerError,
)
from .models import JobList, JobResults, JobSummary
from .policy import Backoff, parse_job_response, parse_retry_after
from .reconcile import (
    DEFAULT_GRACE,
    DEFAULT_MAX_AGE,
    DEFAULT_NOT_FOUND_GRACE,
    AsyncReconciler,
    Reconciler,
    ReconcileReport,
    delivered_via,
)
from .tracking import JobTracker, MemoryTracker, SQLiteTracker, TrackedJob, open_tracker

__all__ = [
    "API_KEY_ENV",
    "API_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_GRACE",
    "DEFAULT_MAX_AGE",
    "DEFAULT_NOT_FOUND_GRACE",
    "APIUnavailable",
    "AsyncJobsClient",
    "AsyncReconciler",
    "Backoff",
    "InvalidAPIKey",
    "InvalidJobId",
    "InvalidResponse",
    "JobList",
    "JobNotFound",
    "JobNotReady",
    "JobResults",
    "JobSummary",
    "JobTimeout",
    "JobTracker",
    "JobsAPIError",
    "JobsClient",
    "MemoryTracker",
    "PermanentAPIError",
    "ReconcileReport",
    "Reconciler",
    "SQLiteTracker",
    "ServerError",
    "Submission",
    "TrackedJob",
    "delivered_via",
    "open_tracker",
    "parse_job_response",
    "parse_retry_after",
]
