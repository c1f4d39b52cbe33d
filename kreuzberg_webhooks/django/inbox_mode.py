"""Inbox mode: the webhook view's ``handle_event`` runs in the worker, not in the request.

With ``KREUZBERG_WEBHOOKS["INBOX"]`` set, a webhook view writes each verified
delivery to the inbox and answers ``202``; an inbox worker runs it later. What
the worker runs is what the request would have run: the ``handle_event`` of the
webhook view mounted in the URLconf (the ready view's runs the ``on()``
handlers, then sends ``webhook_received``), with ``request=None`` — the request
was answered long ago. :func:`worker_receiver` is the receiver the worker runs
deliveries through; the system checks (:mod:`.checks`) refuse the URLconfs in
which the worker cannot tell which ``handle_event`` to run. The configured
receiver runs every trusted event (a job the reconciler fetched) the same way,
through :func:`trusted_receiver`
(:class:`~kreuzberg_webhooks.django.conf.ConfiguredReceiver`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..events import Event
from ..lifecycle.outcome import succeeded
from ..lifecycle.receiver import CATCH_ALL, Receiver
from .conf import get_receiver, twin
from .views import AsyncKreuzbergWebhookMixin, KreuzbergWebhookMixin, KreuzbergWebhookView, _WebhookViewBase

__all__ = ["MountedView", "inbox_view", "mounted_views", "run_handle_event", "trusted_receiver", "worker_receiver"]

logger = logging.getLogger("kreuzberg_webhooks.django")

_DEFAULTS = (KreuzbergWebhookMixin.handle_event, AsyncKreuzbergWebhookMixin.handle_event)


@dataclass(frozen=True)
class MountedView:
    """A webhook view found in the URLconf: its class, its ``as_view()`` keywords, and its route."""

    view_class: type[_WebhookViewBase]
    initkwargs: dict[str, Any]
    route: str

    @property
    def own_receiver(self) -> Receiver | None:
        """The receiver given to the view itself (``as_view(receiver=…)`` or the class attribute), if any."""
        receiver: Receiver | None = self.initkwargs.get("receiver", self.view_class.receiver)
        return receiver

    @property
    def handle_event(self) -> Callable[..., Any]:
        """The class's ``handle_event`` function; the two ready ones count as one."""
        function: Callable[..., Any] = self.view_class.handle_event  # type: ignore[attr-defined]
        return _DEFAULTS[0] if function in _DEFAULTS else function

    @property
    def ready_handle_event(self) -> bool:
        """Whether ``handle_event`` is the ready one (the ``on()`` handlers, then the signal)."""
        return self.handle_event is _DEFAULTS[0]


def mounted_views(urlconf: str | None = None) -> list[MountedView]:
    """Every webhook view (a subclass of either mixin) the URLconf routes to, in URLconf order."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: list[MountedView] = []

    def walk(patterns: Any, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                view_class = getattr(pattern.callback, "view_class", None)
                if isinstance(view_class, type) and issubclass(view_class, _WebhookViewBase):
                    initkwargs = dict(getattr(pattern.callback, "view_initkwargs", {}))
                    found.append(MountedView(view_class, initkwargs, prefix + str(pattern.pattern)))

    walk(get_resolver(urlconf).url_patterns, "")
    return found


def _for_configured(view: MountedView, configured: Receiver | None) -> bool:
    own = view.own_receiver
    return own is None or own is configured


def inbox_view(urlconf: str | None = None, *, configured: Receiver | None = None) -> MountedView:
    """The view whose ``handle_event`` the worker runs for the configured receiver's deliveries.

    The one mounted for the configured receiver (several that share one
    ``handle_event`` count as one); the ready view when none is mounted.
    Raises :class:`ImproperlyConfigured` when the mounted views differ.
    """
    views = [view for view in mounted_views(urlconf) if _for_configured(view, configured)]
    distinct = {view.handle_event: view for view in reversed(views)}  # the first of each kind wins
    if len(distinct) > 1:
        routes = ", ".join(sorted({view.route for view in views}))
        raise ImproperlyConfigured(
            "several webhook views with different handle_event methods share the inbox "
            f"(routes {routes}): a worker cannot tell which one a queued delivery came in through"
        )
    if views:
        return distinct[views[0].handle_event]
    return MountedView(KreuzbergWebhookView, {}, "")


def run_handle_event(view: MountedView) -> Callable[[Event], Any]:
    """A receiver handler that runs *view*'s ``handle_event(None, event)``, as the request would have.

    A response of its own that is not a 2xx fails the attempt (the worker tries
    again), as it releases the claim in the request.
    """

    def instance() -> Any:
        handler: Any = view.view_class(**view.initkwargs)
        handler.request, handler.args, handler.kwargs = None, (), {}
        return handler

    def check(response: Any) -> None:
        status = getattr(response, "status_code", None)
        if response is not None and not succeeded(status):
            raise RuntimeError(f"{view.view_class.__qualname__}.handle_event answered {status}")

    if issubclass(view.view_class, AsyncKreuzbergWebhookMixin):

        async def run_async(event: Event) -> None:
            check(await instance().handle_event(None, event))

        return run_async

    def run(event: Event) -> None:
        check(instance().handle_event(None, event))

    return run


_lock = threading.Lock()
#: (URL resolver, configured receiver, the worker's receiver or why there is none, the trusted events' receiver)
_built: tuple[Any, Receiver, Receiver | str, Receiver] | None = None


def _running(configured: Receiver, view: MountedView) -> Receiver:
    """A twin of *configured* whose one handler is *view*'s ``handle_event``."""
    receiver = twin(configured)
    receiver.add_handler(CATCH_ALL, run_handle_event(view))
    return receiver


def _receivers(configured: Receiver | None) -> tuple[Receiver | str, Receiver]:
    """The worker's receiver (or why the worker has none) and the trusted events' receiver, built
    once per configured receiver and URLconf."""
    global _built
    from django.urls import get_resolver

    if configured is None:
        configured = get_receiver()
    resolver = get_resolver()
    built = _built
    if built is not None and built[0] is resolver and built[1] is configured:
        return built[2], built[3]
    worker: Receiver | str
    try:
        worker = trusted = _running(configured, inbox_view(configured=configured))
    except ImproperlyConfigured as error:
        # Allowed outside inbox mode (E008 refuses it there), but an event no request brought came in
        # through none of the views: it runs the ready view's handle_event, the receiver's own way.
        worker = str(error)
        trusted = _running(configured, MountedView(KreuzbergWebhookView, {}, ""))
        logger.warning(
            "%s; a job the reconciler brings runs the ready view's handle_event "
            "(the on() handlers, then webhook_received)",
            error,
        )
    with _lock:
        _built = (resolver, configured, worker, trusted)
    return worker, trusted


def worker_receiver(configured: Receiver | None = None) -> Receiver:
    """The receiver an inbox worker runs the *configured* receiver's (default:
    :func:`get_receiver`) deliveries through.

    It shares the configured receiver's verifier, replay store, lease,
    retention, inbox and observers, so a delivery is claimed under the same key
    whichever runs it; its one handler is the mounted view's ``handle_event``
    (:func:`inbox_view`, which raises :class:`ImproperlyConfigured` when the mounted
    views differ). Built again when the settings or the URLconf change. The Django
    workers (the embedded one, ``manage.py kreuzberg_inbox worker``) use it; give it to
    a worker of your own (``InboxWorker(worker_receiver())``, or bind a task-queue inbox
    to it).
    """
    worker, _ = _receivers(configured)
    if isinstance(worker, str):
        raise ImproperlyConfigured(worker)
    return worker


def trusted_receiver(configured: Receiver | None = None) -> Receiver:
    """The receiver a trusted event of the *configured* receiver (default: :func:`get_receiver`)
    runs through: a job the reconciler fetched because its webhook never came.

    The worker's receiver (:func:`worker_receiver`), so the event runs as a webhook at the mounted
    view runs: the ready view's ``handle_event`` runs the ``on()`` handlers, then sends
    ``webhook_received`` (``sender`` the view class, ``request=None``). When several mounted views
    have different ``handle_event`` methods (which endpoint mode allows), the event came in
    through none of them: it runs the ready view's ``handle_event``, with a WARNING when built.
    The configured receiver's ``process`` runs through it
    (:class:`~kreuzberg_webhooks.django.conf.ConfiguredReceiver`); give it to a reconciler
    yourself when the ``RECEIVER`` setting gives a receiver of your own.
    """
    return _receivers(configured)[1]
