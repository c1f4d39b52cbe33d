"""A FastAPI receiver for Kreuzberg Cloud webhooks: the route gets the verified, typed event.

The ``KreuzbergWebhook`` dependency verifies the signature and the timestamp and
claims the event before the route runs; forged, stale, duplicate and in-flight
deliveries are answered without running it. When the route returns, the event
is marked done; when it raises, the claim is released and the sender's retry is
processed.

Serve it from the repository root with several workers (they share the SQLite
replay store)::

    KREUZBERG_WEBHOOK_SECRET=... uvicorn --app-dir examples fastapi_app:app --workers 4 --host 127.0.0.1 --port 8000

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
from typing import Annotated, Any

from _shared import cloud_from_env, extract_unavailable, receiver_from_env, record, worker_from_env
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware
from kreuzberg_webhooks.adapters.fastapi import KreuzbergWebhook

receiver = receiver_from_env(asynchronous=True)
webhook = KreuzbergWebhook(receiver)

worker = worker_from_env(receiver)  # KREUZBERG_INBOX=1: an inbox worker task runs with the app
cloud = cloud_from_env(receiver, asgi=True)  # KREUZBERG_API_URL set: submit, fetch results, reconcile
if worker is not None or cloud is not None:
    # The route below is the handler of a webhook it receives itself; the inbox worker and the
    # reconciler go through the receiver (receiver.process), which runs its own handlers: the
    # same function, still once per job.
    receiver.on()(record)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The inbox worker (KREUZBERG_INBOX=1) and the reconciler (KREUZBERG_RECONCILE_INTERVAL) run with the app."""
    async with contextlib.AsyncExitStack() as stack:
        if worker is not None:
            await stack.enter_async_context(worker.lifespan(app))
        if cloud is not None:
            await stack.enter_async_context(cloud.asgi_lifespan())
        yield


app = FastAPI(title="Kreuzberg webhook receiver", lifespan=lifespan)
webhook.init_app(app)  # refused deliveries get the package's JSON answer
if worker is not None:
    # Inbox mode: the middleware writes each delivery to the inbox and answers 202 before the
    # route below is reached; the worker runs record() afterwards, with retries.
    app.add_middleware(KreuzbergWebhookMiddleware, receiver=receiver, path="/webhooks/kreuzberg")


@app.post("/webhooks/kreuzberg", **webhook.route_options())  # its body, header and answers in /docs
def kreuzberg(event: Annotated[Event, Depends(webhook)]) -> dict[str, str]:
    """Record the job; the text is fetched later with ``GET /v1/jobs/{job_id}``.

    A plain ``def``: FastAPI runs it in its thread pool, off the event loop.
    """
    record(event)
    return {"status": "processed"}


@app.post("/extract", status_code=202)
async def extract(request: Request) -> JSONResponse:
    """A multipart ``file``, submitted to Kreuzberg Cloud; answered 202 with its job ids.

    The form is read with the package's standard-library parser (no python-multipart needed).
    """
    answer: dict[str, Any]
    if cloud is None:
        status, answer = extract_unavailable()
    else:
        body = await request.body()
        status, answer = await run_in_threadpool(cloud.submit_form, request.headers.get("content-type", ""), body)
    return JSONResponse(answer, status)
