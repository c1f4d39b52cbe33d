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
Also ``KREUZBERG_WSGI_MODE``: ``guard`` (default) or ``endpoint``. With ``KREUZBERG_API_URL`` set,
``POST /extract`` submits documents and the app fetches and reconciles (see ``_shared.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from _shared import (
    cloud_from_env,
    extract_unavailable,
    max_body_size_from_env,
    receiver_from_env,
    record,
    worker_from_env,
)

from kreuzberg_webhooks import Event
from kreuzberg_webhooks.adapters.wsgi import ENVIRON_KEY, KreuzbergWebhookMiddleware

PATH = "/webhooks/kreuzberg"

receiver = receiver_from_env()


@receiver.on()  # endpoint mode: every event, including statuses Kreuzberg adds later
def record_job(event: Event) -> None:
    """Record the job and the length of its text (fetched unless the delivery carries it)."""
    record(event)


def _json(start_response: Callable[..., Any], status: int, answer: dict[str, Any]) -> list[bytes]:
    body = json.dumps(answer, separators=(",", ":")).encode()
    reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 501: "Not Implemented"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _text(start_response: Callable[..., Any], status: str, text: bytes, *headers: tuple[str, str]) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(text))), *headers])
    return [text]


def extract(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``POST /extract`` with a multipart ``file``: submitted to Kreuzberg Cloud, answered 202 with its job ids."""
    if cloud is None:
        return _json(start_response, *extract_unavailable())
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > max_body_size_from_env():
        return _json(start_response, 400, {"error": "the upload is too large"})
    body = environ["wsgi.input"].read(length)
    return _json(start_response, *cloud.submit_form(environ.get("CONTENT_TYPE", ""), body))


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The application's own routes; in guard mode, its webhook route gets only verified deliveries."""
    if cloud is not None:
        cloud.ensure_reconciling()  # this worker's reconcile thread, from its first request on
    path = environ["PATH_INFO"]
    if path == "/extract" and environ["REQUEST_METHOD"] == "POST":
        return extract(environ, start_response)
    if path == PATH and ENVIRON_KEY in environ:
        record(environ[ENVIRON_KEY])  # trust the verified event, never re-parse the body
        body = json.dumps({"status": "processed"}, separators=(",", ":")).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/":
        if environ["REQUEST_METHOD"] in ("GET", "HEAD"):
            return _text(start_response, "200 OK", b"Deliveries go to POST /webhooks/kreuzberg\n")
        return _text(start_response, "405 Method Not Allowed", b"Method Not Allowed\n", ("Allow", "GET, HEAD"))
    # Never a 2xx at a path this app does not serve: a sender (or send-test) with a
    # mistyped URL must see its deliveries refused, not acknowledged and lost.
    return _text(start_response, "404 Not Found", b"Not Found\n")


worker = worker_from_env(receiver)
cloud = cloud_from_env(receiver)  # KREUZBERG_API_URL set: submit, fetch results, reconcile
# KREUZBERG_INBOX=1 is endpoint mode: deliveries are queued in the inbox and answered 202, and
# the worker thread (one per process) runs record_job afterwards.
endpoint_mode = os.environ.get("KREUZBERG_WSGI_MODE") == "endpoint" or worker is not None
if worker is not None:
    worker.start()
app = KreuzbergWebhookMiddleware(application, receiver, path=PATH, mode="endpoint" if endpoint_mode else "guard")
