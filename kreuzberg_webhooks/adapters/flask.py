"""Flask: a decorator for your own webhook view, and an extension configured from ``app.config``.

The decorator goes *under* the route decorator, so the route registers the
verified view::

    from kreuzberg_webhooks.adapters.flask import webhook

    @app.post("/webhooks/kreuzberg")
    @webhook(receiver)
    def kreuzberg_webhook(event: JobEvent):
        record_job(event.job_id)
        return "", 204

The view runs only for a verified delivery whose event this request has
claimed, and gets the typed event as the keyword argument ``event`` (next to
any URL variables). Everything else — a forged, stale, malformed or oversized
delivery, a duplicate, one in flight, a store outage — is answered before the
view runs, with the same status and JSON body as every other adapter.

Or the extension, for application factories::

    webhooks = KreuzbergWebhooks()          # reads KREUZBERG_WEBHOOK_* from app.config

    @webhooks.on("job.completed")
    def completed(event): ...

    def create_app():
        app = Flask(__name__)
        app.config["KREUZBERG_WEBHOOK_SECRET"] = os.environ["KREUZBERG_WEBHOOK_SECRET"]
        app.config["KREUZBERG_WEBHOOK_URL"] = "/webhooks/kreuzberg"   # a ready endpoint
        webhooks.init_app(app)
        return app

Needs the ``[flask]`` extra: ``pip install "kreuzberg-webhooks[flask]"``.
"""

from __future__ import annotations

import difflib
import functools
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from ..exceptions import ConfigurationError
from ..lifecycle.exchange import Exchange
from ..lifecycle.flows import Delivery
from ..lifecycle.outcome import Outcome
from ..lifecycle.receiver import CATCH_ALL, Handler, Receiver, check_event_type
from ..settings import DEFAULTS, MISSING, receiver_from_settings
from ._missing import require

require("flask", "flask")

from flask import Blueprint, Flask, Request, Response, current_app, got_request_exception, request  # noqa: E402
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge  # noqa: E402
from werkzeug.wsgi import get_input_stream  # noqa: E402

__all__ = ["EXTENSION_KEY", "KreuzbergWebhooks", "outcome_response", "webhook"]

#: The extension's per-application state lives in ``app.extensions[EXTENSION_KEY]``.
EXTENSION_KEY = "kreuzberg_webhooks"

View = Callable[..., Any]
#: Added to the route's methods (Flask's ``required_methods``), so that a GET
#: reaches the decorated view and gets the contract's JSON 405, not Flask's HTML one.
_OTHER_METHODS = frozenset({"GET", "PUT", "PATCH", "DELETE", "OPTIONS"})


def outcome_response(outcome: Outcome) -> Response:
    """The core's :class:`~kreuzberg_webhooks.Outcome` as a response of the current app."""
    response: Response = current_app.response_class(
        outcome.body, status=outcome.status_code, headers=list(outcome.headers)
    )
    return response


def _get_data(req: Request, limit: int) -> bytes:
    # Read with get_data (cached: request.data and get_json() still work in the view)
    # under a per-request max_content_length of the limit plus one byte: werkzeug
    # stops there, also for a chunked body, and that one byte proves it too large.
    # Settable per request since Flask 3.1; it must be set before request.stream exists.
    req.max_content_length = limit + 1
    length = req.content_length
    if length is not None and length <= limit:
        # A declared length within the limit bounds the body already (the server stops
        # there, or werkzeug's LimitedStream does): the stream a plain view reads, not
        # one that reads on past the end to prove the limit (wsgi.input_terminated).
        req.stream = get_input_stream(req.environ, max_content_length=None)
    try:
        return req.get_data(cache=True)
    except RequestEntityTooLarge:
        return b"\0" * (limit + 1)  # werkzeug stopped past the limit: too large, whatever the rest holds


def _exchange(receiver: Receiver) -> Exchange:
    """The request at the webhook path, its body read under the limit (405 and 413 decided by the core)."""
    req: Request = request._get_current_object()  # type: ignore[attr-defined]  # one proxy look-up, not four
    exchange = receiver.exchange(req.method, _headers(req))
    if exchange.reading:
        exchange.feed(_get_data(req, receiver.verifier.max_body_size))
    return exchange


def _headers(req: Request) -> Mapping[str, str]:
    # werkzeug's EnvironHeaders as it is: a case-insensitive view of the WSGI
    # environ, nothing copied. The WSGI server has already joined a header sent
    # twice with a comma, which the core rejects as a malformed signature: every
    # adapter answers 401.
    # Not registered as a Mapping, but has the get() and items() the core uses.
    return cast("Mapping[str, str]", req.headers)


def _propagates(app: Flask) -> bool:
    propagate = app.config["PROPAGATE_EXCEPTIONS"]
    return bool(app.testing or app.debug) if propagate is None else bool(propagate)


def _run_view(receiver: Receiver, delivery: Delivery, view: View, args: Any, kwargs: Any) -> Response:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    event = delivery.event
    try:
        # ensure_sync runs an async view too (Flask's [async] extra).
        value = app.ensure_sync(view)(*args, event=event, **kwargs)
        response = outcome_response(Outcome.processed(event)) if value is None else app.make_response(value)
    except HTTPException as error:
        # abort(...) is the view's own answer: settle by its status and let Flask render it.
        status = error.response.status_code if error.response is not None else error.code or 500
        receiver.settle(delivery, status)
        raise
    except Exception as error:
        answer = receiver.settle(delivery, None, error)  # released: the sender retries, and the retry is processed
        if _propagates(app):
            raise  # testing or debug: Flask shows the traceback, as for any view
        # What Flask's handle_exception does for any view (the signal error trackers listen
        # to, the app's logger), with the core's answer, the same body as every adapter.
        got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=error)
        app.log_exception(sys.exc_info())
        assert answer is not None
        return outcome_response(answer)
    except BaseException:
        receiver.settle(delivery, None, cancelled=True)
        raise
    receiver.settle(delivery, response.status_code)
    return response


def _guard(view: View, receiver_for: Callable[[], Receiver]) -> View:
    @functools.wraps(view)
    def verified_view(*args: Any, **kwargs: Any) -> Response:
        receiver = receiver_for()
        exchange = _exchange(receiver)
        if exchange.answer is not None:
            return outcome_response(exchange.answer)
        started = receiver.begin(exchange.body, exchange.headers)
        if isinstance(started, Outcome):
            return outcome_response(started)
        return _run_view(receiver, started, view, args, kwargs)

    _route_every_method(verified_view)
    return verified_view


def _route_every_method(view: View) -> None:
    # Flask answers OPTIONS itself (200) and other methods with an HTML 405; routed
    # here instead, every method but POST gets the core's JSON 405, as in every adapter.
    view.required_methods = _OTHER_METHODS  # type: ignore[attr-defined]
    view.provide_automatic_options = False  # type: ignore[attr-defined]


def webhook(receiver: Receiver) -> Callable[[View], View]:
    """Decorate a Flask view so that it runs only for verified, not-yet-processed deliveries.

    Put it under the route decorator. The view gets the typed event as the
    keyword argument ``event``; its response status settles the claim (2xx
    marks the event processed, anything else releases it for the sender's
    retry). Returning ``None`` answers ``200 {"status": "processed"}``.
    ``abort(...)`` settles by its status; an exception releases the claim
    and is answered ``500 {"error": "handler_error"}`` after Flask's
    ``got_request_exception`` signal — or re-raised when the app propagates
    exceptions (testing, debug). Requests that are not ``POST`` get the JSON
    ``405``. *receiver*'s store must be a sync store.
    """

    receiver.require_sync()

    def decorate(view: View) -> View:
        _refuse_registered(view, sys._getframe(1))
        return _guard(view, lambda: receiver)

    return decorate


def _refuse_registered(view: View, frame: Any) -> None:
    """Refuse to wrap a view a route already registered as it is (``@webhook`` above ``@app.post``).

    The route decorator registers the function it gets and returns it unchanged,
    so ``@webhook`` above it wraps a function Flask already serves unverified.
    The applications and blueprints in the decorating code's scope (a module's
    ``app``, a factory's local one) are asked whether they route to *view*.
    """
    scopes = (frame.f_locals, frame.f_globals) if frame is not None else ()
    for namespace in scopes:
        for value in list(namespace.values()):
            if isinstance(value, Flask):
                registered = any(function is view for function in value.view_functions.values())
            elif isinstance(value, Blueprint):
                # A blueprint records each route as a deferred function whose closure holds the view.
                registered = any(
                    cell.cell_contents is view
                    for deferred in value.deferred_functions
                    for cell in (getattr(deferred, "__closure__", None) or ())
                    if _filled(cell)
                )
            else:
                continue
            if registered:
                raise ConfigurationError(
                    f"@webhook is above the route decorator of {getattr(view, '__name__', view)!r}: the route "
                    "already serves the view unverified. Put @webhook under the route decorator "
                    "(@app.post(...) first, then @webhook(receiver))"
                )


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:  # an empty cell
        return False
    return True


@dataclass(frozen=True)
class _State:
    """What the extension keeps for one application."""

    receiver: Receiver


def _receiver_from_config(config: Mapping[str, Any], options: Mapping[str, Any]) -> Receiver:
    """A receiver from keyword *options*, then ``app.config``, then the shared defaults (``settings.DEFAULTS``)."""

    def lookup(name: str) -> Any:
        value = config.get(f"KREUZBERG_WEBHOOK_{name}")
        if value is None and name == "SIGNATURE_HEADER":
            value = config.get("KREUZBERG_WEBHOOK_HEADER")  # the name 0.1 read
        return MISSING if value is None else value

    return receiver_from_settings(lookup, options, describe=lambda name: f"KREUZBERG_WEBHOOK_{name}")


#: The prefix of the extension's ``app.config`` keys, and the names it reads besides the shared settings.
_PREFIX = "KREUZBERG_WEBHOOK_"
_FLASK_NAMES = ("URL", "HEADER")


def _warn_unknown_keys(config: Mapping[str, Any]) -> None:
    known = [_PREFIX + name for name in (*DEFAULTS, *_FLASK_NAMES)]
    for key in config:
        if isinstance(key, str) and key.startswith(_PREFIX) and key not in known:
            guess = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            warnings.warn(
                f"app.config has an unknown key {key!r}{hint}; it is ignored. Known keys: {', '.join(known)}",
                UserWarning,
                stacklevel=3,
            )


class KreuzbergWebhooks:
    """The Flask extension: one receiver per application, configured from ``app.config``.

    :param app: An application to set up now; or call :meth:`init_app` later.
    :param receiver: A ready :class:`~kreuzberg_webhooks.Receiver` shared by every
        application; then ``app.config`` is read only for the URL.
    :param url: Register a ready endpoint at this path (overrides
        ``KREUZBERG_WEBHOOK_URL``); it dispatches to the handlers registered
        with :meth:`on`.
    :param receiver_options: Keyword options of :class:`~kreuzberg_webhooks.Receiver`
        (``secrets``, ``store`` — an object or a URL —, ``max_body_size``,
        ``clock`` …); they win over ``app.config``, which wins over the defaults.

    ``app.config`` keys (all optional but the secret):

    - ``KREUZBERG_WEBHOOK_SECRET`` — the secret; or ``KREUZBERG_WEBHOOK_SECRETS``,
      a list (any of them verifies: rotation) or a per-project resolver.
    - ``KREUZBERG_WEBHOOK_STORE`` — a store URL (``sqlite:///webhooks.sqlite3``,
      ``redis://…``) or a store object. Default ``memory://``: one process only;
      under several workers use SQLite or Redis.
    - ``KREUZBERG_WEBHOOK_URL`` — register the endpoint at this path.
    - ``KREUZBERG_WEBHOOK_<NAME>`` for every other name of the shared settings
      table (:mod:`kreuzberg_webhooks.settings`): ``SIGNATURE_HEADER`` (also read
      as ``HEADER``), ``MAX_BODY_SIZE``, ``MAX_AGE``, ``MAX_FUTURE``, ``LEASE``,
      ``RETENTION`` — the same names and defaults as Django's ``KREUZBERG_WEBHOOKS``.

    The extension never keeps the application: its state is in
    ``app.extensions["kreuzberg_webhooks"]`` and found through ``current_app``.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        receiver: Receiver | None = None,
        url: str | None = None,
        **receiver_options: Any,
    ) -> None:
        if receiver is not None and receiver_options:
            raise ConfigurationError("pass either a receiver or receiver options, not both")
        self._receiver = receiver
        self._options = receiver_options
        self._url = url
        # What on() registered: added to each application's receiver, the one registry.
        self._registrations: list[tuple[str, Handler]] = []
        self._built: list[Receiver] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build this application's receiver from its config and, if asked, register the endpoint.

        A ``KREUZBERG_WEBHOOK_*`` key that is no setting (a typo) is warned about:
        a misspelt store would otherwise fall back to the per-process default.
        """
        _warn_unknown_keys(app.config)
        if self._receiver is not None:
            receiver = self._receiver
        else:
            receiver = _receiver_from_config(app.config, self._options)
            for event_type, handler in self._registrations:
                receiver.add_handler(event_type, handler)
            self._built.append(receiver)
        receiver.require_sync()  # Flask calls the sync entry points
        app.extensions[EXTENSION_KEY] = _State(receiver)
        url = self._url if self._url is not None else app.config.get("KREUZBERG_WEBHOOK_URL")
        if url:
            app.add_url_rule(
                url,
                endpoint=EXTENSION_KEY,
                view_func=self._endpoint,
                methods=["POST", *_OTHER_METHODS],
            )

    def receiver_for(self, app: Flask | None = None) -> Receiver:
        """The receiver of *app* (default: the current application)."""
        target = app if app is not None else current_app
        state = target.extensions.get(EXTENSION_KEY)
        if not isinstance(state, _State):
            raise RuntimeError("KreuzbergWebhooks.init_app(app) has not been called for this application")
        return state.receiver

    def on(self, event_type: str = CATCH_ALL) -> Callable[[Handler], Handler]:
        """Register a handler for the endpoint, like :meth:`Receiver.on`; for every application."""
        if self._receiver is not None:
            return self._receiver.on(event_type)
        check_event_type(event_type)

        def register(handler: Handler) -> Handler:
            self._registrations.append((event_type, handler))
            for receiver in self._built:
                receiver.add_handler(event_type, handler)
            return handler

        return register

    def verified(self, view: View) -> View:
        """Like :func:`webhook`, with the current application's receiver: ``@webhooks.verified``."""
        _refuse_registered(view, sys._getframe(1))
        return _guard(view, self.receiver_for)

    def _endpoint(self) -> Response:
        receiver = self.receiver_for()
        exchange = _exchange(receiver)
        if exchange.answer is not None:
            return outcome_response(exchange.answer)
        return outcome_response(receiver.handle(exchange.delivery, exchange.headers))
