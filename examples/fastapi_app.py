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
"""

from __future__ import annotations

from typing import Annotated

from _shared import receiver_from_env, record, worker_from_env
from fastapi import Depends, FastAPI

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware
from kreuzberg_webhooks.adapters.fastapi import KreuzbergWebhook

receiver = receiver_from_env(asynchronous=True)
webhook = KreuzbergWebhook(receiver)

worker = worker_from_env(receiver)  # KREUZBERG_INBOX=1: an inbox worker task runs with the app

app = FastAPI(title="Kreuzberg webhook receiver", lifespan=worker.lifespan if worker is not None else None)
webhook.init_app(app)  # refused deliveries get the package's JSON answer
if worker is not None:
    # Inbox mode: the middleware writes each delivery to the inbox and answers 202 before the
    # route below is reached; the worker runs record() afterwards, with retries.
    receiver.on()(record)
    app.add_middleware(KreuzbergWebhookMiddleware, receiver=receiver, path="/webhooks/kreuzberg")


@app.post("/webhooks/kreuzberg")
def kreuzberg(event: Annotated[Event, Depends(webhook)]) -> dict[str, str]:
    """Record the job; the text is fetched later with ``GET /v1/jobs/{job_id}``.

    A plain ``def``: FastAPI runs it in its thread pool, off the event loop.
    """
    record(event)
    return {"status": "processed"}
