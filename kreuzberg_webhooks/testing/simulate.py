"""A sender simulator: delivers events to a URL the way Kreuzberg Cloud does.

It follows the sender's contract (``docs/contract.md`` §3): at-least-once delivery,
up to 5 attempts with a backoff of 5 s → 30 s → 5 min (and 5 min again before
the fifth), a 30 s time-out, a stop on 2xx and on any 4xx other than 429, and
a retry on 429, 5xx, time-outs and connection errors. Each attempt is re-signed
with the incremented ``attempt_count`` (``event_id`` and ``timestamp`` stay the
same), and in the ``t=…,v1=…`` format with a fresh ``t``, as the sender must
for a receiver that refuses a ``t`` older than five minutes. ``time_scale``
shrinks every wait so a run takes seconds.

Standard library only: :mod:`http.client` and threads.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import ssl
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import IO, Any, TypeAlias
from urllib.parse import SplitResult, urlsplit

from ..events import event_type_for
from ..protocol.schedule import MAX_ATTEMPTS, RETRY_DELAYS, SENDER_TIMEOUT
from ..protocol.verify import DEFAULT_SIGNATURE_HEADER
from . import (
    SCHEMES,
    crawl_job_document_payload,
    job_document_payload,
    job_event_payload,
    payload_for_event,
    sign_with,
    statuses_for_event,
    webhook_event_payload,
)

__all__ = [
    "MAX_ATTEMPTS",
    "MIN_TIMEOUT",
    "RETRY_DELAYS",
    "SENDER_TIMEOUT",
    "Answer",
    "Attempt",
    "EventOutcome",
    "EventResult",
    "Simulation",
    "SimulationReport",
    "Transport",
    "Verdict",
    "classify",
    "http_transport",
    "redact_url",
]

#: The scaled time-out never goes below this: a loaded machine must not look like a dead receiver.
MIN_TIMEOUT = 1.0
#: At most this much of an answer's body is kept.
MAX_ANSWER_BYTES = 64 * 1024

# A realistic mix of the terminal statuses, with their weights.
_STATUSES = ("completed", "partial_success", "failed", "cancelled")
_STATUS_WEIGHTS = (70, 10, 15, 5)


class Verdict(Enum):
    """What the sender does after an answer."""

    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


def classify(status: int | None) -> Verdict:
    """The sender's rule: 2xx delivered; any 4xx but 429 permanent; everything else
    (429, 5xx, no answer at all, and the 1xx/3xx the contract does not mention) retried."""
    if status is not None and 200 <= status < 300:
        return Verdict.DELIVERED
    if status is not None and 400 <= status < 500 and status != 429:
        return Verdict.PERMANENT
    return Verdict.RETRY


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back for one request: a status, or the error that replaced it."""

    status: int | None
    body: bytes = b""
    reason: str = ""
    #: ``"time-out"``, ``"connection refused"`` or ``"connection error (…)"`` when there was no answer.
    error: str | None = None
    latency: float = 0.0

    @property
    def label(self) -> str:
        """``"200"``, ``"503"``, ``"time-out"``…, for the answers line of the report."""
        return str(self.status) if self.status is not None else (self.error or "no answer")


#: Sends one request: ``(url, body, headers, timeout) -> Answer``.
Transport: TypeAlias = Callable[[str, bytes, dict[str, str], float], Answer]


def redact_url(url: str) -> str:
    """*url* with any password replaced by ``***``, for messages; a URL that does not parse too."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed IPv6 literal; its userinfo is still to hide
        return _redact_unparsed(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = f"{parts.username}:***" if parts.username else "***"
    return SplitResult(parts.scheme, f"{userinfo}@{netloc[-1]}", parts.path, parts.query, parts.fragment).geturl()


def _redact_unparsed(url: str) -> str:
    scheme, sep, rest = url.partition("//")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, host = rest[:end].rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}//{userinfo.partition(':')[0]}:***@{host}{rest[end:]}"


def http_transport(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POST with :mod:`http.client` on a new connection, as a webhook sender does."""
    parts = urlsplit(url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    started = time.perf_counter()
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        answer = response.read(MAX_ANSWER_BYTES)
        return Answer(response.status, answer, response.reason, latency=time.perf_counter() - started)
    except (OSError, http.client.HTTPException, ValueError) as error:
        return Answer(None, error=_describe(error), latency=time.perf_counter() - started)
    finally:
        connection.close()


def _describe(error: BaseException) -> str:
    """A short name for a failed request; never the exception's text, which can quote the request."""
    if isinstance(error, TimeoutError):
        return "time-out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, socket.gaierror):
        return "host not found"
    if isinstance(error, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted"
    if isinstance(error, ssl.SSLError):
        return "TLS error"
    if isinstance(error, http.client.RemoteDisconnected):
        return "closed without an answer"
    return f"connection error ({type(error).__name__})"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request of one delivery."""

    number: int
    answer: Answer
    verdict: Verdict


class EventOutcome(Enum):
    """How the sender's work on one event ended."""

    DELIVERED = "delivered"
    DELIVERED_AFTER_RETRIES = "delivered after retries"
    PERMANENTLY_REJECTED = "permanently rejected"
    DEAD_LETTERED = "dead-lettered"

    @property
    def lost(self) -> bool:
        """Whether the event never reached the receiver's handler as far as the sender knows."""
        return self in (EventOutcome.PERMANENTLY_REJECTED, EventOutcome.DEAD_LETTERED)


@dataclass(slots=True)
class EventResult:
    """Everything sent for one event: its delivery chains and how the event ended."""

    key: str
    #: The original chain, plus its concurrent twin when one was injected.
    chains: list[list[Attempt]] = field(default_factory=list)
    #: Redeliveries after success (injected duplicates).
    redeliveries: list[list[Attempt]] = field(default_factory=list)

    @property
    def outcome(self) -> EventOutcome:
        """Delivered if any chain got a 2xx; otherwise rejected if any got a permanent 4xx."""
        delivered = [chain for chain in self.chains if chain and chain[-1].verdict is Verdict.DELIVERED]
        if delivered:
            if any(len(chain) == 1 for chain in delivered):
                return EventOutcome.DELIVERED
            return EventOutcome.DELIVERED_AFTER_RETRIES
        if any(chain and chain[-1].verdict is Verdict.PERMANENT for chain in self.chains):
            return EventOutcome.PERMANENTLY_REJECTED
        return EventOutcome.DEAD_LETTERED

    @property
    def attempts(self) -> list[Attempt]:
        """Every request sent for the event."""
        return [attempt for chain in (*self.chains, *self.redeliveries) for attempt in chain]

    @property
    def final_label(self) -> str:
        """The last answer of the original chain (``"400"``, ``"time-out"``…)."""
        chain = self.chains[0] if self.chains else []
        return chain[-1].answer.label if chain else "not sent"


@dataclass(slots=True)
class SimulationReport:
    """The results of a run, and the numbers the summary table prints."""

    url: str
    results: list[EventResult]
    elapsed: float
    delays: tuple[float, ...]
    timeout: float

    def count(self, outcome: EventOutcome) -> int:
        """How many events ended with *outcome*."""
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def lost(self) -> list[EventResult]:
        """Events permanently rejected or dead-lettered."""
        return [result for result in self.results if result.outcome.lost]

    @property
    def answers(self) -> Counter[str]:
        """How often each status (or error) came back, over every request."""
        return Counter(attempt.answer.label for result in self.results for attempt in result.attempts)

    def render(self) -> str:
        """The human summary: an outcome table and one line of request statistics."""
        attempts = [attempt for result in self.results for attempt in result.attempts]
        latencies = sorted(a.answer.latency for a in attempts if a.answer.status is not None)
        delays = ", ".join(_seconds(delay) for delay in self.delays)
        lines = [
            f"{len(self.results)} events to {redact_url(self.url)} in {self.elapsed:.2f} s "
            f"(backoff {delays}; time-out {_seconds(self.timeout)})",
            "",
            f"  {'outcome':<26}{'events':>7}",
        ]
        for outcome in EventOutcome:
            lines.append(f"  {outcome.value:<26}{self.count(outcome):>7}")
        lines.append(f"  {'total':<26}{len(self.results):>7}")
        lines.append("")
        answers = ", ".join(f"{label} x{n}" for label, n in sorted(self.answers.items()))
        redelivered = sum(len(result.redeliveries) for result in self.results)
        twins = sum(1 for result in self.results if len(result.chains) > 1)
        lines.append(
            f"requests: {len(attempts)} ({redelivered} duplicate redeliveries, {twins} concurrent duplicates); "
            f"answers: {answers or 'none'}"
        )
        if latencies:
            p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
            lines.append(f"latency: median {_millis(statistics.median(latencies))}, p95 {_millis(p95)}")
        lost = self.lost
        if lost:
            shown = ", ".join(f"{result.key} ({result.final_label})" for result in lost[:5])
            more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
            lines.append(f"LOST {len(lost)} of {len(self.results)} events: {shown}{more}")
        else:
            lines.append(f"no event lost: all {len(self.results)} delivered")
        return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{value:.3g} s"


def _millis(value: float) -> str:
    return f"{value * 1000:.1f} ms"


class Progress:
    """A one-line progress bar on a terminal; silent on anything else (a pipe, a log file)."""

    def __init__(self, stream: IO[str] | None, total: int, *, width: int = 30) -> None:
        self._stream = stream if stream is not None and _isatty(stream) else None
        self._total = total
        self._width = width
        self._done = 0
        self._lost = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """Whether a bar is being drawn."""
        return self._stream is not None

    def start(self) -> None:
        """Draw the empty bar."""
        self._draw()

    def advance(self, result: EventResult) -> None:
        """Count one finished event."""
        with self._lock:
            self._done += 1
            self._lost += result.outcome.lost
            self._draw()

    def close(self) -> None:
        """Erase the bar so the summary starts on a clean line."""
        if self._stream is not None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    def _draw(self) -> None:
        if self._stream is None:
            return
        filled = self._width * self._done // max(1, self._total)
        bar = "#" * filled + "-" * (self._width - filled)
        lost = f", {self._lost} lost" if self._lost else ""
        self._stream.write(f"\r[{bar}] {self._done}/{self._total} events{lost}")
        self._stream.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@dataclass(slots=True)
class _Plan:
    payload: dict[str, Any]
    twin: bool
    redeliver: bool

    @property
    def key(self) -> str:
        return str(self.payload.get("event_id") or f"job {self.payload.get('id')}")


class Simulation:
    """Delivers *events* events to *url* like the real sender, and reports what happened.

    :param url: the receiver's endpoint (``http://`` or ``https://``).
    :param secret: the webhook secret; ``None`` sends unsigned deliveries.
    :param events: how many distinct events to send.
    :param concurrency: how many events are in progress at once.
    :param time_scale: multiplies every backoff wait and the 30 s time-out (``0.01``: seconds, not minutes).
    :param timeout: the per-request time-out in seconds; default 30 s scaled, at least :data:`MIN_TIMEOUT`.
    :param duplicates: the fraction of delivered events that are delivered once more (at-least-once).
    :param concurrent_duplicates: how many events have their first attempt sent twice at the same moment.
    :param shape: ``"event"`` (the small event), ``"document"`` / ``"crawl"`` (per-request webhooks)
        or ``"webhook"`` (the inline webhook's ``WebhookEvent``).
    :param event_types: instead of *shape*, webhooks of these events' families, each event one of
        them at random (``testing.EVENT_TYPES``: every event the vendor sends, job, crawl and
        auto-tune; a name this version does not know sends such an event); signed ``t-v1``.
    :param scheme: the signature format, ``"sha256"`` or ``"t-v1"`` (a fresh ``t`` on every
        attempt); default ``"t-v1"`` for the ``"webhook"`` shape, ``"sha256"`` for the others.
    :param status: every event's status; default a realistic mix of the terminal four.
    :param seed: makes the choice of statuses and injected duplicates repeatable.
    :param header: the signature header's name.
    :param transport: sends one request (tests inject a fake); :func:`http_transport` by default.
    :param wait: waits out a backoff; returns ``True`` if the run was cancelled meanwhile.
    :param clock: the unix time a ``t=`` signature is stamped with (tests inject one with *wait*).
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes | None,
        *,
        events: int = 20,
        concurrency: int = 4,
        time_scale: float = 1.0,
        timeout: float | None = None,
        duplicates: float = 0.0,
        concurrent_duplicates: int = 0,
        shape: str = "event",
        event_types: Sequence[str] | None = None,
        status: str | None = None,
        seed: int | None = None,
        scheme: str | None = None,
        header: str = DEFAULT_SIGNATURE_HEADER,
        user_agent: str = "kreuzberg-webhook/simulator",
        transport: Transport = http_transport,
        wait: Callable[[float], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if events < 1 or concurrency < 1:
            raise ValueError("events and concurrency must be at least 1")
        if not time_scale > 0:
            raise ValueError("the time scale must be positive")
        if not 0.0 <= duplicates <= 1.0:
            raise ValueError("the duplicate rate must be between 0 and 1")
        if not 0 <= concurrent_duplicates <= events:
            raise ValueError("concurrent duplicates must be between 0 and the number of events")
        if shape not in ("event", "document", "crawl", "webhook"):
            raise ValueError(f"unknown payload shape {shape!r}")
        if scheme is not None and scheme not in SCHEMES:
            raise ValueError(f"unknown signature scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
        if event_types is not None and not event_types:
            raise ValueError("event_types is empty: give at least one event")
        for event in event_types or ():
            allowed = statuses_for_event(event)
            if status is not None and allowed and status not in allowed:
                raise ValueError(f"{event} does not carry the status {status!r}")
        self.url = url
        self._secret = secret
        self.events = events
        self.concurrency = concurrency
        self.delays = tuple(delay * time_scale for delay in RETRY_DELAYS)
        self.timeout = timeout if timeout is not None else max(MIN_TIMEOUT, SENDER_TIMEOUT * time_scale)
        # Refused here rather than as an OverflowError from a socket or a wait in the middle of a run.
        if not 0 < max(self.delays) <= threading.TIMEOUT_MAX:
            raise ValueError(f"the time scale {time_scale!r} makes a backoff longer than any timer can wait")
        if not 0 < self.timeout <= threading.TIMEOUT_MAX:
            raise ValueError(f"the time-out must be a positive number of seconds a timer can hold, not {timeout!r}")
        self.duplicates = duplicates
        self.concurrent_duplicates = concurrent_duplicates
        self.shape = "webhook" if event_types else shape
        self.event_types = tuple(event_types or ())
        self.scheme = scheme or ("t-v1" if self.shape == "webhook" else "sha256")
        self.status = status
        self.header = header
        self.user_agent = user_agent
        self._random = random.Random(seed)
        self._transport = transport
        self._cancelled = threading.Event()
        self._wait = wait or self._cancelled.wait
        self._clock = clock

    def __repr__(self) -> str:
        # Never show the secret.
        return f"Simulation({redact_url(self.url)!r}, events={self.events}, concurrency={self.concurrency})"

    def cancel(self) -> None:
        """Stop sending: chains end after their current request."""
        self._cancelled.set()

    def run(self, progress: IO[str] | None = None) -> SimulationReport:
        """Send every event and return the report; draws a progress bar on *progress* if it is a terminal."""
        plans = self._plans()
        bar = Progress(progress, len(plans))
        bar.start()
        started = time.perf_counter()
        results: list[EventResult] = []
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="kreuzberg-simulate") as pool:
                futures = [pool.submit(self._deliver_event, plan) for plan in plans]
                for future in futures:
                    result = future.result()
                    results.append(result)
                    bar.advance(result)
        except BaseException:
            self.cancel()
            raise
        finally:
            bar.close()
        return SimulationReport(self.url, results, time.perf_counter() - started, self.delays, self.timeout)

    # -- planning ----------------------------------------------------------------------

    def _plans(self) -> list[_Plan]:
        twins = set(self._random.sample(range(self.events), self.concurrent_duplicates))
        plans = []
        for index in range(self.events):
            if self.event_types:
                payload = self._family_payload(self._random.choice(self.event_types))
            else:
                payload = self._payload(self.status or self._random.choices(_STATUSES, _STATUS_WEIGHTS)[0])
            redeliver = self._random.random() < self.duplicates
            plans.append(_Plan(payload, index in twins, redeliver))
        return plans

    def _family_payload(self, event: str) -> dict[str, Any]:
        statuses = statuses_for_event(event)
        status = self.status
        if status is None and len(statuses) > 1:  # crawl.completed: now and then a partial success
            status = statuses[0] if self._random.random() < 0.8 else statuses[1]
        return payload_for_event(event, status=status if statuses else None)

    def _payload(self, status: str) -> dict[str, Any]:
        error = "extraction failed: OCR timeout" if status == "failed" else None
        if self.shape == "document":
            return job_document_payload(status=status)
        if self.shape == "crawl":
            return crawl_job_document_payload(status=status)
        if self.shape == "webhook":
            return webhook_event_payload(event=event_type_for(status))
        return job_event_payload(status=status, error_message=error)

    # -- sending -----------------------------------------------------------------------

    def _deliver_event(self, plan: _Plan) -> EventResult:
        result = EventResult(plan.key)
        if plan.twin:
            # Two copies of the first attempt leave at the same moment: the race a
            # slow answer and an impatient retry create in production.
            barrier = threading.Barrier(2)
            twin: list[Attempt] = []
            thread = threading.Thread(
                target=lambda: twin.extend(self._chain(plan.payload, 1, barrier)), name="kreuzberg-simulate-twin"
            )
            thread.start()
            result.chains.append(self._chain(plan.payload, 1, barrier))
            thread.join()
            result.chains.append(twin)
        else:
            result.chains.append(self._chain(plan.payload, 1))
        if plan.redeliver and result.outcome in (EventOutcome.DELIVERED, EventOutcome.DELIVERED_AFTER_RETRIES):
            # At-least-once: the sender delivers a delivered event again, as its next attempt.
            after = max(len(chain) for chain in result.chains) + 1
            result.redeliveries.append(self._chain(plan.payload, after))
        return result

    def _chain(self, payload: dict[str, Any], first: int, barrier: threading.Barrier | None = None) -> list[Attempt]:
        attempts: list[Attempt] = []
        for index, number in enumerate(range(first, first + MAX_ATTEMPTS)):
            if index and (self._cancelled.is_set() or self._wait(self.delays[index - 1])):
                break
            if self._cancelled.is_set():
                break
            body, headers = self._request(payload, number)
            if barrier is not None and index == 0:
                # If the twin never reaches the barrier, send anyway.
                with contextlib.suppress(threading.BrokenBarrierError):
                    barrier.wait(timeout=self.timeout)
            answer = self._transport(self.url, body, headers, self.timeout)
            verdict = classify(answer.status)
            attempts.append(Attempt(number, answer, verdict))
            if verdict is not Verdict.RETRY:
                break
        return attempts

    def _request(self, payload: dict[str, Any], attempt: int) -> tuple[bytes, dict[str, str]]:
        small_event = "event_id" in payload and "event" not in payload
        if small_event:
            # Same event_id and timestamp on every attempt; only attempt_count moves, so the signature changes.
            payload = {**payload, "attempt_count": attempt}
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": self.user_agent}
        if small_event:
            headers["X-Idempotency-Key"] = str(payload["event_id"])
        if self._secret is not None:
            # t-v1: signed at this attempt's real time, whatever the time scale, since the
            # receiver checks t against its own clock.
            headers[self.header] = sign_with(self.scheme, body, self._secret, signed_at=self._clock())
        return body, headers
