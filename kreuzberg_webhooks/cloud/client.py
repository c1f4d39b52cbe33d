"""The jobs client: fetch, wait for and submit Kreuzberg Cloud jobs, sync or async.

``GET {base_url}/v1/jobs/{id}`` with ``Authorization: Bearer <key>`` answers a
job or a crawl job; both clients parse it into the same
:class:`~kreuzberg_webhooks.JobDocument` / :class:`~kreuzberg_webhooks.CrawlJobDocument`
a webhook delivers, so a handler sees one model whichever way a job arrived.
The policy (retries, backoff, errors) is in :mod:`kreuzberg_webhooks.cloud.policy`,
written once; the two classes here only send requests and sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import quote, urlsplit
from uuid import UUID

import httpx

from ..events import CrawlJobDocument, Event, JobDocument, JobResult
from ..exceptions import ConfigurationError
from .errors import InvalidResponse, JobTimeout
from .models import JobList, JobResults
from .policy import Answer, Backoff, JobLookup, Send, Sleep, Step, is_terminal, parse_job_response, retrying

__all__ = [
    "API_KEY_ENV",
    "API_URL_ENV",
    "DEFAULT_BASE_URL",
    "AsyncJobsClient",
    "JobsClient",
    "Submission",
]

#: The hosted service's API, as the vendor's kreuzberg-cloud-sdk documents it (its ``DEFAULT_BASE_URL``);
#: a self-hosted Xberg deployment has none and must be given its own.
DEFAULT_BASE_URL = "https://api.kreuzberg.dev"
API_URL_ENV = "KREUZBERG_API_URL"
API_KEY_ENV = "KREUZBERG_API_KEY"

FileSpec: TypeAlias = "tuple[str, bytes] | tuple[str, bytes, str]"
_NOT_FETCHED = object()


class _Redacted:
    """Holds the API key; its repr never shows it (tracebacks with locals, debuggers)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True, slots=True)
class Submission:
    """The answer to ``POST /v1/extract``: the ids of the jobs (and crawl jobs) created."""

    job_ids: tuple[UUID, ...]
    crawl_job_ids: tuple[UUID, ...]
    raw: dict[str, Any]

    @property
    def all_ids(self) -> tuple[UUID, ...]:
        """Every id to track: the jobs, then the crawl jobs."""
        return self.job_ids + self.crawl_job_ids


def _carried_result(event: Any) -> JobResult | object | None:
    """The result an event already carries, ``None`` when it has none to fetch (a failed or
    cancelled job, a crawl job), or the sentinel ``_NOT_FETCHED`` when it must be fetched."""
    if isinstance(event, CrawlJobDocument):
        return None
    if isinstance(event, JobDocument):
        if event.result is not None:
            return event.result
        if is_terminal(event) and event.type != "job.completed":
            return None
        return _NOT_FETCHED
    carried = getattr(event, "result", None)
    if isinstance(carried, JobResult):
        return carried
    if getattr(event, "has_inline_results", False):
        inline = _inline_result(getattr(event, "results", None))
        if inline is not None:
            return inline
    if getattr(event, "type", "") in ("job.failed", "job.cancelled"):
        return None
    return _NOT_FETCHED


def _inline_result(results: Any) -> JobResult | None:
    """One :class:`JobResult` from a WebhookEvent's inline ``results`` (their texts joined)."""
    if not isinstance(results, (list, tuple)) or not results:
        return None
    items = [item for item in results if isinstance(item, Mapping)]
    if not items:
        return None
    contents = [str(item["content"]) for item in items if isinstance(item.get("content"), str)]
    first = items[0]
    mime_type = first.get("mime_type")
    metadata = first.get("metadata")
    return JobResult(
        content="\n\n".join(contents) if contents else None,
        mime_type=mime_type if isinstance(mime_type, str) else None,
        tables=[table for item in items for table in _list(item.get("tables"))],
        images=[image for item in items for image in _list(item.get("images"))],
        metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _JobsClientCommon:
    """What the sync and async clients share: their settings and the flows of each call (httpx's model)."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None,
        *,
        timeout: float,
        retry_deadline: float,
        backoff: Backoff | None,
        clock: Callable[[], float],
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError(f"no API key: pass api_key= or set {API_KEY_ENV}")
        url = (base_url or os.environ.get(API_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            raise ConfigurationError(f"the API base URL has no valid port: {url!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"the API base URL must be http:// or https://, not {url!r}")
        if not (timeout > 0 and retry_deadline > 0):
            raise ConfigurationError("timeout and retry_deadline must be positive numbers of seconds")
        self._api_key = _Redacted(key.strip())
        self.base_url = url
        self.timeout = float(timeout)
        self.retry_deadline = float(retry_deadline)
        self.backoff = backoff or Backoff()
        self._clock = clock

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.value}", "Accept": "application/json"}

    def _build(self, client: httpx.Client | httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Request:
        return client.build_request(method, self.base_url + path, headers=self._headers(), **kwargs)

    def _get_flow(
        self, client: httpx.Client | httpx.AsyncClient, job_id: str | UUID, deadline: float | None = None
    ) -> Generator[Step, Answer, JobLookup]:
        ident = str(job_id)
        path = f"/v1/jobs/{quote(ident, safe='')}"
        response = yield from retrying(
            lambda: self._build(client, "GET", path),
            what=f"GET {path}",
            secret=self._api_key.value,
            backoff=self.backoff,
            deadline=self._clock() + self.retry_deadline if deadline is None else deadline,
            clock=self._clock,
            job_id=ident,
        )
        try:
            data = json.loads(response.content)
        except ValueError:
            raise InvalidResponse(f"GET {path} answered {response.status_code} with a body that is not JSON") from None
        return parse_job_response(data)

    def _call_flow(
        self,
        client: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        job_id: str | None = None,
    ) -> Generator[Step, Answer, Any]:
        """One request with the retry policy; the decoded JSON body (``None`` for an empty one)."""
        response = yield from retrying(
            lambda: self._build(client, method, path, params=params),
            what=f"{method} {path}",
            secret=self._api_key.value,
            backoff=self.backoff,
            deadline=self._clock() + self.retry_deadline,
            clock=self._clock,
            job_id=job_id,
        )
        if not response.content:
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            raise InvalidResponse(
                f"{method} {path} answered {response.status_code} with a body that is not JSON"
            ) from None

    def _result_set_flow(
        self, client: httpx.Client | httpx.AsyncClient, job_id: str | UUID
    ) -> Generator[Step, Answer, JobResults]:
        ident = str(job_id)
        data = yield from self._call_flow(client, "GET", f"/v1/jobs/{quote(ident, safe='')}/result", job_id=ident)
        return JobResults.from_dict(data)

    def _list_flow(
        self, client: httpx.Client | httpx.AsyncClient, limit: int, offset: int
    ) -> Generator[Step, Answer, JobList]:
        data = yield from self._call_flow(client, "GET", "/v1/jobs", params={"limit": limit, "offset": offset})
        return JobList.from_dict(data)

    def _cancel_flow(
        self, client: httpx.Client | httpx.AsyncClient, job_id: str | UUID
    ) -> Generator[Step, Answer, None]:
        ident = str(job_id)
        yield from self._call_flow(client, "DELETE", f"/v1/jobs/{quote(ident, safe='')}", job_id=ident)

    def _wait_flow(
        self,
        client: httpx.Client | httpx.AsyncClient,
        job_id: str | UUID,
        timeout: float,
        poll_interval: float,
        max_interval: float,
    ) -> Generator[Step, Answer, JobLookup]:
        if not (timeout > 0 and poll_interval > 0 and max_interval >= poll_interval):
            raise ConfigurationError("wait_for_job needs timeout > 0 and 0 < poll_interval <= max_interval")
        deadline = self._clock() + timeout
        interval = poll_interval
        while True:
            document = yield from self._get_flow(client, job_id, deadline)
            if is_terminal(document):
                return document
            left = deadline - self._clock()
            if left <= 0:
                raise JobTimeout(
                    f"job {job_id} still {document.status} after {timeout:g} s", job_id=str(job_id), last=document
                )
            yield Sleep(min(interval, left))
            interval = min(interval * 2, max_interval)

    def _extract_flow(
        self,
        client: httpx.Client | httpx.AsyncClient,
        files: Iterable[FileSpec],
        webhook: Mapping[str, Any] | None,
    ) -> Generator[Step, Answer, Submission]:
        parts = [("file", tuple(spec)) for spec in files]
        if not parts:
            raise ConfigurationError("extract needs at least one file")
        data = {"webhook": json.dumps(dict(webhook))} if webhook is not None else None
        response = yield from retrying(
            lambda: self._build(client, "POST", "/v1/extract", files=parts, data=data),
            what="POST /v1/extract",
            secret=self._api_key.value,
            backoff=self.backoff,
            deadline=self._clock() + self.retry_deadline,
            clock=self._clock,
            retry_sent=False,  # a submission that may have been processed is not sent twice
        )
        try:
            answer = json.loads(response.content)
            job_ids = tuple(UUID(str(value)) for value in answer.get("job_ids") or ())
            crawl_ids = tuple(UUID(str(value)) for value in answer.get("crawl_job_ids") or ())
        except (ValueError, AttributeError, TypeError):
            raise InvalidResponse("POST /v1/extract answered a body without readable job ids") from None
        return Submission(job_ids, crawl_ids, answer)

    def _result_flow(self, client: httpx.Client | httpx.AsyncClient, event: Any) -> Generator[Step, Answer, Any]:
        carried = _carried_result(event)
        if carried is not _NOT_FETCHED:
            return carried
        document = yield from self._get_flow(client, event.job_id)
        if not is_terminal(document):
            document = yield from self._wait_flow(client, event.job_id, self.retry_deadline, 1.0, 30.0)
        return document.result if isinstance(document, JobDocument) else None


class JobsClient(_JobsClientCommon):
    """A synchronous client of the jobs API.

    :param api_key: the API key (default ``$KREUZBERG_API_KEY``). It never appears in
        errors, reprs or logs.
    :param base_url: default ``$KREUZBERG_API_URL``, else ``https://api.kreuzberg.dev`` (the hosted
        service, as the vendor's kreuzberg-cloud-sdk documents it); a self-hosted deployment needs its own.
    :param client: an ``httpx.Client`` to reuse (its connections, proxies, transport);
        the jobs client never closes a client it was given.
    :param timeout: seconds per request, for the client it creates.
    :param retry_deadline: how long one call keeps retrying 429/502/503/504 and connection errors.
    :param backoff: waits between tries (1 s doubling to 30 s by default).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
        retry_deadline: float = 60.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            api_key, base_url, timeout=timeout, retry_deadline=retry_deadline, backoff=backoff, clock=clock
        )
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=self.timeout)
        self._sleep = sleep

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, flow: Generator[Step, Answer, Any]) -> Any:
        try:
            step = next(flow)
            while True:
                answer: Answer = None
                if isinstance(step, Send):
                    try:
                        answer = self._client.send(step.request)
                    except httpx.TransportError as error:
                        answer = error
                else:
                    self._sleep(step.seconds)
                step = flow.send(answer)
        except StopIteration as stop:
            return stop.value

    def get_job(self, job_id: str | UUID) -> JobDocument | CrawlJobDocument:
        """``GET /v1/jobs/{job_id}``: the job (or crawl job) as it is now."""
        result: JobLookup = self._run(self._get_flow(self._client, job_id))
        return result

    def wait_for_job(
        self, job_id: str | UUID, timeout: float = 300.0, *, poll_interval: float = 1.0, max_interval: float = 30.0
    ) -> JobDocument | CrawlJobDocument:
        """Poll until the job is terminal (1 s, doubling, capped at 30 s); :class:`JobTimeout` after *timeout*."""
        result: JobLookup = self._run(self._wait_flow(self._client, job_id, timeout, poll_interval, max_interval))
        return result

    def get_result(self, job_id: str | UUID) -> JobResults:
        """``GET /v1/jobs/{job_id}/result``: a finished job's stored results;
        :class:`~kreuzberg_webhooks.cloud.JobNotReady` (409) until it has finished successfully."""
        result: JobResults = self._run(self._result_set_flow(self._client, job_id))
        return result

    def list_jobs(self, *, limit: int = 50, offset: int = 0) -> JobList:
        """``GET /v1/jobs``: a page of job summaries, newest first."""
        result: JobList = self._run(self._list_flow(self._client, limit, offset))
        return result

    def cancel_job(self, job_id: str | UUID) -> None:
        """``DELETE /v1/jobs/{job_id}``: cancel a job (a finished one stays as it is); its
        ``job.cancelled`` webhook follows."""
        self._run(self._cancel_flow(self._client, job_id))

    def iter_child_jobs(self, crawl: CrawlJobDocument | str | UUID) -> Iterator[JobLookup]:
        """Each extraction job a crawl job spawned, fetched one after the other."""
        if not isinstance(crawl, CrawlJobDocument):
            document = self.get_job(crawl)
            if not isinstance(document, CrawlJobDocument):
                raise InvalidResponse(f"job {crawl} is not a crawl job", job_id=str(crawl))
            crawl = document
        for child in crawl.job_ids:
            yield self.get_job(child)

    def extract(self, files: Iterable[FileSpec], *, webhook: Mapping[str, Any] | None = None) -> Submission:
        """``POST /v1/extract`` with ``(filename, bytes[, content type])`` files and an optional
        ``webhook`` block ``{"url", "secret", "metadata"}``."""
        result: Submission = self._run(self._extract_flow(self._client, files, webhook))
        return result

    def result_for(self, event: Event | Any) -> JobResult | None:
        """The job's result for a delivered *event*: what the delivery carries, fetched only when
        it carries nothing (the dashboard's small event). ``None`` for failed and cancelled jobs
        and for crawl jobs (iterate their children instead)."""
        result: JobResult | None = self._run(self._result_flow(self._client, event))
        return result


class AsyncJobsClient(_JobsClientCommon):
    """The asynchronous twin of :class:`JobsClient` (same parameters, ``httpx.AsyncClient``)."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
        retry_deadline: float = 60.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        limits: httpx.Limits | None = None,
    ) -> None:
        super().__init__(
            api_key, base_url, timeout=timeout, retry_deadline=retry_deadline, backoff=backoff, clock=clock
        )
        self._owns_client = client is None
        self._limits = limits or httpx.Limits(max_keepalive_connections=64)
        # One TLS context (the CA bundle read once, as httpx reads it: certifi, or $SSL_CERT_FILE /
        # $SSL_CERT_DIR) for this client's own pool and for its sync twin's (threaded()).
        self._tls: ssl.SSLContext | None = None
        if client is None:
            self._tls = httpx.create_ssl_context(verify=True, trust_env=True)
            client = httpx.AsyncClient(timeout=self.timeout, limits=self._limits, verify=self._tls)
        self._client = client
        self._threaded: JobsClient | None = None
        self._threaded_http: httpx.Client | None = None

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it (and the one :meth:`threaded` made)."""
        if self._owns_client:
            await self._client.aclose()
        if self._threaded_http is not None:
            self._threaded_http.close()

    def threaded(self) -> JobsClient | None:
        """The sync twin an :class:`~kreuzberg_webhooks.cloud.AsyncReconciler` runs in worker threads in
        this client's place: a :class:`JobsClient` with the same API key, base URL, time-out, retry
        deadline, backoff and connection limits, on a connection pool of its own (made once, closed by
        :meth:`aclose`), verifying with this client's TLS context (the CA bundle is read once per
        client). httpx's sync pool costs less per request than its async one (benchmark row 11).

        ``None`` when this client was given an ``httpx.AsyncClient``: its transport, proxies and hooks
        are the caller's, and are used as given."""
        if self._tls is None:  # not our own pool
            return None
        if self._threaded is None:
            self._threaded_http = httpx.Client(timeout=self.timeout, limits=self._limits, verify=self._tls)
            self._threaded = JobsClient(
                self._api_key.value,
                self.base_url,
                client=self._threaded_http,
                timeout=self.timeout,
                retry_deadline=self.retry_deadline,
                backoff=self.backoff,
                clock=self._clock,
            )
        return self._threaded

    async def __aenter__(self) -> AsyncJobsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self, flow: Generator[Step, Answer, Any]) -> Any:
        try:
            step = next(flow)
            while True:
                answer: Answer = None
                if isinstance(step, Send):
                    try:
                        answer = await self._client.send(step.request)
                    except httpx.TransportError as error:
                        answer = error
                else:
                    await asyncio.sleep(step.seconds)
                step = flow.send(answer)
        except StopIteration as stop:
            return stop.value

    async def get_job(self, job_id: str | UUID) -> JobDocument | CrawlJobDocument:
        """``GET /v1/jobs/{job_id}``: the job (or crawl job) as it is now."""
        result: JobLookup = await self._run(self._get_flow(self._client, job_id))
        return result

    async def wait_for_job(
        self, job_id: str | UUID, timeout: float = 300.0, *, poll_interval: float = 1.0, max_interval: float = 30.0
    ) -> JobDocument | CrawlJobDocument:
        """Poll until the job is terminal (1 s, doubling, capped at 30 s); :class:`JobTimeout` after *timeout*."""
        result: JobLookup = await self._run(self._wait_flow(self._client, job_id, timeout, poll_interval, max_interval))
        return result

    async def get_result(self, job_id: str | UUID) -> JobResults:
        """``GET /v1/jobs/{job_id}/result``; see :meth:`JobsClient.get_result`."""
        result: JobResults = await self._run(self._result_set_flow(self._client, job_id))
        return result

    async def list_jobs(self, *, limit: int = 50, offset: int = 0) -> JobList:
        """``GET /v1/jobs``; see :meth:`JobsClient.list_jobs`."""
        result: JobList = await self._run(self._list_flow(self._client, limit, offset))
        return result

    async def cancel_job(self, job_id: str | UUID) -> None:
        """``DELETE /v1/jobs/{job_id}``; see :meth:`JobsClient.cancel_job`."""
        await self._run(self._cancel_flow(self._client, job_id))

    async def iter_child_jobs(self, crawl: CrawlJobDocument | str | UUID) -> AsyncIterator[JobLookup]:
        """Each extraction job a crawl job spawned, fetched one after the other."""
        if not isinstance(crawl, CrawlJobDocument):
            document = await self.get_job(crawl)
            if not isinstance(document, CrawlJobDocument):
                raise InvalidResponse(f"job {crawl} is not a crawl job", job_id=str(crawl))
            crawl = document
        for child in crawl.job_ids:
            yield await self.get_job(child)

    async def extract(self, files: Iterable[FileSpec], *, webhook: Mapping[str, Any] | None = None) -> Submission:
        """``POST /v1/extract``; see :meth:`JobsClient.extract`."""
        result: Submission = await self._run(self._extract_flow(self._client, files, webhook))
        return result

    async def result_for(self, event: Event | Any) -> JobResult | None:
        """The job's result for a delivered *event*; see :meth:`JobsClient.result_for`."""
        result: JobResult | None = await self._run(self._result_flow(self._client, event))
        return result
