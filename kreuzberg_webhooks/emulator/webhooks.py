"""The emulator's webhook sender: the documented schedule, both formats, and injected faults.

Each terminal job gives one *event*. Its delivery follows the sender's
contract (``docs/contract.md`` §3), shared with :mod:`kreuzberg_webhooks.testing.simulate`:
up to 5 attempts, 5 s → 30 s → 5 min → 5 min apart (times the time scale),
a stop on 2xx and on any 4xx but 429. Faults are drawn per event: never
delivered at all, delivered once more after success, or its first attempt
sent twice at the same moment.
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..protocol.schedule import MAX_ATTEMPTS, RETRY_DELAYS
from ..protocol.signing import sign, sign_timestamped
from ..protocol.verify import DEFAULT_SIGNATURE_HEADER
from ..testing import new_event_id
from ..testing.simulate import Transport, Verdict, classify

__all__ = ["Scheduler", "WebhookAttempt", "WebhookDelivery", "WebhookSender"]


class Scheduler:
    """Runs callables at monotonic times: one timer thread, a small pool to do the work."""

    def __init__(self, workers: int) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._stopped = False
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="kreuzberg-emulator-webhook")
        self._thread = threading.Thread(target=self._run, name="kreuzberg-emulator-timer", daemon=True)
        self._thread.start()

    def at(self, due: float, work: Callable[[], None]) -> None:
        """Run *work* in the pool at monotonic time *due* (or soon after)."""
        with self._condition:
            if self._stopped:
                return
            heapq.heappush(self._heap, (due, next(self._order), work))
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                _, _, work = heapq.heappop(self._heap)
            try:
                self._pool.submit(work)
            except RuntimeError:  # the pool shut down meanwhile
                return

    def stop(self) -> None:
        """Drop what is still scheduled and wait for the work already running."""
        with self._condition:
            self._stopped = True
            self._heap.clear()
            self._condition.notify_all()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(slots=True)
class WebhookDelivery:
    """One event to deliver: where, how it is signed, what its body is, and its injected faults."""

    job_id: str
    status: str
    url: str
    secret: str | None
    #: ``"dashboard"`` (the small event, ``sha256=``), ``"event"`` (the inline WebhookDelivery,
    #: ``t=,v1=``) or ``"document"`` (the full job document, ``sha256=``).
    format: str
    payload: dict[str, Any]
    header: str = DEFAULT_SIGNATURE_HEADER
    dropped: bool = False
    duplicate: bool = False
    concurrent: bool = False
    #: How the delivery ended: ``"pending"``, ``"delivered"``, ``"rejected"``, ``"dead-lettered"``, ``"dropped"``.
    outcome: str = "pending"
    attempts: list[WebhookAttempt] = field(default_factory=list)

    def request(self, attempt: int, now: float) -> tuple[bytes, dict[str, str]]:
        """The body and headers of attempt number *attempt*, signed afresh."""
        payload = self.payload
        if self.format == "dashboard":
            payload = {**payload, "attempt_count": attempt}
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "kreuzberg-webhook/emulator"}
        if "event_id" in payload:
            headers["X-Idempotency-Key"] = str(payload["event_id"])
        if self.secret:
            headers[self.header] = (
                sign_timestamped(body, self.secret, timestamp=int(now))
                if self.format == "event"
                else sign(body, self.secret)
            )
        return body, headers


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One request sent for an event."""

    number: int
    #: ``"first"``, ``"retry"``, ``"duplicate"`` (after success) or ``"twin"`` (a concurrent copy).
    kind: str
    #: The status code, or ``"time-out"``, ``"connection refused"`` …
    answer: str
    verdict: Verdict


class WebhookSender:
    """Delivers :class:`WebhookDelivery` objects on the retry schedule, through *transport*."""

    def __init__(
        self,
        scheduler: Scheduler,
        transport: Transport,
        *,
        time_scale: float,
        timeout: float,
        on_settled: Callable[[WebhookDelivery], None],
    ) -> None:
        self._scheduler = scheduler
        self._transport = transport
        self._delays = tuple(delay * time_scale for delay in RETRY_DELAYS)
        self._timeout = timeout
        self._on_settled = on_settled
        self._lock = threading.Lock()

    def send(self, event: WebhookDelivery) -> None:
        """Start delivering *event* now (or record it as dropped)."""
        if event.dropped:
            event.outcome = "dropped"
            self._on_settled(event)
            return
        now = time.monotonic()
        if event.concurrent:
            self._scheduler.at(now, lambda: self._attempt(event, 1, "twin"))
        self._scheduler.at(now, lambda: self._attempt(event, 1, "first"))

    def _attempt(self, event: WebhookDelivery, number: int, kind: str) -> None:
        body, headers = event.request(number, time.time())
        answer = self._transport(event.url, body, headers, self._timeout)
        verdict = classify(answer.status)
        with self._lock:
            event.attempts.append(WebhookAttempt(number, kind, answer.label, verdict))
        if kind in ("twin", "duplicate"):
            return  # extra copies never drive the event's own schedule
        if verdict is Verdict.DELIVERED:
            if event.duplicate:
                # At-least-once: the same event once more, as the sender's next attempt.
                self._attempt(event, number + 1, "duplicate")
            self._settle(event, "delivered")
        elif verdict is Verdict.PERMANENT:
            self._settle(event, "rejected")
        elif number >= MAX_ATTEMPTS:
            self._settle(event, "dead-lettered")
        else:
            due = time.monotonic() + self._delays[number - 1]
            self._scheduler.at(due, lambda: self._attempt(event, number + 1, "retry"))

    def _settle(self, event: WebhookDelivery, outcome: str) -> None:
        event.outcome = outcome
        self._on_settled(event)


def new_dashboard_payload(job_id: str, project_id: str, status: str, finished: float) -> dict[str, Any]:
    """The small event of a dashboard (project) webhook."""
    return {
        "event_id": new_event_id(finished),
        "job_id": job_id,
        "project_id": project_id,
        "status": status,
        "error_message": "extraction failed: the document could not be read" if status == "failed" else None,
        "timestamp": int(finished),
        "attempt_count": 1,
    }
