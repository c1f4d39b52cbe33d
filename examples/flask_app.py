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

Environment: the examples' common variables, listed in ``_shared.py`` —
``KREUZBERG_WEBHOOK_SECRET`` (required), ``KREUZBERG_EVENTS_LOG``,
``KREUZBERG_STORE_URL``, ``KREUZBERG_REDIS_URL``, ``KREUZBERG_MAX_BODY_SIZE``.
With ``KREUZBERG_API_URL`` set, ``POST /extract`` submits documents and the app fetches and
reconciles (``KREUZBERG_API_KEY``, ``KREUZBERG_WEBHOOK_URL``, ``KREUZBERG_RECONCILE_INTERVAL``,
``KREUZBERG_RECONCILE_AFTER``; see ``_shared.py``).
"""

from __future__ import annotations

from typing import Any

from _shared import cloud_from_env, extract_unavailable, receiver_from_env, record, worker_from_env
from flask import Flask, request

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.adapters.flask import webhook
from kreuzberg_webhooks.adapters.wsgi import KreuzbergWebhookMiddleware

receiver = receiver_from_env()

app = Flask(__name__)

worker = worker_from_env(receiver)
cloud = cloud_from_env(receiver)  # KREUZBERG_API_URL set: submit, fetch results, reconcile
if worker is not None or cloud is not None:
    # The view below handles the webhooks it receives itself; the inbox worker and the reconciler
    # go through the receiver (receiver.process), which runs its own handlers: the same function,
    # still once per job.
    receiver.on()(record)
if worker is not None:
    # KREUZBERG_INBOX=1: the middleware writes each delivery to the inbox and answers 202 before
    # the view below is reached; the worker thread (one per process) runs record() afterwards.
    app.wsgi_app = KreuzbergWebhookMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, receiver, path="/webhooks/kreuzberg", mode="endpoint"
    )
    worker.init_app(app)


@app.post("/webhooks/kreuzberg")
@webhook(receiver)  # under the route decorator, so the route registers the verified view
def kreuzberg_webhook(event: Event) -> None:
    """Record the job; the text is fetched later with ``GET /v1/jobs/{job_id}``.

    Every event arrives here, including statuses Kreuzberg adds later. Returning
    ``None`` answers ``200 {"status": "processed"}``; an exception answers 500 and
    the sender's retry is processed.
    """
    record(event)


@app.before_request
def reconcile_in_this_worker() -> None:
    """With ``KREUZBERG_RECONCILE_INTERVAL`` set, this worker's reconcile thread starts with its first request."""
    if cloud is not None:
        cloud.ensure_reconciling()


@app.post("/extract")
def extract() -> tuple[dict[str, Any], int]:
    """A multipart ``file``, submitted to Kreuzberg Cloud; answered 202 with its job ids.

    With ``KREUZBERG_RECONCILE_INTERVAL`` set, the first submission starts this worker's reconcile thread.
    """
    if cloud is None:
        status, answer = extract_unavailable()
        return answer, status
    upload = request.files.get("file")
    if upload is None:
        return {"error": "the form has no 'file' field"}, 400
    status, answer = cloud.submit(upload.filename or "upload", upload.read(), upload.mimetype or "")
    return answer, status


@app.get("/")
def index() -> str:
    return "Deliveries go to POST /webhooks/kreuzberg\n"
