"""A FastAPI receiver for Kreuzberg Cloud webhooks: the route gets the verified, typed event.

The ``KreuzbergWebhook`` dependency verifies the signature and the timestamp and
claims the event before the route runs; forged, stale, duplicate and in-flight
deliveries are answered without running it. When the route returns, the event
is marked done; when it raises, the claim is released and the sender's retry is
processed.

Serve it from the repository root with several workers (they share the SQLite
replay store)::

    KREUZBERG_WEBHOOK_SECRET=... uvicorn --app-dir examples fastapi_app:app --workers 4 --host 127.0.0.1 --port 8000

Environment: the same as ``starlette_app.py`` — ``KREUZBERG_WEBHOOK_SECRET``
(required), ``KREUZBERG_EVENTS_LOG``, ``KREUZBERG_STORE_URL`` (default
``sqlite:///kreuzberg-webhooks.sqlite3``), ``KREUZBERG_REDIS_URL``,
``KREUZBERG_MAX_BODY_SIZE``.
"""

from __future__ import annotations

import os
from typing import Annotated

from _shared import record, secret_from_env, store_from_env
from fastapi import Depends, FastAPI

from kreuzberg_webhooks import DEFAULT_MAX_BODY_SIZE, Event, Receiver
from kreuzberg_webhooks.adapters.fastapi import KreuzbergWebhook

receiver = Receiver(
    secret_from_env(),
    store=store_from_env(
        os.environ.get("KREUZBERG_STORE_URL") or "sqlite:///kreuzberg-webhooks.sqlite3", asynchronous=True
    ),
    max_body_size=int(os.environ.get("KREUZBERG_MAX_BODY_SIZE") or DEFAULT_MAX_BODY_SIZE),
)
webhook = KreuzbergWebhook(receiver)

app = FastAPI(title="Kreuzberg webhook receiver")
webhook.init_app(app)  # refused deliveries get the package's JSON answer


@app.post("/webhooks/kreuzberg")
def kreuzberg(event: Annotated[Event, Depends(webhook)]) -> dict[str, str]:
    """Record the job; the text is fetched later with ``GET /v1/jobs/{job_id}``.

    A plain ``def``: FastAPI runs it in its thread pool, off the event loop.
    """
    record(event)
    return {"status": "processed"}
