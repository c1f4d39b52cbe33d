"""A Flask receiver for Kreuzberg Cloud webhooks: a view decorator on the app's own route.

The view runs only for a verified delivery whose event no other request has
processed, and gets the typed event; forged, stale, oversized and duplicate
deliveries are answered before it runs.

Serve it from the repository root under gunicorn, several worker processes with
a few threads each (they share the SQLite replay store, so a retry that lands on
another worker is still deduplicated)::

    KREUZBERG_WEBHOOK_SECRET=... gunicorn --preload --pythonpath examples flask_app:app \\
        --workers 2 --threads 4 --bind 127.0.0.1:8000

``--preload`` imports the app once, before the workers fork, so a missing secret
stops gunicorn at once rather than making every worker fail to boot, over and over.

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
from flask import Flask

from kreuzberg_webhooks import DEFAULT_MAX_BODY_SIZE, Event, Receiver
from kreuzberg_webhooks.adapters.flask import webhook

receiver = Receiver(
    secret_from_env(),
    store=store_from_env(os.environ.get("KREUZBERG_STORE_URL") or "sqlite:///kreuzberg-webhooks.sqlite3"),
    max_body_size=int(os.environ.get("KREUZBERG_MAX_BODY_SIZE") or DEFAULT_MAX_BODY_SIZE),
)

app = Flask(__name__)


@app.post("/webhooks/kreuzberg")
@webhook(receiver)  # under the route decorator, so the route registers the verified view
def kreuzberg_webhook(event: Event) -> None:
    """Record the job; the text is fetched later with ``GET /v1/jobs/{job_id}``.

    Every event arrives here, including statuses Kreuzberg adds later. Returning
    ``None`` answers ``200 {"status": "processed"}``; an exception answers 500 and
    the sender's retry is processed.
    """
    record(event)


@app.get("/")
def index() -> str:
    return "Deliveries go to POST /webhooks/kreuzberg\n"
