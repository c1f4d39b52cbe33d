"""A local Kreuzberg Cloud: the jobs API and its webhooks, on 127.0.0.1, standard library only.

``POST /v1/extract`` takes a multipart form (``file`` parts and an optional
``webhook`` part holding ``{"url", "secret", "metadata"}`` as JSON; an empty
``url`` is no webhook) or a JSON body (``documents: [{data (base64), filename,
mime_type}]``, or ``urls: [{url, crawl_config}]`` for a crawl), and answers 202
with the new ``job_ids`` (and ``crawl_job_ids``). ``GET /v1/jobs/{id}`` answers
the job (or crawl-job) document, ``GET /v1/jobs/{id}/result`` its result (409
until it is done), ``GET /v1/jobs`` job summaries, ``DELETE /v1/jobs/{id}``
cancels, ``POST /v1/sandbox/key`` mints a sandbox key (as kreuzberg-cloud-sdk's
``from_sandbox`` asks). Every request needs ``Authorization: Bearer <api key>``; every error
is ``{"error": {"code", "message"}}``, and a request body that stops arriving is
answered 408 after ``read_timeout``. A job finishes after
``job_delay`` seconds with the uploaded text as its extracted content, then its
webhooks go out: to the project's dashboard webhook (``webhook_url``, the small
event signed ``sha256=``) and to the request's own ``webhook`` block (the
inline format: a WebhookDelivery signed ``t=…,v1=…``, or the full job document).

:class:`Faults` injects what production does to a client: webhooks never sent,
sent twice, sent twice at once, slow API answers, and API answers 503 or 429
with any ``Retry-After`` (0, negative or a date in the past included).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import math
import mimetypes
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..exceptions import ConfigurationError
from ..protocol.durations import duration
from ..protocol.schedule import SENDER_TIMEOUT
from ..protocol.verify import DEFAULT_SIGNATURE_HEADER
from ..testing.simulate import MIN_TIMEOUT, Transport, http_transport
from .jobs import FAILURE_REASON, CrawlJob, Job, WebhookConfig, rfc3339
from .multipart import FormError, parse_form
from .webhooks import Scheduler, WebhookDelivery, WebhookSender, new_dashboard_payload

__all__ = ["DEFAULT_MAX_UPLOAD", "Emulator", "EmulatorStats", "Faults"]

#: The largest request body the emulator reads.
DEFAULT_MAX_UPLOAD = 32 * 1024 * 1024
_JOB_PATH = re.compile(r"^/v1/jobs/([^/]+?)(/result)?/?$")
#: The vendor's limits on a webhook block's metadata.
MAX_METADATA_ENTRIES = 100
MAX_METADATA_BYTES = 8 * 1024
_EVENT_TYPES = {
    "completed": "job.completed",
    "partial_success": "job.completed",
    "failed": "job.failed",
    "cancelled": "job.cancelled",
}


def _rate(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ConfigurationError(f"{name} must be between 0 and 1, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Faults:
    """What goes wrong, each a fraction between 0 and 1.

    :param drop: events whose webhook is never sent (the reconciler's reason to exist).
    :param duplicate: delivered events sent once more.
    :param concurrent: events whose first attempt is sent twice at the same moment.
    :param api_errors: API requests answered 503 or 429 (with ``Retry-After``), half each.
    :param rate_limited: API requests answered 429 (with ``Retry-After``).
    :param slow: API requests answered only after *slow_seconds*.
    :param retry_after: the ``Retry-After`` of an injected 429: whole seconds (0 and negative
        values included), or a string sent as it is (an HTTP date, say).
    """

    drop: float = 0.0
    duplicate: float = 0.0
    concurrent: float = 0.0
    api_errors: float = 0.0
    rate_limited: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 1.0
    retry_after: int | str = 1

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "concurrent", "api_errors", "rate_limited", "slow"):
            _rate(name, getattr(self, name))
        duration(self.slow_seconds, "slow_seconds", allow_zero=True)
        value = self.retry_after
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigurationError("retry_after must be whole seconds or a header value")
        if isinstance(value, str) and (not value.strip() or any(c in value for c in "\r\n")):
            raise ConfigurationError("retry_after must be a one-line header value")


@dataclass(slots=True)
class EmulatorStats:
    """Counters of what the emulator did."""

    jobs: int = 0
    api_requests: int = 0
    #: Requests answered 503 or 429 on purpose.
    api_faults: int = 0
    #: ``GET /v1/jobs/{id}`` requests, by job id (tests count requests per job).
    job_requests: dict[str, int] = field(default_factory=dict)
    webhook_events: int = 0
    webhooks_dropped: int = 0
    webhooks_delivered: int = 0
    webhooks_lost: int = 0
    webhook_requests: int = 0


class Emulator:
    """A local Kreuzberg Cloud on ``127.0.0.1``: start it, point a client at :attr:`base_url`, stop it.

    :param api_key: the key every request must send as ``Authorization: Bearer <key>``.
    :param port: 0 picks a free port.
    :param webhook_url: the project's dashboard webhook; every extraction job's event goes there.
    :param webhook_secret: its secret (``sha256=`` signatures); ``None`` sends it unsigned.
    :param project_id: the ``project_id`` in dashboard events (a fixed random UUID by default).
    :param inline_format: what a request's own ``webhook`` block receives: ``"event"`` (the
        WebhookDelivery, signed ``t=…,v1=…``) or ``"document"`` (the full job document, signed ``sha256=``).
    :param job_delay: seconds from submission to a terminal status.
    :param time_scale: multiplies the webhook retry schedule and the sender's 30 s time-out.
    :param failure_rate: the fraction of jobs that end ``failed``.
    :param faults: what goes wrong on purpose.
    :param seed: makes the faults and failures repeatable.
    :param error_style: ``"envelope"`` (``{"error": {"code", "message"}}``) or ``"flat"`` (``{"error": "…"}``).
    :param status_case: ``"lower"``, or ``"upper"`` as the Pro API writes statuses.
    :param extractor: ``(filename, data, mime_type) -> text`` for each upload (the open-source
        ``kreuzberg`` library: :func:`~kreuzberg_webhooks.emulator.extract.kreuzberg_extractor`),
        run in the emulator's worker pool, never on a request's thread; the job stays
        ``processing`` until it returns, and an exception fails the job with its message as the
        ``error``. Default: the uploaded bytes, decoded as UTF-8.
    :param read_timeout: seconds a connection may sit without sending (a request line, headers
        or body): an unfinished body is answered 408, an idle kept-alive connection closed.
    """

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        project_id: str | None = None,
        inline_format: str = "event",
        job_delay: float = 0.5,
        time_scale: float = 1.0,
        webhook_timeout: float | None = None,
        failure_rate: float = 0.0,
        faults: Faults | None = None,
        seed: int | None = None,
        error_style: str = "envelope",
        status_case: str = "lower",
        header: str = DEFAULT_SIGNATURE_HEADER,
        max_upload: int = DEFAULT_MAX_UPLOAD,
        webhook_workers: int = 16,
        transport: Transport = http_transport,
        clock: Callable[[], float] = time.time,
        extractor: Callable[[str, bytes, str], str] | None = None,
        read_timeout: float = 10.0,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ConfigurationError("the emulator needs a non-empty API key")
        if inline_format not in ("event", "document"):
            raise ConfigurationError("inline_format must be 'event' or 'document'")
        if error_style not in ("envelope", "flat"):
            raise ConfigurationError("error_style must be 'envelope' or 'flat'")
        if status_case not in ("lower", "upper"):
            raise ConfigurationError("status_case must be 'lower' or 'upper'")
        job_delay = duration(job_delay, "job_delay", allow_zero=True)
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ConfigurationError("time_scale must be a positive number")
        read_timeout = duration(read_timeout, "read_timeout")
        if webhook_url is not None and urlsplit(webhook_url).scheme not in ("http", "https"):
            raise ConfigurationError("webhook_url must be an http:// or https:// URL")
        self._api_key = api_key.encode()
        self._sandbox_keys: set[bytes] = set()
        self.host = host
        self._port = port
        self.webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self.project_id = project_id or str(uuid.uuid4())
        self.inline_format = inline_format
        self.job_delay = float(job_delay)
        self.time_scale = float(time_scale)
        self.webhook_timeout = webhook_timeout or max(MIN_TIMEOUT, SENDER_TIMEOUT * time_scale)
        self.failure_rate = _rate("failure_rate", failure_rate)
        self.faults = faults or Faults()
        self.error_style = error_style
        self.status_case = status_case
        self.header = header
        self.max_upload = max_upload
        self._webhook_workers = webhook_workers
        self._transport = transport
        self._clock = clock
        self._extractor = extractor
        self.read_timeout = float(read_timeout)
        # One stream per kind of draw: webhook faults then follow the order jobs finish in,
        # whatever API requests and submissions happen meanwhile (a seed repeats a run).
        self._webhook_random = random.Random(seed)
        self._job_random = random.Random(None if seed is None else seed + 1)
        self._api_random = random.Random(None if seed is None else seed + 2)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        self._crawls: dict[str, CrawlJob] = {}
        self._order: list[str] = []
        self._pending_webhooks = 0
        self._unfinished = 0  # jobs (and crawls with a webhook) whose finishing work has not run yet
        self.events: list[WebhookDelivery] = []
        self.stats = EmulatorStats()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._scheduler: Scheduler | None = None
        self._sender: WebhookSender | None = None

    def __repr__(self) -> str:
        # Never the API key or the webhook secret.
        where = self.base_url if self._server is not None else "stopped"
        return f"<Emulator {where} jobs={self.stats.jobs}>"

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Emulator:
        """Listen and serve in a background thread; returns the emulator."""
        if self._server is not None:
            return self
        self._scheduler = Scheduler(self._webhook_workers)
        self._sender = WebhookSender(
            self._scheduler,
            self._transport,
            time_scale=self.time_scale,
            timeout=self.webhook_timeout,
            on_settled=self._webhook_settled,
        )
        self._server = _Server((self.host, self._port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="kreuzberg-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and sending; webhooks not sent yet are dropped."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
        if self._thread is not None:
            self._thread.join()
        if self._scheduler is not None:
            self._scheduler.stop()
        self._server = self._thread = self._scheduler = self._sender = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_webhooks(self, timeout: float) -> bool:
        """Wait until every job submitted so far has finished and each of its webhooks has been
        delivered, rejected, dead-lettered or dropped; ``False`` if *timeout* passed first."""
        deadline = time.monotonic() + timeout
        with self._settled:
            while True:
                if self._unfinished == 0 and self._pending_webhooks == 0:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._settled.wait(min(left, 0.05))

    # -- jobs (also usable in-process) --------------------------------------------------

    def submit(
        self,
        files: Iterable[tuple[str, bytes] | tuple[str, bytes, str]],
        webhook: WebhookConfig | None = None,
        *,
        mime_type: str = "",
    ) -> list[str]:
        """Create one job per ``(filename, data[, mime type])``; returns their ids. A file without
        a mime type gets *mime_type*, else one guessed from its name."""
        now = self._clock()
        jobs = [self._new_job(spec[0], spec[1], _mime_of(spec, mime_type), now, webhook) for spec in files]
        with self._lock:
            for job in jobs:
                self._jobs[job.id] = job
                self._order.append(job.id)
            self.stats.jobs += len(jobs)
        for job in jobs:
            self._start(job)
        return [job.id for job in jobs]

    def submit_crawl(self, urls: Iterable[str], webhook: WebhookConfig | None = None) -> str:
        """Create a crawl job with one extraction job per URL (its text names the URL); returns its id.
        Its webhook (the crawl family: ``crawl.completed``/``crawl.failed``) goes out when its last
        job has finished."""
        now = self._clock()
        seed_urls = list(urls)
        crawl = CrawlJob(str(uuid.uuid4()), seed_urls, [], now, webhook)
        for url in seed_urls:
            name = url.rstrip("/").rsplit("/", 1)[-1] or "index.html"
            job = self._new_job(name, f"Page at {url}".encode(), "text/html", now, None)
            job.source_url = url
            job.parent_crawl_job_id = crawl.id
            crawl.jobs.append(job)
        with self._lock:
            for job in crawl.jobs:
                self._jobs[job.id] = job
            self._crawls[crawl.id] = crawl
            self._order.append(crawl.id)
            self.stats.jobs += len(crawl.jobs)
        for job in crawl.jobs:
            self._start(job)
        return crawl.id

    def document(self, job_id: str) -> dict[str, Any] | None:
        """The document ``GET /v1/jobs/{job_id}`` answers now, or ``None`` for an unknown id."""
        now = self._clock()
        with self._lock:
            job = self._jobs.get(job_id)
            crawl = self._crawls.get(job_id)
            if job is not None:
                return self._cased(job.document(now))
            if crawl is not None:
                return self._cased(crawl.document(now))
        return None

    def text_of(self, job_id: str) -> str:
        """The text a job extracts (tests compare what a handler stored with it)."""
        with self._lock:
            return self._jobs[job_id].text

    def cancel(self, job_id: str) -> bool:
        """Cancel a job (or each job of a crawl) that has not finished: it ends ``cancelled`` now and
        its webhooks (``job.cancelled``) go out. ``False`` if it had already finished (or is unknown)."""
        now = self._clock()
        with self._lock:
            crawl = self._crawls.get(job_id)
        if crawl is not None:
            cancelled = [self.cancel(job.id) for job in crawl.jobs]  # every job, not up to the first
            return any(cancelled)
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or now >= job.finishes:
                return False
            job.outcome, job.finishes, job.error = "cancelled", now, None
        self._schedule_finish(job)
        return True

    def outcome_of(self, job_id: str) -> str:
        """The final status of a job."""
        with self._lock:
            return self._jobs[job_id].outcome

    def _new_job(self, name: str, data: bytes, mime: str, now: float, webhook: WebhookConfig | None) -> Job:
        with self._lock:
            failed = self._job_random.random() < self.failure_rate
        job = Job.new(name, mime, data, now=now, delay=self.job_delay, outcome="failed" if failed else "completed")
        job.webhook = webhook
        if self._extractor is not None and not failed:
            job.finishes = math.inf  # processing until the extractor has read it
        return job

    def _start(self, job: Job) -> None:
        """Schedule a new job's end: now plus its delay, or once the extractor has read it."""
        if not math.isinf(job.finishes):
            self._schedule_finish(job)
            return
        extractor = self._extractor
        assert extractor is not None

        def extract() -> None:
            try:
                text, error = extractor(job.filename, job.data, job.mime_type), None
            except Exception as exc:  # an upload the extractor cannot read: the job fails, as in the cloud
                text, error = None, f"{type(exc).__name__}: {exc}"[:500]
            with self._lock:
                if job.outcome == "cancelled":
                    return  # cancelled while it was being read: that finish is scheduled already
                job.extracted = text
                if error is not None:
                    job.outcome, job.error = "failed", error
                job.finishes = max(self._clock(), job.created + self.job_delay)
            self._schedule_finish(job)

        self._at_finish(self._clock(), extract)

    def _cased(self, document: dict[str, Any]) -> dict[str, Any]:
        if self.status_case == "upper":
            document["status"] = str(document["status"]).upper()
            for child in document.get("jobs", ()):
                child["status"] = str(child["status"]).upper()
        return document

    def _at(self, unix_time: float, work: Callable[[], None]) -> None:
        # Jobs finish on the wall clock; the scheduler counts in monotonic time.
        assert self._scheduler is not None, "start() the emulator first"
        self._scheduler.at(time.monotonic() + max(0.0, unix_time - self._clock()), work)

    def _schedule_finish(self, job: Job) -> None:
        due = job.finishes  # a cancellation moves it: the earlier schedule then stands down
        self._at_finish(due, lambda: self._job_finished(job, due))

    def _at_finish(self, unix_time: float, work: Callable[[], None]) -> None:
        with self._lock:
            self._unfinished += 1

        def run() -> None:
            try:
                work()
            finally:
                with self._settled:
                    self._unfinished -= 1
                    self._settled.notify_all()

        self._at(unix_time, run)

    # -- webhooks ----------------------------------------------------------------------

    def _job_finished(self, job: Job, due: float) -> None:
        with self._lock:
            if job.announced or due != job.finishes:
                return  # announced already, or a schedule a cancellation superseded
            job.announced = True
            crawl = self._crawls.get(job.parent_crawl_job_id) if job.parent_crawl_job_id else None
            crawl_done = crawl is not None and crawl.webhook is not None and all(j.announced for j in crawl.jobs)
        if self.webhook_url is not None:
            payload = new_dashboard_payload(job.id, self.project_id, job.outcome, job.finishes)
            self._send(job.id, job.outcome, self.webhook_url, self._webhook_secret, "dashboard", payload)
        if job.webhook is not None:
            if self.inline_format == "event":
                payload = self._inline_event(job)
            else:
                with self._lock:
                    document = self._cased(job.document(job.finishes))
                payload = {**document, "metadata": job.webhook.metadata}
            job.delivery = self._send(
                job.id, job.outcome, job.webhook.url, job.webhook.secret, self.inline_format, payload
            )
        if crawl_done:
            assert crawl is not None
            self._crawl_finished(crawl)

    def _crawl_finished(self, crawl: CrawlJob) -> None:
        assert crawl.webhook is not None
        with self._lock:
            finished = crawl.finishes
            status = crawl.status(finished)
            progress = crawl.progress(finished)
            document = self._cased(crawl.document(finished))
        if status == "cancelled":
            return  # the crawl family has no cancelled event: the service sends none
        if self.inline_format == "event":
            payload: dict[str, Any] = {
                "event": "crawl.failed" if status == "failed" else "crawl.completed",
                "event_id": str(uuid.uuid4()),
                "crawl_job_id": crawl.id,
                "status": status.upper() if self.status_case == "upper" else status,
                "progress": progress,
                "timestamp": rfc3339(finished),
                "metadata": crawl.webhook.metadata,
            }
            if status == "failed":
                payload["error"] = {"code": "CRAWL_FAILED", "message": "no page of the crawl could be extracted"}
        else:
            payload = {**document, "metadata": crawl.webhook.metadata}
        crawl.delivery = self._send(
            crawl.id, status, crawl.webhook.url, crawl.webhook.secret, self.inline_format, payload
        )

    def _inline_event(self, job: Job) -> dict[str, Any]:
        assert job.webhook is not None
        payload: dict[str, Any] = {
            "event": _EVENT_TYPES.get(job.outcome, f"job.{job.outcome}"),
            "event_id": str(uuid.uuid4()),
            "job_id": job.id,
            "timestamp": rfc3339(job.finishes),
            "metadata": job.webhook.metadata,
        }
        results = job.inline_results()
        if results is not None:
            payload["results"] = results
        if job.outcome == "failed":
            payload["error"] = {"code": "EXTRACTION_ERROR", "message": job.error or FAILURE_REASON}
        return payload

    def _send(
        self, job_id: str, status: str, url: str, secret: str | None, fmt: str, payload: dict[str, Any]
    ) -> WebhookDelivery:
        faults = self.faults
        with self._lock:
            draw = self._webhook_random.random
            event = WebhookDelivery(
                job_id,
                status,
                url,
                secret,
                fmt,
                payload,
                header=self.header,
                dropped=draw() < faults.drop,
                duplicate=draw() < faults.duplicate,
                concurrent=draw() < faults.concurrent,
            )
            self.events.append(event)
            self.stats.webhook_events += 1
            self._pending_webhooks += 1
        assert self._sender is not None
        self._sender.send(event)
        return event

    def _webhook_settled(self, event: WebhookDelivery) -> None:
        with self._settled:
            self._pending_webhooks -= 1
            self.stats.webhook_requests += len(event.attempts)
            if event.outcome == "dropped":
                self.stats.webhooks_dropped += 1
            elif event.outcome == "delivered":
                self.stats.webhooks_delivered += 1
            else:
                self.stats.webhooks_lost += 1
            self._settled.notify_all()

    # -- the HTTP API ------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        scheme, _, key = (header or "").partition(" ")
        given = key.strip().encode()
        if scheme.lower() != "bearer":
            return False
        with self._lock:
            sandbox = given in self._sandbox_keys
        return hmac.compare_digest(given, self._api_key) or sandbox

    def _sandbox_key(self) -> tuple[int, dict[str, Any]]:
        """``POST /v1/sandbox/key`` (no API key needed): a new key this emulator accepts from now on."""
        key = "sandbox_" + uuid.uuid4().hex
        with self._lock:
            self._sandbox_keys.add(key.encode())
        return 201, {"api_key": key, "expires_at": rfc3339(self._clock() + 3600), "pages_remaining": 100}

    def _draw_fault(self) -> tuple[bool, int | None]:
        """Whether to answer slowly, and an injected status (503 or 429) or ``None``."""
        faults = self.faults
        with self._lock:
            self.stats.api_requests += 1
            slow = faults.slow > 0 and self._api_random.random() < faults.slow
            status = None
            if faults.api_errors > 0 and self._api_random.random() < faults.api_errors:
                status = 429 if self._api_random.random() < 0.5 else 503
            elif faults.rate_limited > 0 and self._api_random.random() < faults.rate_limited:
                status = 429
            if status is not None:
                self.stats.api_faults += 1
        return slow, status

    def _count_job_request(self, job_id: str) -> None:
        with self._lock:
            self.stats.job_requests[job_id] = self.stats.job_requests.get(job_id, 0) + 1

    def _list(self, query: str) -> tuple[int, dict[str, Any]]:
        params = parse_qs(query)
        try:
            limit = int(params.get("limit", ["50"])[0])
            offset = int(params.get("offset", ["0"])[0])
        except ValueError:
            return 400, self.error_body("validation", "limit and offset must be integers")
        if not (1 <= limit <= 100 and offset >= 0):
            return 400, self.error_body("validation", "limit must be 1-100 and offset 0 or more")
        now = self._clock()
        with self._lock:
            ids = list(reversed(self._order))
            page = ids[offset : offset + limit]
            items = [self._cased((self._jobs.get(i) or self._crawls[i]).summary(now)) for i in page]
        return 200, {"jobs": items, "total": len(ids), "limit": limit, "offset": offset}

    def _result(self, job_id: str) -> tuple[int, dict[str, Any]]:
        now = self._clock()
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                found = job_id in self._crawls
                return (
                    (409, self.error_body("conflict", "a crawl job's results are its jobs' results"))
                    if found
                    else (
                        404,
                        self.error_body("job_not_found", "Job not found"),
                    )
                )
            if now < job.finishes or job.result() is None:
                return 409, self.error_body("conflict", f"the job is {job.status(now)}, it has no result")
            return 200, self._cased(job.result_envelope())

    def _delete(self, job_id: str) -> tuple[int, dict[str, Any] | None]:
        with self._lock:
            known = job_id in self._jobs or job_id in self._crawls
        if not known:
            return 404, self.error_body("job_not_found", "Job not found")
        self.cancel(job_id)  # a job that already finished stays as it is: 204 all the same
        return 204, None

    def error_body(self, code: str, message: str) -> dict[str, Any]:
        """An error body in the configured style."""
        if self.error_style == "flat":
            return {"error": message}
        return {"error": {"code": code, "message": message}}

    def _extract(self, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            files, urls, webhook = _read_submission(content_type, body)
        except _Invalid as error:
            return 400, self.error_body("validation", str(error))
        answer: dict[str, Any] = {"job_ids": self.submit(files, webhook) if files else [], "status": "pending"}
        if urls:
            answer["crawl_job_ids"] = [self.submit_crawl(urls, webhook)]
        return 202, answer


class _Invalid(ValueError):
    """A submission the API answers 400."""


def _mime_of(spec: tuple[str, bytes] | tuple[str, bytes, str], default: str) -> str:
    if len(spec) > 2 and spec[2]:
        return str(spec[2])
    return default or mimetypes.guess_type(spec[0])[0] or "application/octet-stream"


def _read_submission(
    content_type: str, body: bytes
) -> tuple[list[tuple[str, bytes, str]], list[str], WebhookConfig | None]:
    """The files, crawl URLs and webhook of a ``POST /v1/extract`` body; :class:`_Invalid` says why not."""
    files: list[tuple[str, bytes, str]] = []
    urls: list[str] = []
    webhook_data: Any = None
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            parts = parse_form(content_type, body)
        except (FormError, ValueError, LookupError) as error:
            raise _Invalid(f"unreadable form: {error}") from None
        for part in parts:
            if part.name == "webhook":
                try:
                    webhook_data = json.loads(part.data)
                except ValueError:
                    raise _Invalid("the webhook field is not JSON") from None
            elif part.filename is not None or part.name in ("file", "files"):
                files.append((part.filename or part.name, part.data, part.content_type))
    elif kind == "application/json":
        try:
            data = json.loads(body)
        except ValueError:
            raise _Invalid("the body is not JSON") from None
        if not isinstance(data, dict):
            raise _Invalid("the body is not a JSON object")
        webhook_data = data.get("webhook")
        for document in _items(data, "documents"):
            _read_document(document, files, urls)
        for item in _items(data, "urls"):
            urls.append(_read_url(item))
    else:
        raise _Invalid("send multipart/form-data or application/json")
    if not files and not urls:
        raise _Invalid("At least one document or URL is required")
    return files, urls, _webhook_config(webhook_data)


def _items(data: dict[str, Any], name: str) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(f"{name} must be a list")
    return value


def _read_document(document: Any, files: list[tuple[str, bytes, str]], urls: list[str]) -> None:
    if not isinstance(document, dict):
        raise _Invalid("each document must be an object")
    filename, mime_type = document.get("filename"), document.get("mime_type")
    if filename is not None and not isinstance(filename, str):
        raise _Invalid("a document's filename must be a string")
    if mime_type is not None and not isinstance(mime_type, str):
        raise _Invalid("a document's mime_type must be a string")
    if "url" in document:
        urls.append(_read_url(document))
        return
    data, content = document.get("data"), document.get("content")
    if isinstance(data, str):
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid("a document's data must be base64") from None
    elif isinstance(content, str):
        raw = content.encode()
    else:
        raise _Invalid("each document needs its data (base64), or a url")
    name = filename or "document"
    files.append((name, raw, mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"))


def _read_url(item: Any) -> str:
    url = item.get("url") if isinstance(item, dict) else item
    if isinstance(item, dict) and not isinstance(item.get("crawl_config", {}), (dict, type(None))):
        raise _Invalid("crawl_config must be an object")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise _Invalid("each url must be an http(s) URL")
    return url


def _webhook_config(data: Any) -> WebhookConfig | None:
    """The request's webhook; ``None`` when it has none — no block, or an empty ``url``
    (kreuzberg-cloud-sdk always sends ``{"url": ""}``)."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise _Invalid("webhook must be {url: http(s) URL, secret?: string, metadata?: object}")
    url, secret, metadata = data.get("url"), data.get("secret"), data.get("metadata")
    if url is None or url == "":
        return None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise _Invalid("the webhook url must be an http(s) URL")
    if secret is not None and not isinstance(secret, str):
        raise _Invalid("the webhook secret must be a string")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _Invalid("the webhook metadata must be an object")
    if len(metadata) > MAX_METADATA_ENTRIES or len(json.dumps(metadata).encode()) > MAX_METADATA_BYTES:
        raise _Invalid(f"the webhook metadata holds at most {MAX_METADATA_ENTRIES} entries and 8 KiB")
    return WebhookConfig(url, secret or None, metadata)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the reconciler's benchmark opens many keep-alive connections at once

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], emulator: Emulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections too: a stopped emulator answers nothing more."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold every kept-alive answer back about 40 ms.
    disable_nagle_algorithm = True
    server_version = "kreuzberg-emulator"
    server: _Server

    @property
    def timeout(self) -> float:  # type: ignore[override]
        """The socket time-out (``StreamRequestHandler.setup`` applies it): the emulator's read time-out."""
        return self.server.emulator.read_timeout

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a request line is not worth a line on stderr (and headers are never logged)."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        emulator = self.server.emulator
        body = b""
        length = self.headers.get("Content-Length")
        if method in ("POST", "PUT", "PATCH") or length is not None:
            if length is None or not length.isdigit():
                self._answer(411, emulator.error_body("validation", "a Content-Length is required"), close=True)
                return
            if int(length) > emulator.max_upload:
                self._answer(413, emulator.error_body("payload_too_large", "the upload is too large"), close=True)
                return
            try:
                body = self.rfile.read(int(length))
            except TimeoutError:
                body = None  # type: ignore[assignment]
            if body is None or len(body) < int(length):
                message = f"the request body did not arrive within {emulator.read_timeout:g} s"
                self._answer(408, emulator.error_body("request_timeout", message), close=True)
                return
        slow, fault = emulator._draw_fault()
        if slow:
            time.sleep(emulator.faults.slow_seconds)
        if fault == 429:
            retry = {"Retry-After": str(emulator.faults.retry_after)}
            self._answer(429, emulator.error_body("rate_limited", "Rate limit exceeded"), retry)
            return
        if fault == 503:
            self._answer(503, emulator.error_body("service_unavailable", "Database connection unavailable"))
            return
        path, _, query = self.path.partition("?")
        if method == "POST" and path.rstrip("/") == "/v1/sandbox/key":
            self._answer(*emulator._sandbox_key())
            return
        if not emulator._authorized(self.headers.get("Authorization")):
            self._answer(401, emulator.error_body("unauthorized", "Missing or invalid API key"))
            return
        route = path.rstrip("/")
        if route == "/v1/extract":
            if method != "POST":
                self._answer(405, emulator.error_body("method_not_allowed", f"{method} is not allowed here"))
                return
            self._answer(*emulator._extract(self.headers.get("Content-Type", ""), body))
            return
        if route == "/v1/jobs":
            if method != "GET":
                self._answer(405, emulator.error_body("method_not_allowed", f"{method} is not allowed here"))
                return
            self._answer(*emulator._list(query))
            return
        match = _JOB_PATH.match(path)
        if match is None:
            self._answer(404, emulator.error_body("not_found", "No such route"))
            return
        job_id, result = match.group(1), match.group(2) is not None
        allowed = ("GET",) if result else ("GET", "DELETE")
        if method not in allowed:
            self._answer(405, emulator.error_body("method_not_allowed", f"{method} is not allowed here"))
            return
        if not _is_uuid(job_id):
            self._answer(400, emulator.error_body("validation", "Invalid job ID format"))
            return
        job_id = str(uuid.UUID(job_id))
        if method == "DELETE":
            self._answer(*emulator._delete(job_id))
            return
        if result:
            self._answer(*emulator._result(job_id))
            return
        emulator._count_job_request(job_id)
        document = emulator.document(job_id)
        if document is None:
            self._answer(404, emulator.error_body("job_not_found", "Job not found"))
        else:
            self._answer(200, document)

    def _answer(
        self,
        status: int,
        payload: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
        *,
        close: bool = False,
    ) -> None:
        data = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        with contextlib.suppress(OSError):  # the client went away
            self.send_response(status)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if data:
                self.wfile.write(data)
