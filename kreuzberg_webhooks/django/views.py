"""Class-based views that receive deliveries: a sync and an async flavour.

Both read the raw body themselves, chunk by chunk, so the receiver's
``MAX_BODY_SIZE`` answers 413 while reading. (Django's own ``request.body``
would apply ``DATA_UPLOAD_MAX_MEMORY_SIZE`` instead and answer 400, which the
sender takes as permanent: a large job document would be lost.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from ..adapters._background import Outliving, detach
from ..events import Event
from ..lifecycle.exchange import Exchange
from ..lifecycle.flows import Delivery
from ..lifecycle.outcome import Outcome
from ..lifecycle.receiver import Receiver
from ..protocol.headers import HeaderLookup
from .conf import get_receiver, get_setting
from .signals import webhook_received

__all__ = [
    "AsyncKreuzbergWebhookMixin",
    "AsyncKreuzbergWebhookView",
    "KreuzbergWebhookMixin",
    "KreuzbergWebhookView",
    "MetaHeaders",
    "outcome_response",
    "read_exchange",
    "webhook_view",
]

_CHUNK = 64 * 1024


def _stream(request: HttpRequest) -> Any:
    meta = request.META
    if not meta.get("CONTENT_LENGTH") and meta.get("wsgi.input_terminated") and "wsgi.input" in meta:
        # Django's WSGIRequest reads nothing without a Content-Length, so a chunked
        # body would look empty. A server that sets wsgi.input_terminated (gunicorn
        # does) ends wsgi.input where the body ends: read it directly.
        return meta["wsgi.input"]
    return request


class MetaHeaders(HeaderLookup):
    """The request headers in ``request.META``, as a read-only, case-insensitive mapping.

    What ``request.headers`` gives, without building it: Django converts every
    ``META`` key to a header name when it builds ``request.headers``, while a
    delivery needs two headers. A look-up reads the one key it needs, as
    ``request.headers`` does (``X-Webhook-Signature`` is ``HTTP_X_WEBHOOK_SIGNATURE``;
    ``Content-Type`` and ``Content-Length`` have no prefix); iterating yields
    lower-case names.
    """

    __slots__ = ("_meta",)

    def __init__(self, meta: Mapping[str, Any]) -> None:
        self._meta = meta

    def get(self, key: str, default: Any = None) -> Any:
        """The header's value, or *default*: Mapping.get without a KeyError."""
        if not isinstance(key, str) or not key.isascii():
            return default
        name = key.upper().replace("-", "_")
        value = self._meta.get(name) if name in _UNPREFIXED else None
        if value is None:
            value = self._meta.get("HTTP_" + name)
        return default if value is None else value

    def _names(self) -> list[str]:
        names = dict.fromkeys(name for name in map(_header_name, self._meta) if name is not None)
        return [name for name in names if self.get(name) is not None]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


_UNPREFIXED = frozenset({"CONTENT_TYPE", "CONTENT_LENGTH"})


def _header_name(key: str) -> str | None:
    if key.startswith("HTTP_"):
        key = key[5:]
    elif key not in _UNPREFIXED:
        return None
    return key.replace("_", "-").lower()


def read_exchange(request: HttpRequest, receiver: Receiver) -> Exchange:
    """The request at the webhook path, its body read in chunks under the limit (405 and 413 by the core).

    Afterwards ``request.body`` returns the same bytes.
    """
    exchange = receiver.exchange(request.method or "", MetaHeaders(request.META))
    if exchange.reading:
        stream = _stream(request)
        while chunk := stream.read(_CHUNK):
            if not exchange.feed(chunk):
                return exchange
        request._body = exchange.body
    return exchange


def outcome_response(outcome: Outcome) -> HttpResponse:
    """The Django response for a core :class:`Outcome`."""
    response = HttpResponse(outcome.body, status=outcome.status_code)
    for name, value in outcome.headers:
        response[name] = value
    return response


def _exempt(view: Callable[..., Any]) -> Callable[..., Any]:
    """No CSRF token and no login: the sender has neither; the signature is the authentication."""
    view = csrf_exempt(view)
    try:
        from django.contrib.auth.decorators import login_not_required  # Django 5.1+
    except ImportError:  # older Django has no LoginRequiredMiddleware to be exempt from
        return view
    exempted: Callable[..., Any] = login_not_required(view)
    return exempted


class _WebhookViewBase:
    """What both flavours share: configuration, method handling, exemptions."""

    #: The receiver to use; ``None``: the one ``KREUZBERG_WEBHOOKS`` configures.
    #: Set it on a subclass or pass it to ``as_view(receiver=...)``.
    receiver: Receiver | None = None
    #: Deliveries are POST only; anything else (OPTIONS and HEAD too) is 405.
    http_method_names: ClassVar[list[str]] = ["post"]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        """The view function, exempt from CSRF and from ``LoginRequiredMiddleware``."""
        return _exempt(super().as_view(**initkwargs))  # type: ignore[misc]

    def get_receiver(self) -> Receiver:
        """The receiver this view delivers to."""
        return self.receiver if self.receiver is not None else get_receiver()


class KreuzbergWebhookMixin(_WebhookViewBase):
    """Receive deliveries in a synchronous class-based view.

    ::

        class JobWebhook(KreuzbergWebhookMixin, View):
            def handle_event(self, request, event):
                Job.objects.filter(pk=event.job_id).update(status=event.status)

    ``handle_event`` runs only for a verified delivery this request has
    claimed; everything else (401, 400, 413, a duplicate, 429) is answered
    before it. Return ``None`` for the standard 200, or a response of your
    own: a 2xx marks the event processed, anything else releases the claim so
    the sender's retry runs it again. If it raises, the answer is 500 and the
    claim is released.

    In inbox mode (``KREUZBERG_WEBHOOKS["INBOX"]``) the view answers ``202``
    and the inbox worker runs ``handle_event`` later, with ``request=None``
    (:mod:`~kreuzberg_webhooks.django.inbox_mode`); so does the reconciler for a
    job whose webhook never came (:class:`~kreuzberg_webhooks.django.conf.ConfiguredReceiver`).
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Verify, claim, run :meth:`handle_event`, then settle the claim."""
        receiver = self.get_receiver()
        exchange = read_exchange(request, receiver)
        if exchange.answer is not None:
            return outcome_response(exchange.answer)
        if receiver.inbox is not None:  # inbox mode: written durably, answered 202; a worker runs handle_event
            return outcome_response(receiver.handle(exchange.delivery, exchange.headers))
        started = receiver.begin(exchange.body, exchange.headers)
        if isinstance(started, Outcome):
            return outcome_response(started)
        try:
            response = self.handle_event(request, started.event)
        except Exception as error:
            answer = receiver.settle(started, None, error)
            assert answer is not None  # the core answers a raising view
            return outcome_response(answer)
        except BaseException:
            receiver.settle(started, None, cancelled=True)
            raise
        if response is None:
            response = outcome_response(Outcome.processed(started.event))
        receiver.settle(started, response.status_code)
        return response

    def handle_event(self, request: HttpRequest, event: Event) -> HttpResponse | None:
        """Process one event. The default runs the receiver's handlers, then sends
        :data:`~kreuzberg_webhooks.django.signals.webhook_received`."""
        self.get_receiver().dispatch(event)
        webhook_received.send(sender=type(self), event=event, request=request)
        return None

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """405 with the core's JSON body and ``Allow: POST`` (never a redirect)."""
        return outcome_response(_refused_method(self.get_receiver(), request))


def _refused_method(receiver: Receiver, request: HttpRequest) -> Outcome:
    answer = receiver.exchange(request.method or "", MetaHeaders(request.META)).answer
    assert answer is not None  # a method other than POST is always answered
    return answer


class AsyncKreuzbergWebhookMixin(_WebhookViewBase):
    """The async flavour of :class:`KreuzbergWebhookMixin`, for ASGI servers.

    ``handle_event`` is a coroutine. The store is called through the receiver's
    async path (a sync store in a worker thread); sync handlers run in a worker
    thread too.
    """

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Verify, claim, await :meth:`handle_event`, then settle the claim."""
        receiver = self.get_receiver()
        # Under ASGI Django has already spooled the body (to memory, then to a
        # temporary file): reading it here does not wait on the network.
        exchange = read_exchange(request, receiver)
        if exchange.answer is not None:
            return outcome_response(exchange.answer)
        if receiver.inbox is not None:  # inbox mode, as in the sync view
            return outcome_response(await receiver.handle_async(exchange.delivery, exchange.headers))
        started = await receiver.begin_async(exchange.body, exchange.headers)
        if isinstance(started, Outcome):
            return outcome_response(started)
        # handle_event runs in a task of its own: if the request is cancelled (Django does when
        # the client goes away, a timeout middleware does) while its code runs in a thread, it
        # is left to finish and its end settles the claim, as in the request.
        running = Outliving(self.handle_event(request, started.event))
        try:
            await running.wait()
        except asyncio.CancelledError:
            detach(_settle_when_done(receiver, started, running))
            raise
        error = running.error
        if isinstance(error, Exception):
            answer = await receiver.settle_async(started, None, error)
            assert answer is not None  # the core answers a raising view
            return outcome_response(answer)
        if error is not None:  # cancelled itself, or a BaseException: its code may still run
            await receiver.settle_async(started, None, cancelled=True)
            raise error
        response = running.value
        if response is None:
            response = outcome_response(Outcome.processed(started.event))
        await receiver.settle_async(started, response.status_code)
        return response

    async def handle_event(self, request: HttpRequest, event: Event) -> HttpResponse | None:
        """Process one event. The default runs the receiver's handlers, then sends
        :data:`~kreuzberg_webhooks.django.signals.webhook_received`."""
        await self.get_receiver().dispatch_async(event)
        asend = getattr(webhook_received, "asend", None)
        if asend is not None:  # Django 5.0+: async receivers are awaited, sync ones run in a thread
            await asend(sender=type(self), event=event, request=request)
        else:
            await sync_to_async(webhook_received.send)(sender=type(self), event=event, request=request)
        return None

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """405 with the core's JSON body and ``Allow: POST`` (never a redirect)."""
        response = outcome_response(_refused_method(self.get_receiver(), request))

        async def answer() -> HttpResponse:
            return response

        return answer()


async def _settle_when_done(receiver: Receiver, started: Delivery, running: Outliving[Any]) -> None:
    """Settle a cancelled request's claim by how its ``handle_event`` ends."""
    await running.ended()
    error = running.error
    if isinstance(error, Exception):
        await receiver.settle_async(started, None, error)
    elif error is not None:  # cancelled itself: the lease decides
        await receiver.settle_async(started, None, cancelled=True)
    else:
        response = running.value
        await receiver.settle_async(started, 200 if response is None else response.status_code)


class KreuzbergWebhookView(KreuzbergWebhookMixin, View):  # type: ignore[misc]
    """The ready sync view: the receiver's handlers, then the ``webhook_received`` signal."""


class AsyncKreuzbergWebhookView(AsyncKreuzbergWebhookMixin, View):  # type: ignore[misc]
    """The ready async view: the receiver's handlers, then the ``webhook_received`` signal."""


def webhook_view(**initkwargs: Any) -> Callable[..., Any]:
    """The ready view, async when ``KREUZBERG_WEBHOOKS["ASYNC"]`` is true (serve it
    under an ASGI server), sync otherwise. The URLconf include mounts this."""
    view_class: Any = AsyncKreuzbergWebhookView if get_setting("ASYNC") else KreuzbergWebhookView
    view: Callable[..., Any] = view_class.as_view(**initkwargs)
    return view
