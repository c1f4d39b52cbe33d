"""A framework-free WSGI receiver for Kreuzberg Cloud webhooks, behind the werkzeug middleware.

The same middleware wraps any WSGI application (Bottle, Pyramid, Falcon …). In
``guard`` mode (the default here) it verifies and claims each delivery, then
calls the application with the body replayed and the typed event in
``environ["kreuzberg_webhooks.event"]``; the application's status settles the
claim. In ``endpoint`` mode it answers deliveries itself and runs the
receiver's handlers.

Serve it from the repository root under gunicorn, several worker processes with
a few threads each (they share the SQLite replay store)::

    KREUZBERG_WEBHOOK_SECRET=... gunicorn --preload --pythonpath examples wsgi_app:app \\
        --workers 2 --threads 4 --bind 127.0.0.1:8000

``--preload`` imports the app once, before the workers fork, so a missing secret
stops gunicorn at once rather than making every worker fail to boot, over and over.

Environment: the examples' common variables, listed in ``_shared.py`` —
``KREUZBERG_WEBHOOK_SECRET`` (required), ``KREUZBERG_EVENTS_LOG``,
``KREUZBERG_STORE_URL``, ``KREUZBERG_REDIS_URL``, ``KREUZBERG_MAX_BODY_SIZE``.
Also ``KREUZBERG_WSGI_MODE``: ``guard`` (default) or ``endpoint``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from _shared import receiver_from_env, record, worker_from_env

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.adapters.wsgi import ENVIRON_KEY, KreuzbergWebhookMiddleware

PATH = "/webhooks/kreuzberg"

receiver = receiver_from_env()


@receiver.on()  # endpoint mode: every event, including statuses Kreuzberg adds later
def record_job(event: Event) -> None:
    """Record the job; the text is fetched later with ``GET /v1/jobs/{job_id}``."""
    record(event)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The application's own routes; in guard mode, its webhook route gets only verified deliveries."""
    if environ["PATH_INFO"] == PATH and ENVIRON_KEY in environ:
        record(environ[ENVIRON_KEY])  # trust the verified event, never re-parse the body
        body = json.dumps({"status": "processed"}, separators=(",", ":")).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Deliveries go to POST /webhooks/kreuzberg\n"]


worker = worker_from_env(receiver)
# KREUZBERG_INBOX=1 is endpoint mode: deliveries are queued in the inbox and answered 202, and
# the worker thread (one per process) runs record_job afterwards.
endpoint_mode = os.environ.get("KREUZBERG_WSGI_MODE") == "endpoint" or worker is not None
if worker is not None:
    worker.start()
app = KreuzbergWebhookMiddleware(application, receiver, path=PATH, mode="endpoint" if endpoint_mode else "guard")
