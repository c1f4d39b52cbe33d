"""A receiver that fails on purpose, for the simulator's integration tests.

Served by uvicorn (one worker, so the in-memory replay store sees every request)::

    KREUZBERG_WEBHOOK_SECRET=... FLAKY_EVENTS_LOG=events.jsonl uvicorn tests.integration.flaky_app:app

Endpoints, each a real :class:`~kreuzberg_webhooks.Receiver` behind the ASGI middleware:

- ``POST /flaky`` — a third of the events get a ``503`` on their first request
  (a proxy in front of the app that is briefly overloaded), and the handler
  raises on its first run for every other event (answered ``500``, claim
  released). Every event still gets handled exactly once if the sender retries.
- ``POST /slow`` — the handler takes ``FLAKY_SLOW_SECONDS`` on the first run of
  every other event, longer than the sender waits: the sender times out and
  retries while the first attempt is still running (``429``), then gets the
  duplicate acknowledged.
- ``POST /reject`` — ``400`` for everything, as a broken endpoint would.

Each handled event is appended to ``FLAKY_EVENTS_LOG`` as a JSON line
``{"path", "event_id", "attempt"}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kreuzberg_webhooks import Event, JobEvent, MemoryStore, Receiver
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware

SECRET = os.environ["KREUZBERG_WEBHOOK_SECRET"]
EVENTS_LOG = Path(os.environ["FLAKY_EVENTS_LOG"])
SLOW_SECONDS = float(os.environ.get("FLAKY_SLOW_SECONDS", "0.4"))

_lock = threading.Lock()
_first_runs: dict[str, set[str]] = {"flaky": set(), "slow": set()}
_event_numbers: dict[str, dict[str, int]] = {"flaky": {}, "slow": {}}
_requests_seen: set[str] = set()


def _record(path: str, event: Event) -> None:
    attempt = event.attempt_count if isinstance(event, JobEvent) else None
    line = json.dumps({"path": path, "event_id": event.event_id or str(event.job_id), "attempt": attempt})
    with _lock, EVENTS_LOG.open("a") as log:
        log.write(line + "\n")


def _first_run_of_odd_event(path: str, event: Event) -> bool:
    """Whether this is the first handler run of an odd-numbered event (numbered by first arrival)."""
    key = event.dedup_key
    with _lock:
        numbers = _event_numbers[path]
        number = numbers.setdefault(key, len(numbers))
        first = key not in _first_runs[path]
        _first_runs[path].add(key)
    return first and number % 2 == 1


flaky = Receiver(SECRET, store=MemoryStore())


@flaky.on()
def flaky_handler(event: Event) -> None:
    if _first_run_of_odd_event("flaky", event):
        raise RuntimeError("injected failure on the first run")
    _record("flaky", event)


slow = Receiver(SECRET, store=MemoryStore())


@slow.on()
def slow_handler(event: Event) -> None:
    if _first_run_of_odd_event("slow", event):
        time.sleep(SLOW_SECONDS)  # longer than the sender's time-out in the test
    _record("slow", event)


class FirstRequestUnavailable:
    """Answers 503 to the first request of a third of the events, before the app sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/flaky":
            headers = dict(scope["headers"])
            key = headers.get(b"x-idempotency-key", b"").decode()
            unlucky = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 3 == 0
            with _lock:
                first = key not in _requests_seen
                _requests_seen.add(key)
            if key and unlucky and first:
                await Response(b'{"error":"overloaded"}', 503, media_type="application/json")(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def reject(request: Request) -> JSONResponse:
    await request.body()
    return JSONResponse({"error": "bad_request"}, status_code=400)


async def health(request: Request) -> Response:
    return Response(b"ok")


def _build() -> Any:
    app: Any = Starlette(routes=[Route("/reject", reject, methods=["POST"]), Route("/", health)])
    app = KreuzbergWebhookMiddleware(app, receiver=slow, path="/slow")
    app = KreuzbergWebhookMiddleware(app, receiver=flaky, path="/flaky")
    return FirstRequestUnavailable(app)


app = _build()
