"""The jobs client's decisions, with no I/O: what an answer means, how long to wait, what to retry.

Both clients (sync and async) run the same generator *flows*: a flow yields
a :class:`Send` (an HTTP request to make) or a :class:`Sleep` (seconds to
wait), is sent back the response (or the transport exception), and returns
its result — the model of ``httpx.Auth.auth_flow``. Policy lives here once.

The cadence is the seed's (``docs/contract.md`` §4c): 1 s, doubling, capped
at 30 s; 429, 502, 503, 504, time-outs and connection errors are retried,
honouring ``Retry-After`` (seconds or an HTTP date) within a deadline, but
never waiting less than the backoff (a ``Retry-After`` of 0, negative or in
the past would otherwise be a request storm); 400, 401, 404 and 409 are permanent.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeAlias

import httpx

from ..events import CrawlJobDocument, JobDocument, JobStatus
from ..events import parse_job_document as _parse_job_document
from ..exceptions import ConfigurationError, InvalidPayload
from .errors import (
    APIUnavailable,
    InvalidAPIKey,
    InvalidJobId,
    InvalidResponse,
    JobNotFound,
    JobNotReady,
    JobsAPIError,
    PermanentAPIError,
    ServerError,
)

__all__ = [
    "RETRYABLE_STATUSES",
    "Backoff",
    "JobLookup",
    "Send",
    "Sleep",
    "error_for",
    "parse_job_response",
    "parse_retry_after",
]

logger = logging.getLogger("kreuzberg_webhooks.cloud")

#: Answers worth trying again: rate limited, or the service (or a gateway) briefly down.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
_TERMINAL = frozenset({"completed", "partial_success", "failed", "cancelled"})

JobLookup: TypeAlias = JobDocument | CrawlJobDocument


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between tries: *initial* seconds, times *factor* each time, at most *cap*."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 30.0

    def __post_init__(self) -> None:
        if not (self.initial > 0 and self.factor >= 1 and self.cap >= self.initial and math.isfinite(self.cap)):
            raise ConfigurationError("backoff needs initial > 0, factor >= 1 and a finite cap >= initial")

    def delay(self, attempt: int) -> float:
        """The wait after the *attempt*-th failure (0-based)."""
        return min(self.cap, self.initial * self.factor ** min(attempt, 64))


@dataclass(frozen=True, slots=True)
class Send:
    """A flow step: send this request, then send the flow the response or the exception."""

    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Sleep:
    """A flow step: wait this many seconds."""

    seconds: float


Step: TypeAlias = Send | Sleep
Answer: TypeAlias = "httpx.Response | Exception | None"
Flow: TypeAlias = Generator[Step, Answer, Any]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date; ``None`` if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _error_fields(response: httpx.Response, secret: str) -> tuple[str | None, str]:
    """The server's error code and message, from a flat (``{"error": "…"}``) or enveloped body."""
    try:
        data = json.loads(response.content)
    except ValueError:
        data = None
    code: str | None = None
    message = ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        message = error
    elif isinstance(error, dict):
        raw_code, raw_message = error.get("code"), error.get("message")
        code = raw_code if isinstance(raw_code, str) else None
        message = raw_message if isinstance(raw_message, str) else ""
    if not message:
        message = response.reason_phrase or "no message"
    return (_scrub(code, secret) if code else None), _scrub(message[:300], secret)


def error_for(response: httpx.Response, what: str, secret: str, job_id: str | None = None) -> JobsAPIError:
    """The typed error for a non-2xx *response* to *what* (``"GET /v1/jobs/…"``)."""
    status = response.status_code
    code, message = _error_fields(response, secret)
    text = f"{what} answered {status}" + (f" {code}" if code else "") + f": {message}"
    kind: type[JobsAPIError]
    if status == 400:
        kind = InvalidJobId if job_id is not None else PermanentAPIError
    elif status == 401:
        kind = InvalidAPIKey
    elif status == 404 and job_id is not None:
        kind = JobNotFound
    elif status == 409 and job_id is not None:
        kind = JobNotReady
    elif 400 <= status < 500 and status != 429:
        kind = PermanentAPIError
    elif status in RETRYABLE_STATUSES:
        kind = APIUnavailable
    else:
        kind = ServerError
    return kind(text, status_code=status, code=code, job_id=job_id)


def parse_job_response(data: Any) -> JobLookup:
    """Parse a ``GET /v1/jobs/{id}`` body (a job or a crawl job: no discriminator) into the
    same typed documents a webhook delivers. Lenient: status case is normalised, unknown
    fields and statuses are kept (``raw``)."""
    if not isinstance(data, dict):
        raise InvalidResponse("the job lookup answer is not a JSON object")
    status = data.get("status")
    if isinstance(status, str) and not status.islower():  # a copy only for a status to lower-case
        data = {**data, "status": status.lower()}
    if "jobs" not in data and "job_ids" not in data and ("seed_urls" in data or "progress" in data):
        # A crawl job whose optional `jobs` list is absent has spawned none yet.
        data = {**data, "jobs": []}
    try:
        return _parse_job_document(data)
    except InvalidPayload as error:
        raise InvalidResponse(f"the job lookup answer is not a job document: {error}") from None


def is_terminal(document: JobLookup) -> bool:
    """Whether the job (or crawl job) will not change status again."""
    status = document.status
    return status.is_terminal if isinstance(status, JobStatus) else status in _TERMINAL


def _describe(error: Exception) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "time-out"
    if isinstance(error, httpx.ConnectError):
        return "connection refused or failed"
    return f"connection error ({type(error).__name__})"


def retrying(
    build: Callable[[], httpx.Request],
    *,
    what: str,
    secret: str,
    backoff: Backoff,
    deadline: float,
    clock: Callable[[], float],
    job_id: str | None = None,
    retry_sent: bool = True,
) -> Generator[Step, Answer, httpx.Response]:
    """Send a request until it gets an answer that is not worth retrying, or the *deadline*
    (a *clock* time) would pass; return the 2xx response or raise the typed error.

    *retry_sent*: retry answers and time-outs after the request may have been processed
    (``False`` for a submission, which retries only 429, 503 and failed connections).
    """
    attempt = 0
    while True:
        answer = yield Send(build())
        if isinstance(answer, httpx.Response):
            status = answer.status_code
            if 200 <= status < 300:
                return answer
            retryable = status in RETRYABLE_STATUSES and (retry_sent or status in (429, 503))
            if not retryable:
                raise error_for(answer, what, secret, job_id)
            # The backoff is a floor under every wait: a Retry-After of 0, negative or in the past
            # must not turn retries into a storm; a longer one is honoured.
            asked = parse_retry_after(answer.headers.get("retry-after"))
            reason = f"answered {status}"
            wait = max(backoff.delay(attempt), asked or 0.0)
            last: JobsAPIError = error_for(answer, what, secret, job_id)
        elif isinstance(answer, httpx.TransportError):
            if not retry_sent and not isinstance(answer, (httpx.ConnectError, httpx.ConnectTimeout)):
                raise APIUnavailable(f"{what}: {_describe(answer)}; not retried, it may have been processed") from None
            reason = _describe(answer)
            wait = backoff.delay(attempt)
            last = APIUnavailable(f"{what}: {reason}", job_id=job_id)
        else:
            raise TypeError(f"unexpected answer {type(answer).__name__}")  # a driver bug
        attempt += 1
        if clock() + wait > deadline:
            raise APIUnavailable(
                f"{last.message} (gave up after {attempt} tries)",
                status_code=last.status_code,
                code=last.code,
                job_id=job_id,
            ) from None
        logger.info("%s %s; retrying in %.1f s (try %d)", what, reason, wait, attempt + 1)
        yield Sleep(wait)
