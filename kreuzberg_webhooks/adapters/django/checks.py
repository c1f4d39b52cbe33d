"""System checks run by ``manage.py check`` (and before ``runserver``/``migrate``).

=========================  ===============================================================
``kreuzberg_webhooks.E001``  no webhook secret configured
``kreuzberg_webhooks.E002``  ``KREUZBERG_WEBHOOKS`` is malformed (not a dict, SECRET and SECRETS, …)
``kreuzberg_webhooks.E003``  the ``"cache"`` store names a cache alias that does not exist
``kreuzberg_webhooks.E004``  the ``"cache"`` store is on ``DummyCache``, which remembers nothing
``kreuzberg_webhooks.W001``  a secret shorter than 32 bytes
``kreuzberg_webhooks.W002``  a per-process store (``LocMemCache``, ``memory://``): no sharing between workers
``kreuzberg_webhooks.W003``  the ``"cache"`` store is on ``FileBasedCache``, whose ``add`` is not atomic
``kreuzberg_webhooks.W004``  an unknown key in ``KREUZBERG_WEBHOOKS`` (a typo?)
=========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ...signing import MIN_SECRET_BYTES
from ...stores import MemoryStore
from .conf import KNOWN_SETTINGS, SETTING, settings_dict

__all__ = ["check_settings", "check_store"]

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
