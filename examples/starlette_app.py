"""A Starlette receiver for Kreuzberg Cloud webhooks (endpoint mode).

The middleware answers ``POST /webhooks/kreuzberg`` itself and runs the
receiver's handlers; every other path is the application's as usual.

Serve it from the repository root with several workers (they share the SQLite
replay store, so a retry that lands on another worker is still deduplicated)::

    KREUZBERG_WEBHOOK_SECRET=... uvicorn --app-dir examples starlette_app:app --workers 4 --host 127.0.0.1 --port 8000

Environment:

- ``KREUZBERG_WEBHOOK_SECRET`` (required): the project's webhook secret.
- ``KREUZBERG_EVENTS_LOG``: append one JSON line per processed event to this file.
- ``KREUZBERG_STORE_URL``: the replay store; default ``sqlite:///kreuzberg-webhooks.sqlite3``
  (a file in the working directory, shared by the workers of one machine).
- ``KREUZBERG_REDIS_URL``: use Redis instead (workers on several machines).
- ``KREUZBERG_MAX_BODY_SIZE``: the largest body accepted, in bytes (default 64 MiB).
"""

from __future__ import annotations

import os

from _shared import record, secret_from_env, store_from_env
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kreuzberg_webhooks import DEFAULT_MAX_BODY_SIZE, Event, Receiver
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware

receiver = Receiver(
    secret_from_env(),
    store=store_from_env(
        os.environ.get("KREUZBERG_STORE_URL") or "sqlite:///kreuzberg-webhooks.sqlite3", asynchronous=True
    ),
    max_body_size=int(os.environ.get("KREUZBERG_MAX_BODY_SIZE") or DEFAULT_MAX_BODY_SIZE),
)


@receiver.on()  # every event, including statuses Kreuzberg adds later
def record_job(event: Event) -> None:
    """Record the job; the text is fetched later with ``GET /v1/jobs/{job_id}``.

    A plain function: the middleware runs it in a worker thread, off the event loop.
    """
    record(event)


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Deliveries go to POST /webhooks/kreuzberg\n")


app = Starlette(
    routes=[Route("/", homepage)],
    middleware=[Middleware(KreuzbergWebhookMiddleware, receiver=receiver, path="/webhooks/kreuzberg")],
)
