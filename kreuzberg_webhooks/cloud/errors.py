"""Errors of the jobs client. The hierarchy::

    JobsAPIError                    every failed call to the jobs API
    ├── PermanentAPIError           a 4xx a retry cannot fix (never retried)
    │   ├── InvalidJobId            400 the id is malformed
    │   ├── InvalidAPIKey           401 the API key is missing or wrong
    │   ├── JobNotFound             404 unknown, another project's, or purged
    │   └── JobNotReady             409 get_result: the job has not finished successfully
    ├── ServerError                 another 5xx (not retried, as the vendor's SDK)
    ├── APIUnavailable              429/502/503/504/time-outs/connection errors until the deadline
    ├── InvalidResponse             a 2xx whose body is not a job document
    └── JobTimeout                  wait_for_job: still not terminal when the time-out passed

No message ever contains the API key: the client builds messages from the
status, the server's error code and message (with the key scrubbed out), and
the job id.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIUnavailable",
    "InvalidAPIKey",
    "InvalidJobId",
    "InvalidResponse",
    "JobNotFound",
    "JobNotReady",
    "JobTimeout",
    "JobsAPIError",
    "PermanentAPIError",
    "ServerError",
]


class JobsAPIError(Exception):
    """A call to the jobs API failed."""

    def __init__(
        self, message: str, *, status_code: int | None = None, code: str | None = None, job_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The HTTP status of the last answer, ``None`` when there was none (a time-out).
        self.status_code = status_code
        #: The server's error code (``job_not_found``…) when its body had one.
        self.code = code
        self.job_id = job_id


class PermanentAPIError(JobsAPIError):
    """A 4xx answer (other than 429): the same request would fail again."""


class InvalidJobId(PermanentAPIError):
    """400: the job id is malformed."""


class InvalidAPIKey(PermanentAPIError):
    """401: the API key is missing or wrong."""


class JobNotFound(PermanentAPIError):
    """404: no such job for this key (wrong project, or purged)."""


class JobNotReady(PermanentAPIError):
    """409: the job has no result (yet): it is still running, failed or was cancelled."""


class ServerError(JobsAPIError):
    """A 5xx other than 502, 503 and 504."""


class APIUnavailable(JobsAPIError):
    """The API kept answering 429/502/503/504, timing out or refusing connections until the deadline."""


class InvalidResponse(JobsAPIError):
    """A 2xx answer whose body is not what the endpoint documents."""


class JobTimeout(JobsAPIError):
    """``wait_for_job`` gave up: the job was not terminal when its time-out passed."""

    def __init__(self, message: str, *, job_id: str, last: Any = None) -> None:
        super().__init__(message, job_id=job_id)
        #: The last document fetched (a JobDocument or CrawlJobDocument), if any.
        self.last = last
