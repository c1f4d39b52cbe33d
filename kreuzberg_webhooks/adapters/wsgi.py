"""Werkzeug-based WSGI middleware for any WSGI application (Bottle, Pyramid, Falcon, Flask …).

.. autoclass:: KreuzbergWebhookMiddleware

Needs the ``[wsgi]`` extra (werkzeug): ``pip install "kreuzberg-webhooks[wsgi]"``.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..lifecycle.exchange import Exchange
from ..lifecycle.flows import Delivery
from ..lifecycle.outcome import Outcome
from ..lifecycle.receiver import Receiver
from ._missing import require
from ._mount import Mode, check_mount

require("werkzeug", "wsgi")

from werkzeug.exceptions import ClientDisconnected  # noqa: E402
from werkzeug.http import HTTP_STATUS_CODES  # noqa: E402
from werkzeug.wsgi import get_input_stream  # noqa: E402

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["ENVIRON_KEY", "KreuzbergWebhookMiddleware", "environ_headers", "read_exchange"]

#: Where guard mode puts the typed event: ``environ[ENVIRON_KEY]``.
ENVIRON_KEY = "kreuzberg_webhooks.event"

_CHUNK = 64 * 1024


def environ_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request headers of a WSGI environ as a dict with lower-case names.

    The server has already joined a header sent on several lines with commas
    (PEP 3333 follows CGI), so two ``X-Webhook-Signature`` lines reach the core
    as one malformed value — a 401, the same answer every adapter gives.
    """
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _input(environ: WSGIEnvironment, limit: int) -> Iterator[bytes]:
    """The body's chunks, never asking for more than one byte past *limit* (that byte proves it too large)."""
    stream = get_input_stream(environ)
    size = min(_CHUNK, limit + 1)
    while chunk := stream.read(size):
        yield chunk


def read_exchange(exchange: Exchange, environ: WSGIEnvironment, limit: int) -> None:
    """Feed ``wsgi.input`` to *exchange* until the body is complete or the answer is decided.

    A declared ``Content-Length`` over the limit was refused before anything is
    read (the exchange saw the header). A chunked body with no
    ``Content-Length`` is read to its end when the server terminates the stream
    (``wsgi.input_terminated``: gunicorn, werkzeug's server); werkzeug's
    :func:`~werkzeug.wsgi.get_input_stream` gives an empty stream otherwise,
    rather than block on an endless one.
    """
    if exchange.reading:
        for chunk in _input(environ, limit):
            if not exchange.feed(chunk):
                break


def _respond(outcome: Outcome, start_response: StartResponse, exc_info: Any = None) -> list[bytes]:
    status = f"{outcome.status_code} {HTTP_STATUS_CODES.get(outcome.status_code, 'Unknown')}"
    headers = [*outcome.headers, ("content-length", str(len(outcome.body)))]
    if exc_info is None:
        start_response(status, headers)
    else:
        start_response(status, headers, exc_info)
    return [outcome.body]


class KreuzbergWebhookMiddleware:
    """Verify Kreuzberg Cloud webhook deliveries at one path of any WSGI application.

    Requests to other paths pass through untouched. At *path*, a request that
    is not ``POST`` gets ``405`` and a bad delivery (too large, forged, stale,
    malformed) gets its answer from the receiver's core before the application
    sees it — the same status and small JSON body as every other adapter.

    - ``mode="endpoint"`` answers deliveries itself and runs the receiver's
      handlers (``@receiver.on("job.completed")``); the application never
      sees them.
    - ``mode="guard"`` verifies and claims the delivery, then calls the
      application with ``wsgi.input`` replaced by the verified body
      (``CONTENT_LENGTH`` set to its length) and the typed event in
      ``environ["kreuzberg_webhooks.event"]``. The application's response
      status settles the claim once its response iterable is closed: a 2xx
      marks the event processed, anything else releases it so the sender's
      retry is processed. An exception from the application releases the
      claim too; raised before the response started, it is logged and
      answered ``500 handler_error``.

    The body is read in chunks and reading stops at the receiver's
    ``max_body_size``; a chunked body with no ``Content-Length`` is read when
    the server terminates the input stream (``wsgi.input_terminated``: gunicorn,
    werkzeug's server). A header line sent twice reaches the WSGI environ
    joined with a comma, which the core rejects as a malformed signature.

    .. admonition:: Security

        The receiver's secret is the only thing that makes a delivery
        trustworthy; in guard mode, trust ``environ["kreuzberg_webhooks.event"]``
        and never re-parse an event from the body. Mount this middleware
        *outside* anything that reads ``wsgi.input`` first, and make sure
        the path it guards is matched exactly as the application routes it
        (``PATH_INFO`` is compared as is, after ``SCRIPT_NAME`` is removed):
        a request the middleware does not recognise reaches the
        application unverified.

    :param app: The WSGI application to wrap.
    :param receiver: The :class:`~kreuzberg_webhooks.Receiver` that verifies
        deliveries, owns the replay store and (in endpoint mode) the handlers.
        Its store must be a sync store.
    :param path: The ``PATH_INFO`` deliveries arrive at.
    :param mode: ``"endpoint"`` to answer deliveries here, ``"guard"`` to
        verify them and pass them on to the application.

    .. code-block:: python

        from kreuzberg_webhooks import Receiver, SQLiteStore
        from kreuzberg_webhooks.adapters.wsgi import KreuzbergWebhookMiddleware

        receiver = Receiver(secret, store=SQLiteStore("webhooks.sqlite3"))

        @receiver.on("job.completed")
        def completed(event):
            fetch_text_later(event.job_id)

        # The middleware answers POST /webhooks/kreuzberg itself.
        app = KreuzbergWebhookMiddleware(app, receiver, path="/webhooks/kreuzberg")

        # Or: the application's own route handles it, reading
        # environ["kreuzberg_webhooks.event"].
        app = KreuzbergWebhookMiddleware(app, receiver, path="/webhooks/kreuzberg", mode="guard")
    """

    def __init__(
        self,
        app: WSGIApplication,
        receiver: Receiver,
        path: str = "/webhooks/kreuzberg",
        mode: Mode = "endpoint",
    ) -> None:
        check_mount(path, mode)
        receiver.require_sync()
        self.app = app
        self.receiver = receiver
        self.path = path
        self.mode = mode

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.path:
            return self.app(environ, start_response)
        headers = environ_headers(environ)
        exchange = self.receiver.exchange(environ.get("REQUEST_METHOD", ""), headers)
        try:
            read_exchange(exchange, environ, self.receiver.verifier.max_body_size)
        except ClientDisconnected as error:
            # The client went away mid-body; nobody is left to read the answer.
            return error(environ, start_response)
        if exchange.answer is not None:
            return _respond(exchange.answer, start_response)
        if self.mode == "endpoint":
            return _respond(self.receiver.handle(exchange.delivery, headers), start_response)
        body = exchange.body
        started = self.receiver.begin(body, headers)
        if isinstance(started, Outcome):
            return _respond(started, start_response)
        # The application reads the verified body again, as if nothing had read it.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["wsgi.input_terminated"] = True
        environ[ENVIRON_KEY] = started.event
        return self._guard(environ, start_response, started)

    def _guard(self, environ: WSGIEnvironment, start_response: StartResponse, delivery: Delivery) -> Iterable[bytes]:
        settlement = _Settlement(self.receiver, delivery)

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            settlement.status = _status_code(status)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        try:
            iterable = self.app(environ, capture)
        except Exception as error:
            started = settlement.status is not None
            answer = settlement.settle(error)
            assert answer is not None  # the core answers a raising application
            # If the application had started its response (and perhaps sent headers with
            # write()), exc_info lets the server decide: replace the headers or re-raise.
            return _respond(answer, start_response, sys.exc_info() if started else None)
        except BaseException:
            settlement.settle(cancelled=True)
            raise
        return _SettledOnClose(iterable, settlement)


def _status_code(status: str) -> int | None:
    code = status[:3]
    return int(code) if code.isdigit() else None


class _Settlement:
    """Settles one claimed delivery exactly once, by how the application ended."""

    __slots__ = ("delivery", "receiver", "settled", "status")

    def __init__(self, receiver: Receiver, delivery: Delivery) -> None:
        self.receiver = receiver
        self.delivery = delivery
        self.status: int | None = None
        self.settled = False

    def settle(self, error: BaseException | None = None, *, cancelled: bool = False) -> Outcome | None:
        if self.settled:
            return None
        self.settled = True
        return self.receiver.settle(self.delivery, self.status, error, cancelled=cancelled)


class _SettledOnClose:
    """The application's response iterable; settles the claim before the response's last bytes leave.

    Each chunk is passed on one step late: when the application's iterable
    ends, every line of its code has run and its status is final, so the
    claim is settled then, and only then does the last chunk go to the
    server. A retry that arrives the moment the answer is complete finds the
    event done; an application that fails while streaming (its work may
    happen between chunks) has its claim released, and the retry is
    processed. ``close()`` settles whatever is left (the server stopped early).
    """

    __slots__ = ("_iterable", "_settlement")

    def __init__(self, iterable: Iterable[bytes], settlement: _Settlement) -> None:
        self._iterable = iterable
        self._settlement = settlement

    def __iter__(self) -> Iterator[bytes]:
        held: bytes | None = None
        try:
            for chunk in self._iterable:
                if held is not None:
                    yield held
                held = chunk
        except Exception as error:
            self._settlement.settle(error)
            raise
        except BaseException:
            self._settlement.settle(cancelled=True)
            raise
        self._settlement.settle()
        if held is not None:
            yield held

    def close(self) -> None:
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        except Exception as error:
            self._settlement.settle(error)
            raise
        finally:
            self._settlement.settle()
