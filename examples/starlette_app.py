"""A Starlette receiver for Kreuzberg Cloud webhooks (endpoint mode).

The middleware answers ``POST /webhooks/kreuzberg`` itself and runs the
receiver's handlers; every other path is the application's as usual.

Serve it from the repository root with several workers (they share the SQLite
replay store, so a retry that lands on another worker is still deduplicated)::

    KREUZBERG_WEBHOOK_SECRET=... uvicorn --app-dir examples starlette_app:app --workers 4 --host 127.0.0.1 --port 8000

Environment: the examples' common variables, listed in ``_shared.py`` —
``KREUZBERG_WEBHOOK_SECRET`` (required), ``KREUZBERG_EVENTS_LOG``,
``KREUZBERG_STORE_URL``, ``KREUZBERG_REDIS_URL``, ``KREUZBERG_MAX_BODY_SIZE``.
"""

from __future__ import annotations

from _shared import receiver_from_env, record, worker_from_env
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware

receiver = receiver_from_env(asynchronous=True)  # an ASGI app: the store's async flavour
worker = worker_from_env(receiver)  # KREUZBERG_INBOX=1: an inbox worker task runs with the app


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
    lifespan=worker.lifespan if worker is not None else None,
)
