"""One settings schema for every framework: the same names and defaults in Flask's ``app.config``
(``KREUZBERG_WEBHOOK_<NAME>``) and Django's ``KREUZBERG_WEBHOOKS = {"<NAME>": ...}``.

==================  ===============================  ==========================================================
name                default                          meaning
==================  ===============================  ==========================================================
``SECRET``          (required)                       the webhook secret
``SECRETS``         —                                several secrets (rotation), or a per-project resolver
``STORE``           ``"memory://"``                  a store URL (``sqlite:///…``, ``redis://…``,
                                                     ``postgresql://…``) or a store object; memory is one
                                                     process only
``SIGNATURE_HEADER``  ``X-Webhook-Signature``        the signature header's name
``SCHEMES``         ``("sha256", "t-v1")``           the signature formats accepted (``"sha256"`` or ``"t-v1"``
                                                     alone restricts a receiver to one)
``MAX_BODY_SIZE``   64 MiB                           larger bodies are answered 413
``MAX_AGE``         86400 s                          how old a signed ``timestamp`` may be
``MAX_FUTURE``      300 s                            how far ahead of the clock it may be
``DOCUMENT_MAX_AGE``  604800 s (7 days)              how old a job document's ``created_at`` may be
``LEASE``           120 s                            how long a claim holds
``GUARD_RENEWAL``   3600 s, or the lease if longer   the most a guard-mode claim is renewed while the view runs
``RETENTION``       the longest window (7 d 5 min)   how long a processed event is remembered
==================  ===============================  ==========================================================

Each framework reads a name with its own look-up; keyword arguments given in
code win over the settings, which win over these defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .exceptions import ConfigurationError
from .lifecycle.receiver import DEFAULT_LEASE, Receiver
from .protocol.body import DEFAULT_MAX_BODY_SIZE
from .protocol.signing import DEFAULT_SCHEMES
from .protocol.verify import DEFAULT_DOCUMENT_WINDOW, DEFAULT_SIGNATURE_HEADER
from .protocol.window import ReplayWindow
from .stores import AsyncReplayStore, ReplayStore, open_store

__all__ = ["DEFAULTS", "MISSING", "receiver_from_settings"]

_WINDOW = ReplayWindow()

#: Every setting the receiver understands, with its default.
DEFAULTS: Final[Mapping[str, Any]] = {
    "SECRET": None,
    "SECRETS": None,
    "STORE": "memory://",
    "SIGNATURE_HEADER": DEFAULT_SIGNATURE_HEADER,
    "SCHEMES": DEFAULT_SCHEMES,
    "MAX_BODY_SIZE": DEFAULT_MAX_BODY_SIZE,
    "MAX_AGE": _WINDOW.max_age,
    "MAX_FUTURE": _WINDOW.max_future,
    "DOCUMENT_MAX_AGE": DEFAULT_DOCUMENT_WINDOW.max_age,
    "LEASE": DEFAULT_LEASE,
    "GUARD_RENEWAL": None,
    "RETENTION": None,
}


@dataclass(frozen=True)
class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What a look-up returns for a name that is not configured.
MISSING: Final = _Missing()

Lookup = Callable[[str], Any]


def receiver_from_settings(
    lookup: Lookup,
    overrides: Mapping[str, Any],
    *,
    describe: Callable[[str], str],
    store_from: Callable[[Any], ReplayStore | AsyncReplayStore] = open_store,
) -> Receiver:
    """Build a :class:`Receiver` from keyword *overrides*, then *lookup* (the framework's settings), then
    :data:`DEFAULTS`.

    *overrides* may use a setting's name in lower case (``store=``,
    ``max_age=``), ``secrets=``, or any other :class:`Receiver` option
    (``clock=``, ``header=``, ``window=`` …). *describe* names a setting the
    framework's way in error messages; *store_from* turns a ``STORE`` value that
    is a string into a store (a framework may know more values than URLs).
    Raises :class:`ConfigurationError`.
    """
    options = dict(overrides)

    def get(name: str) -> Any:
        if name.lower() in options:
            return options.pop(name.lower())
        value = lookup(name)
        return DEFAULTS[name] if value is MISSING else value

    secrets = options.pop("secrets", None)
    secret, several = get("SECRET"), get("SECRETS")
    if secrets is None:
        if secret and several:
            raise ConfigurationError(f"set {describe('SECRET')} or {describe('SECRETS')}, not both")
        secrets = secret or several
    if not secrets and not options.get("insecure_accept_unsigned"):
        raise ConfigurationError(f"{describe('SECRET')} is not set: the receiver needs the webhook secret")
    if secrets and not (isinstance(secrets, str | bytes) or callable(secrets) or isinstance(secrets, Iterable)):
        raise ConfigurationError(f"{describe('SECRETS')} must be a secret, a list of secrets or a callable")
    store = get("STORE")
    if isinstance(store, str):
        store = store_from(store)
    elif not all(callable(getattr(store, name, None)) for name in ("claim", "complete", "release")):
        raise ConfigurationError(f"{describe('STORE')} must be a store URL or a replay store")
    header, max_age, max_future = get("SIGNATURE_HEADER"), get("MAX_AGE"), get("MAX_FUTURE")
    options.setdefault("header", header)
    options.setdefault("schemes", get("SCHEMES"))
    if "window" not in options:
        try:
            options["window"] = ReplayWindow(max_age=max_age, max_future=max_future)
        except TypeError as error:
            raise ConfigurationError(f"{describe('MAX_AGE')} / {describe('MAX_FUTURE')}: {error}") from None
    document_max_age = get("DOCUMENT_MAX_AGE")
    if "document_window" not in options:
        options["document_window"] = ReplayWindow(max_age=document_max_age, max_future=max_future)
    options.setdefault("max_body_size", get("MAX_BODY_SIZE"))
    options.setdefault("lease", get("LEASE"))
    options.setdefault("guard_renewal", get("GUARD_RENEWAL"))
    options.setdefault("retention", get("RETENTION"))
    try:
        return Receiver(secrets or None, store=store, **options)
    except TypeError as error:  # an option Receiver does not know
        raise ConfigurationError(str(error)) from None
