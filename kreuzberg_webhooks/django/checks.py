"""System checks run by ``manage.py check`` (and before ``runserver``/``migrate``).

=========================  ===============================================================
``kreuzberg_webhooks.E001``  no webhook secret configured
``kreuzberg_webhooks.E002``  ``KREUZBERG_WEBHOOKS`` is malformed (not a dict, SECRET and SECRETS, …)
``kreuzberg_webhooks.E003``  the ``"cache"`` store names a cache alias that does not exist
``kreuzberg_webhooks.E004``  the ``"cache"`` store is on ``DummyCache``, which remembers nothing
``kreuzberg_webhooks.E005``  ``STORE`` cannot open: an unknown URL scheme, a missing extra, no such directory
``kreuzberg_webhooks.E006``  ``INBOX`` cannot work (an unknown value or URL, ``"django"`` without its app,
                             ``INBOX_WORKER`` without ``INBOX``, ``INBOX`` beside ``RECEIVER``)
``kreuzberg_webhooks.E007``  ``INBOX_RETRY`` is not a retry policy (an unknown option, a negative delay …)
``kreuzberg_webhooks.E008``  inbox mode: no worker can tell which webhook view's ``handle_event`` to run,
                             or a view's own receiver has an inbox (its ``handle_event`` would never run)
``kreuzberg_webhooks.W001``  a secret shorter than 32 bytes
``kreuzberg_webhooks.W002``  a per-process store (``LocMemCache``, ``memory://``): no sharing between workers
``kreuzberg_webhooks.W003``  the ``"cache"`` store is on ``FileBasedCache``, whose ``add`` is not atomic
``kreuzberg_webhooks.W004``  an unknown key in ``KREUZBERG_WEBHOOKS`` (a typo?)
``kreuzberg_webhooks.W005``  the ready view with a receiver of its own that has an inbox: a worker of
                             yours runs its handlers, but ``webhook_received`` is never sent
=========================  ===============================================================
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..exceptions import ConfigurationError
from ..protocol.signing import MIN_SECRET_BYTES
from ..stores import MemoryStore
from .conf import INBOX_APP, KNOWN_SETTINGS, SETTING, inbox_app_installed, settings_dict

__all__ = ["check_inbox", "check_settings", "check_store", "check_views"]

_LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
_FILEBASED = "django.core.cache.backends.filebased.FileBasedCache"
_DUMMY = "django.core.cache.backends.dummy.DummyCache"


def _configured() -> Mapping[str, Any] | checks.CheckMessage:
    try:
        return settings_dict()
    except ImproperlyConfigured as error:
        return checks.Error(str(error), id="kreuzberg_webhooks.E002")


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The secret: present, not doubly configured, long enough."""
    configured = _configured()
    if isinstance(configured, checks.CheckMessage):
        return [configured]
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            f"{SETTING} has an unknown key {key!r}.",
            hint="Known keys: " + ", ".join(sorted(KNOWN_SETTINGS)) + ".",
            id="kreuzberg_webhooks.W004",
        )
        for key in configured
        if key not in KNOWN_SETTINGS
    ]
    if configured.get("RECEIVER") is not None:
        return messages  # a ready Receiver carries its own secrets
    secret, several = configured.get("SECRET"), configured.get("SECRETS")
    if secret and several:
        messages.append(
            checks.Error(
                f"{SETTING} sets both 'SECRET' and 'SECRETS'.",
                hint="Use 'SECRET' for one secret, or 'SECRETS' for several while rotating.",
                id="kreuzberg_webhooks.E002",
            )
        )
    elif not secret and not several:
        messages.append(
            checks.Error(
                f"No Kreuzberg webhook secret is configured: {SETTING}['SECRET'] is missing or empty.",
                hint="Set it from the environment, e.g. 'SECRET': os.environ['KREUZBERG_WEBHOOK_SECRET'].",
                id="kreuzberg_webhooks.E001",
            )
        )
    candidates: Iterable[Any] = [secret] if secret else ([] if callable(several) or not several else several)
    if isinstance(candidates, str | bytes):
        candidates = [candidates]
    for candidate in candidates:
        if not isinstance(candidate, str | bytes):
            messages.append(
                checks.Error(f"{SETTING}: a webhook secret must be a string.", id="kreuzberg_webhooks.E002")
            )
            continue
        length = len(candidate.encode() if isinstance(candidate, str) else candidate)
        if length < MIN_SECRET_BYTES:
            # The message says how long, never what.
            messages.append(
                checks.Warning(
                    f"A Kreuzberg webhook secret is only {length} bytes long.",
                    hint=f"Use at least {MIN_SECRET_BYTES} random bytes; the dashboard can generate one.",
                    id="kreuzberg_webhooks.W001",
                )
            )
    return messages


def _backend_class(path: str) -> Any:
    try:
        return import_string(path)
    except ImportError:
        return None


def _is(backend: str, cls: Any, known: str) -> bool:
    if backend == known:
        return True
    base = _backend_class(known)
    return isinstance(cls, type) and base is not None and issubclass(cls, base)


def check_store(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The replay store: shared between workers, and able to claim atomically."""
    configured = _configured()
    if isinstance(configured, checks.CheckMessage) or configured.get("RECEIVER") is not None:
        return []
    store = configured.get("STORE", KNOWN_SETTINGS["STORE"])
    problem = _store_problem(store)
    if problem is not None:
        return [checks.Error(f"{SETTING}['STORE'] {problem}.", id="kreuzberg_webhooks.E005")]
    per_process = checks.Warning(
        "The Kreuzberg webhook replay store is per process.",
        hint="Under several worker processes a retried delivery can be processed once per worker: "
        "use a shared cache (Redis, Memcached, database) or STORE='sqlite:///…' / 'redis://…'.",
        id="kreuzberg_webhooks.W002",
    )
    if isinstance(store, MemoryStore) or (isinstance(store, str) and store.lower().startswith("memory:")):
        return [per_process]
    if store != "cache":
        return []
    alias = configured.get("CACHE_ALIAS", KNOWN_SETTINGS["CACHE_ALIAS"])
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        return [
            checks.Error(
                f"{SETTING}['CACHE_ALIAS'] is {alias!r}, which is not in settings.CACHES.",
                id="kreuzberg_webhooks.E003",
            )
        ]
    backend = str(caches[alias].get("BACKEND", ""))
    cls = _backend_class(backend)
    if _is(backend, cls, _DUMMY):
        return [
            checks.Error(
                f"The Kreuzberg webhook replay store uses the cache {alias!r}, a DummyCache, which remembers nothing.",
                hint="Every retry would run the handlers again: configure a real cache.",
                id="kreuzberg_webhooks.E004",
            )
        ]
    if _is(backend, cls, _LOCMEM):
        return [per_process]
    if _is(backend, cls, _FILEBASED):
        return [
            checks.Warning(
                f"The Kreuzberg webhook replay store uses the cache {alias!r}, a FileBasedCache.",
                hint="Its add() is not atomic: two workers can claim the same event. Use Redis, Memcached "
                "or the database cache, or STORE='sqlite:///…'.",
                id="kreuzberg_webhooks.W003",
            )
        ]
    return []


# -- URLs, the inbox and inbox mode -------------------------------------------------------------

#: The extra (its module, its pip name) a URL scheme needs.
_STORE_SCHEMES: Mapping[str, tuple[str, str] | None] = {
    "memory": None,
    "sqlite": None,
    "redis": ("redis", "redis"),
    "rediss": ("redis", "redis"),
    "unix": ("redis", "redis"),
    "postgres": ("psycopg", "postgres"),
    "postgresql": ("psycopg", "postgres"),
}
_INBOX_SCHEMES = {scheme: needs for scheme, needs in _STORE_SCHEMES.items() if scheme != "memory"}


def _url_problem(url: str, schemes: Mapping[str, tuple[str, str] | None]) -> str | None:
    """Why *url* cannot open (without opening it: no connection, no file created), or ``None``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in schemes:
        known = ", ".join(f"{name}://" for name in schemes if name != "unix")
        return f"is {url.split(':', 1)[0]!r}… — an unknown URL scheme (use {known})"
    needs = schemes[scheme]
    if needs is not None and importlib.util.find_spec(needs[0]) is None:
        return f'needs the [{needs[1]}] extra: pip install "kreuzberg-webhooks[{needs[1]}]"'
    if scheme == "sqlite":
        path = unquote(url.split("://", 1)[1])
        path = path[1:] if path.startswith("/") else path
        directory = os.path.dirname(os.path.abspath(path)) if path and path != ":memory:" else ""
        if directory and not os.path.isdir(directory):
            return f"is in a directory that does not exist ({directory})"
    return None


def _store_problem(store: Any) -> str | None:
    if store == "cache":
        return None  # E003 and E004 tell what is wrong with the cache
    if isinstance(store, str):
        return _url_problem(store, _STORE_SCHEMES)
    if all(callable(getattr(store, name, None)) for name in ("claim", "complete", "release")):
        return None
    return "must be 'cache', a store URL or a replay store (with claim, complete and release)"


def _inbox_problem(inbox: Any) -> str | None:
    if inbox == "django":
        if not inbox_app_installed():
            return f"is 'django', but {INBOX_APP!r} is not in INSTALLED_APPS"
        return None
    if isinstance(inbox, str):
        if "://" not in inbox:
            return f"is {inbox!r}: use 'django' (the inbox app's table) or an inbox URL (sqlite:///…, redis://…)"
        return _url_problem(inbox, _INBOX_SCHEMES)
    if callable(getattr(inbox, "enqueue", None)):
        return None
    return "must be 'django', an inbox URL or an inbox (with an enqueue method)"


def check_inbox(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The inbox settings: ``INBOX``, ``INBOX_WORKER``, ``INBOX_RETRY``."""
    configured = _configured()
    if isinstance(configured, checks.CheckMessage):
        return []
    messages: list[checks.CheckMessage] = []
    inbox = configured.get("INBOX")
    if inbox is not None and configured.get("RECEIVER") is not None:
        messages.append(
            checks.Error(
                f"{SETTING} sets both 'RECEIVER' and 'INBOX': a ready receiver is used as it is, so 'INBOX' "
                "would be ignored and deliveries handled in the request.",
                hint="Give the receiver its inbox (Receiver(..., inbox=...)) and remove 'INBOX'.",
                id="kreuzberg_webhooks.E006",
            )
        )
    elif inbox is not None:
        problem = _inbox_problem(inbox)
        if problem is not None:
            messages.append(checks.Error(f"{SETTING}['INBOX'] {problem}.", id="kreuzberg_webhooks.E006"))
    elif configured.get("INBOX_WORKER") and configured.get("RECEIVER") is None:
        messages.append(
            checks.Error(
                f"{SETTING}['INBOX_WORKER'] is set, but 'INBOX' is not: there is no inbox to work on.",
                hint="Set 'INBOX' (e.g. 'django'), or remove 'INBOX_WORKER'.",
                id="kreuzberg_webhooks.E006",
            )
        )
    if configured.get("INBOX_RETRY") is not None:
        from ..inbox.base import RetryPolicy

        retry = configured["INBOX_RETRY"]
        if not isinstance(retry, RetryPolicy):
            try:
                if not isinstance(retry, Mapping):
                    raise TypeError("it must be a dict of RetryPolicy options or a RetryPolicy")
                RetryPolicy(**{str(name).lower(): option for name, option in retry.items()})
            except (ConfigurationError, TypeError, ValueError) as error:
                messages.append(checks.Error(f"{SETTING}['INBOX_RETRY']: {error}", id="kreuzberg_webhooks.E007"))
    return messages


def check_views(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Inbox mode: every mounted webhook view's ``handle_event`` can run from a worker."""
    configured_settings = _configured()
    if isinstance(configured_settings, checks.CheckMessage):
        return []
    try:
        from .conf import get_receiver
        from .inbox_mode import inbox_view, mounted_views

        views = mounted_views()
        # The configured receiver is built (its store opened) only when a receiver is compared
        # with it: `manage.py check` creates no database file of its own.
        compared = configured_settings.get("RECEIVER") is not None or any(v.own_receiver is not None for v in views)
        configured = get_receiver() if views and compared else None
    except Exception:
        return []  # a broken URLconf or configuration: Django's own checks and the ones above say so
    messages: list[checks.CheckMessage] = []
    inbox_mode = (
        configured.inbox is not None if configured is not None else configured_settings.get("INBOX") is not None
    )
    if views and inbox_mode:
        try:
            inbox_view(configured=configured)
        except ImproperlyConfigured as error:
            messages.append(
                checks.Error(
                    f"Inbox mode: {error}.",
                    hint="Mount one webhook view (or several with the same handle_event), or move the code "
                    "into on() handlers and mount the ready view.",
                    id="kreuzberg_webhooks.E008",
                )
            )
    for view in views:
        own = view.own_receiver
        if own is None or own is configured or own.inbox is None:
            continue
        name = view.view_class.__qualname__
        if not view.ready_handle_event:
            messages.append(
                checks.Error(
                    f"The webhook view {name} at {view.route!r} has a receiver of its own with an inbox: it answers "
                    "202 and its handle_event never runs (a worker runs only the receiver's handlers).",
                    hint=f"Configure the inbox in {SETTING}['INBOX'] and leave the view's receiver unset: the "
                    "Django worker then runs the view's handle_event.",
                    id="kreuzberg_webhooks.E008",
                )
            )
        else:
            messages.append(
                checks.Warning(
                    f"The webhook view {name} at {view.route!r} has a receiver of its own with an inbox: a worker "
                    "runs that receiver's handlers, but webhook_received is never sent for its deliveries.",
                    hint=f"Configure the inbox in {SETTING}['INBOX'] and leave the view's receiver unset.",
                    id="kreuzberg_webhooks.W005",
                )
            )
    return messages
