"""A Starlette receiver for Kreuzberg Cloud webhooks (endpoint mode).

The middleware answers ``POST /webhooks/kreuzberg`` itself and runs the
receiver's handlers; every other path is the application's as usual.

Serve it from the repository root with several workers (they share the SQLite
replay store, so a retry that lands on another worker is still deduplicated)::

    KREUZBERG_WEBHOOK_SECRET=... uvicorn --app-dir examples starlette_app:app --workers 4 --host 127.0.0.1 --port 8000

Environment: the examples' common variables, listed in ``_shared.py`` —
``KREUZBERG_WEBHOOK_SECRET`` (required), ``KREUZBERG_EVENTS_LOG``,
``KREUZBERG_STORE_URL``, ``KREUZBERG_REDIS_URL``, ``KREUZBERG_MAX_BODY_SIZE``.
With ``KREUZBERG_API_URL`` set, ``POST /extract`` submits documents and the app fetches and
reconciles (``KREUZBERG_API_KEY``, ``KREUZBERG_WEBHOOK_URL``, ``KREUZBERG_RECONCILE_INTERVAL``,
``KREUZBERG_RECONCILE_AFTER``; see ``_shared.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from _shared import cloud_from_env, extract_unavailable, receiver_from_env, record, worker_from_env
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware

receiver = receiver_from_env(asynchronous=True)  # an ASGI app: the store's async flavour
worker = worker_from_env(receiver)  # KREUZBERG_INBOX=1: an inbox worker task runs with the app
cloud = cloud_from_env(receiver, asgi=True)  # KREUZBERG_API_URL set: submit, fetch results, reconcile


@receiver.on()  # every event, including statuses Kreuzberg adds later
def record_job(event: Event) -> None:
    """Record the job; the text is fetched later with ``GET /v1/jobs/{job_id}``.

    A plain function: the middleware runs it in a worker thread, off the event loop.
    """
    record(event)


async def extract(request: Request) -> JSONResponse:
    """``POST /extract`` with a multipart ``file``: submitted to Kreuzberg Cloud, answered 202 with its job ids."""
    if cloud is None:
        status, answer = extract_unavailable()
    else:
        body = await request.body()
        status, answer = await run_in_threadpool(cloud.submit_form, request.headers.get("content-type", ""), body)
    return JSONResponse(answer, status)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """The inbox worker (KREUZBERG_INBOX=1) and the reconciler (KREUZBERG_RECONCILE_INTERVAL) run with the app."""
    async with contextlib.AsyncExitStack() as stack:
        if worker is not None:
            await stack.enter_async_context(worker.lifespan(app))
        if cloud is not None:
            await stack.enter_async_context(cloud.asgi_lifespan())
        yield


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse("Deliveries go to POST /webhooks/kreuzberg\n")


app = Starlette(
    routes=[Route("/", homepage), Route("/extract", extract, methods=["POST"])],
    middleware=[Middleware(KreuzbergWebhookMiddleware, receiver=receiver, path="/webhooks/kreuzberg")],
    lifespan=lifespan,
)
