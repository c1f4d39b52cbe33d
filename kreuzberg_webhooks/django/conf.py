"""Settings: one ``KREUZBERG_WEBHOOKS`` dict, read keyword argument → setting → default.

The one place the Django apps (the adapter, the inbox, the job tracker) read
their settings.

::

    KREUZBERG_WEBHOOKS = {
        "SECRET": os.environ["KREUZBERG_WEBHOOK_SECRET"],  # or "SECRETS": [new, old] while rotating
        "STORE": "sqlite:///webhooks.db",  # or "cache" (Django's cache), "redis://…", a store object
        "CACHE_ALIAS": "default",          # the cache the "cache" store uses
        "MAX_BODY_SIZE": 64 * 1024 * 1024, # bytes; larger bodies are answered 413
        "SIGNATURE_HEADER": "X-Webhook-Signature",
        "MAX_AGE": 24 * 60 * 60,           # seconds a signed timestamp may be old
    }

The receiver built from these settings (:func:`get_receiver`) is what the
URLconf include and the views use unless they are given one. Handlers are
registered on it with :func:`on`. A trusted event it processes (the
reconciler's) runs as a webhook at the mounted view does: :class:`ConfiguredReceiver`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..events import Event
from ..exceptions import ConfigurationError
from ..lifecycle.outcome import Outcome
from ..lifecycle.receiver import CATCH_ALL, Handler, Receiver, check_event_type
from ..settings import DEFAULTS, MISSING, receiver_from_settings
from ..stores import AsyncReplayStore, ReplayStore, open_store
from .store import DEFAULT_KEY_PREFIX, DjangoCacheStore

if TYPE_CHECKING:
    from ..inbox.base import RetryPolicy

__all__ = [
    "INBOX_APP",
    "KNOWN_SETTINGS",
    "SETTING",
    "ConfiguredReceiver",
    "build_receiver",
    "get_receiver",
    "get_setting",
    "inbox_app_installed",
    "inbox_from_setting",
    "on",
    "retry_policy_from_settings",
    "twin",
]

#: The name of the settings dict.
SETTING: Final = "KREUZBERG_WEBHOOKS"

#: The inbox's Django app (its ``AppConfig.name``, whichever ``INSTALLED_APPS`` entry installed it).
INBOX_APP: Final = "kreuzberg_webhooks.django.inbox"

#: Every key ``KREUZBERG_WEBHOOKS`` understands, with its default: the shared
#: settings (:mod:`kreuzberg_webhooks.settings`, the same names and defaults as
#: Flask's ``app.config``), and Django's own.
KNOWN_SETTINGS: Final[Mapping[str, Any]] = {
    **DEFAULTS,
    # The Django cache the STORE value "cache" uses, and the prefix of its keys.
    "CACHE_ALIAS": "default",
    "KEY_PREFIX": DEFAULT_KEY_PREFIX,
    # A ready Receiver (or its dotted path) instead of one built from the keys above.
    "RECEIVER": None,
    # Whether the URLconf include mounts the async view (for ASGI servers).
    "ASYNC": False,
    # Inbox mode (kreuzberg_webhooks.django.inbox): "django", an inbox URL or an inbox; the
    # embedded worker in web processes; the worker's RetryPolicy options.
    "INBOX": None,
    "INBOX_WORKER": False,
    "INBOX_RETRY": None,
}

_MISSING: Any = object()
H = TypeVar("H", bound=Handler)


def settings_dict() -> Mapping[str, Any]:
    """``settings.KREUZBERG_WEBHOOKS``, or an empty dict when it is not set."""
    configured = getattr(settings, SETTING, {})
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured(f"settings.{SETTING} must be a dict")
    return configured


def get_setting(name: str, default: Any = _MISSING, kwargs: dict[str, Any] | None = None) -> Any:
    """One setting: ``kwargs[name.lower()]`` (popped), else ``KREUZBERG_WEBHOOKS[name]``,
    else *default* (else :data:`KNOWN_SETTINGS`' default)."""
    if kwargs is not None and name.lower() in kwargs:
        return kwargs.pop(name.lower())
    configured = settings_dict()
    if name in configured:
        return configured[name]
    if default is not _MISSING:
        return default
    if name in KNOWN_SETTINGS:
        return KNOWN_SETTINGS[name]
    raise ImproperlyConfigured(f"{SETTING}[{name!r}] is not set")


def store_from_setting(
    value: Any, *, cache_alias: str = "default", key_prefix: str = DEFAULT_KEY_PREFIX
) -> ReplayStore | AsyncReplayStore:
    """The replay store for a ``STORE`` value: ``"cache"``, a store URL, or a store object."""
    if value == "cache":
        if cache_alias not in settings.CACHES:
            raise ImproperlyConfigured(f"{SETTING}['CACHE_ALIAS'] {cache_alias!r} is not in settings.CACHES")
        return DjangoCacheStore(cache_alias, key_prefix=key_prefix)
    if isinstance(value, str):
        try:
            return open_store(value)
        except ConfigurationError as error:
            raise ImproperlyConfigured(f"{SETTING}['STORE']: {error}") from error
    if hasattr(value, "claim") and hasattr(value, "complete") and hasattr(value, "release"):
        store: ReplayStore | AsyncReplayStore = value
        return store
    raise ImproperlyConfigured(f"{SETTING}['STORE'] must be 'cache', a store URL or a replay store")


def build_receiver(**kwargs: Any) -> Receiver:
    """A :class:`Receiver` from keyword arguments, then settings, then defaults.

    Keywords are the settings' names in lower case (``secret=``, ``store=``,
    ``max_body_size=``…); any other keyword goes to :class:`Receiver` (e.g.
    ``clock=``, ``on_invalid_payload=``).
    """
    options = dict(kwargs)
    cache_alias = get_setting("CACHE_ALIAS", kwargs=options)
    key_prefix = get_setting("KEY_PREFIX", kwargs=options)

    def store_from(value: Any) -> ReplayStore | AsyncReplayStore:
        return store_from_setting(value, cache_alias=cache_alias, key_prefix=key_prefix)

    configured = settings_dict()
    inbox = get_setting("INBOX", kwargs=options)
    if inbox is not None:
        options.setdefault("inbox", inbox_from_setting(inbox))
    options.pop("inbox_worker", None)
    options.pop("inbox_retry", None)
    try:
        return receiver_from_settings(
            lambda name: configured.get(name, MISSING),
            options,
            describe=lambda name: f"{SETTING}[{name!r}]",
            store_from=store_from,
        )
    except ConfigurationError as error:
        raise ImproperlyConfigured(f"{SETTING}: {error}") from error


def inbox_app_installed() -> bool:
    """Whether the inbox's app (:data:`INBOX_APP`) is in ``INSTALLED_APPS``."""
    from django.apps import apps

    return bool(apps.is_installed(INBOX_APP))


def inbox_from_setting(value: Any) -> Any:
    """The inbox for an ``INBOX`` value: ``"django"`` (this app's table), an inbox URL, or an inbox."""
    if value == "django":
        if not inbox_app_installed():
            raise ImproperlyConfigured(
                f"{SETTING}['INBOX'] is 'django': add {INBOX_APP!r} to INSTALLED_APPS and run manage.py migrate"
            )
        from .inbox.inbox import DjangoInbox

        return DjangoInbox()
    if isinstance(value, str):
        from ..inbox import open_inbox

        try:
            return open_inbox(value)
        except ConfigurationError as error:
            raise ImproperlyConfigured(f"KREUZBERG_WEBHOOKS['INBOX']: {error}") from error
    if callable(getattr(value, "enqueue", None)):
        return value
    raise ImproperlyConfigured("KREUZBERG_WEBHOOKS['INBOX'] must be 'django', an inbox URL or an inbox")


def retry_policy_from_settings() -> RetryPolicy:
    """``KREUZBERG_WEBHOOKS["INBOX_RETRY"]``: a dict of :class:`RetryPolicy` options, or a policy."""
    from ..inbox.base import RetryPolicy  # the inbox is optional

    value = get_setting("INBOX_RETRY", default=None)
    if value is None:
        return RetryPolicy()
    if isinstance(value, RetryPolicy):
        return value
    try:
        return RetryPolicy(**{name.lower(): option for name, option in dict(value).items()})
    except (ConfigurationError, TypeError) as error:
        raise ImproperlyConfigured(f"KREUZBERG_WEBHOOKS['INBOX_RETRY']: {error}") from error


# -- the configured receiver, and handlers registered on it --------------------


def twin(receiver: Receiver, cls: type[Receiver] = Receiver) -> Receiver:
    """A *cls* sharing *receiver*'s verifier, replay store, lease, retention, guard renewal, inbox and observers
    (the same list: observers added later are told too), with no handlers: it claims an event
    under the same key as *receiver*, so the two run each event once in all."""
    made = cls(
        verifier=receiver.verifier,
        store=receiver.store,
        lease=receiver.lease,
        retention=receiver.retention,
        inbox=receiver.inbox,
        guard_renewal=receiver.guard_renewal,
    )
    made.observers = receiver.observers
    return made


#: How the configured receiver runs a trusted event: a function of the configured receiver that
#: returns the receiver to run it through. The package's ``__init__`` sets it to
#: :func:`~kreuzberg_webhooks.django.inbox_mode.trusted_receiver` (the mounted view's
#: ``handle_event``); this module cannot import that one, which imports the views, which import this.
trusted_runner: Callable[[Receiver], Receiver] | None = None


class ConfiguredReceiver(Receiver):
    """The receiver the settings build (:func:`get_receiver`, unless ``RECEIVER`` gives one).

    Webhooks reach the mounted view, whose ``handle_event`` runs what the project does with an
    event: the ready view's runs the ``on()`` handlers, then sends ``webhook_received``. A
    *trusted* event this receiver processes — :meth:`process`, :meth:`process_async`: a job the
    reconciler fetched because its webhook never came, or a worker of your own — runs the same
    ``handle_event``, with ``request=None``, as the inbox worker does, through
    :func:`~kreuzberg_webhooks.django.inbox_mode.trusted_receiver`.
    It is claimed under the key a webhook of the same job and event type claims, so whichever
    comes first runs it, once; ``delivered_via()`` tells the two apart.
    """

    def _trusted(self) -> Receiver | None:
        runner = trusted_runner
        return None if runner is None else runner(self)

    def process(self, event: Event, *, scope: str = "", via: str = "webhook") -> Outcome:
        """Run a trusted event as a webhook at the mounted view runs it, exactly once."""
        through = self._trusted()
        if through is None:
            return super().process(event, scope=scope, via=via)
        return through.process(event, scope=scope, via=via)

    async def process_async(self, event: Event, *, scope: str = "", via: str = "webhook") -> Outcome:
        """The async :meth:`process`."""
        through = self._trusted()
        if through is None:
            return await super().process_async(event, scope=scope, via=via)
        return await through.process_async(event, scope=scope, via=via)


_lock = threading.Lock()
_configured: Receiver | None = None
_registered: list[tuple[str, Handler]] = []
# How many of the registered handlers each receiver already has.
_applied: weakref.WeakKeyDictionary[Receiver, int] = weakref.WeakKeyDictionary()


def _load_configured() -> Receiver:
    given = get_setting("RECEIVER")
    if given is None:
        return twin(build_receiver(), ConfiguredReceiver)
    if isinstance(given, str):
        given = import_string(given)
    if callable(given) and not isinstance(given, Receiver):
        given = given()
    if not isinstance(given, Receiver):
        raise ImproperlyConfigured(f"{SETTING}['RECEIVER'] must be a Receiver, its dotted path, or a factory")
    return given


def get_receiver() -> Receiver:
    """The receiver the settings describe, built once per process (and again when
    ``KREUZBERG_WEBHOOKS`` changes, e.g. under ``override_settings``), with every
    handler registered through :func:`on`: a :class:`ConfiguredReceiver` (or the
    ``RECEIVER`` setting's, as given). Give it to the reconciler."""
    global _configured
    receiver = _configured
    if receiver is None:
        with _lock:
            if _configured is None:
                _configured = _load_configured()
            receiver = _configured
    if _applied.get(receiver, 0) < len(_registered):
        with _lock:
            done = _applied.get(receiver, 0)
            for event_type, handler in _registered[done:]:
                receiver.add_handler(event_type, handler)
            _applied[receiver] = len(_registered)
    return receiver


def on(event_type: str = CATCH_ALL) -> Callable[[H], H]:
    """Register a handler on the configured receiver: ``@on("job.completed")``, or
    ``@on()`` for every event. Import the module that uses it from your
    ``AppConfig.ready()`` so the handlers are registered before the first delivery."""
    try:
        check_event_type(event_type)
    except ConfigurationError as error:
        raise ImproperlyConfigured(str(error)) from None

    def register(handler: H) -> H:
        if not callable(handler):
            raise ImproperlyConfigured("a handler must be callable")
        with _lock:
            _registered.append((event_type, handler))
        return handler

    return register


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _configured
    if setting == SETTING:
        with _lock:
            _configured = None


setting_changed.connect(_reset, dispatch_uid="kreuzberg_webhooks.django.conf")
