"""The sans-I/O verifier: ``(body, headers, now) -> event`` or a :class:`WebhookError`.

Checks run in the order of ``docs/contract.md`` §4, cheapest and safest first:
size, signature, JSON, shape, replay window. Nothing of the body is trusted
before its signature verifies; the one exception is a per-project secret
resolver, which is shown the body's ``project_id`` only to pick the secrets.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from .body import DEFAULT_MAX_BODY_SIZE, BodyReader
from .decoding import decode_json
from .events import Event, JobEvent, WebhookEvent, parse_event
from .exceptions import (
    ConfigurationError,
    InvalidJSON,
    InvalidPayload,
    MalformedSignature,
    MissingSignature,
    NotAnObject,
    PayloadTooLarge,
    SecretsUnavailable,
    UnknownProject,
    WebhookError,
)
from .signing import (
    DEFAULT_SCHEMES,
    SIGNATURE_PREFIX,
    KeyedSecret,
    Sha256Signature,
    SignatureScheme,
    TimestampedSignature,
    header_text,
    known_scheme_for,
    normalize_secrets,
    prekey,
    resolve_schemes,
    verify_prekeyed,
)
from .window import ReplayWindow

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_SIGNATURE_HEADER",
    "BodyReader",
    "ReplayWindow",
    "SecretResolver",
    "Secrets",
    "Verified",
    "Verifier",
    "decode_json",
]

logger = logging.getLogger("kreuzberg_webhooks")

DEFAULT_SIGNATURE_HEADER = "X-Webhook-Signature"

#: Given the not-yet-trusted ``project_id`` (or ``None``), returns the secrets to try.
SecretResolver: TypeAlias = Callable[[str | None], "str | bytes | Iterable[str | bytes] | None"]
Secrets: TypeAlias = "str | bytes | Iterable[str | bytes] | SecretResolver"
#: Called with a signed body that is not a valid delivery, and the error.
InvalidPayloadCallback: TypeAlias = Callable[[bytes, InvalidPayload], None]


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified delivery: its typed event, and the scope of who signed it (``kreuzberg_webhooks.keys``)."""

    event: Event
    #: ``""`` with static secrets; the project the resolver was asked for otherwise.
    scope: str


def _header(headers: Mapping[str, str], name: str, lower: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(lower)
        if value is None:
            for key, candidate in headers.items():
                if key.lower() == lower:
                    return candidate
    return value


def _log_invalid_payload(body: bytes, error: InvalidPayload) -> None:
    logger.warning(
        "signed delivery with an invalid payload kept out (reason=%s, %d bytes): %s",
        error.reason,
        len(body),
        error.detail,
    )


class Verifier:
    """Verifies one delivery: size, signature, payload and replay window.

    :param secrets: the webhook secret, several secrets (any of them verifies:
        key rotation), or a callable given the delivery's not-yet-trusted
        ``project_id`` that returns the secrets to try.
    :param header: the signature header's name (case-insensitive).
    :param window: the :class:`ReplayWindow` for the signed ``timestamp`` in the body.
    :param schemes: the signature formats accepted: ``"sha256"`` (``sha256=<hex>``
        over the body), ``"t-v1"`` (``t=<unix seconds>,v1=<hex>`` over
        ``"<t>." + body``, whose ``t`` has its own five-minute window), or
        :class:`~kreuzberg_webhooks.SignatureScheme` objects such as
        ``TimestampedSignature(window=ReplayWindow(600, 300))``. Default: both.
    :param max_body_size: the largest body accepted, in bytes.
    :param clock: returns the current unix time; inject a frozen one in tests.
    :param on_invalid_payload: called with a correctly signed body that is not
        a valid delivery (answered 400), so a sender bug never loses an event
        silently. The default logs the reason and size, never the content.
    :param insecure_accept_unsigned: accept deliveries without a signature
        header. Anyone who can reach the URL can then forge events; for local
        experiments only.

    Security: error messages and log lines never contain the secret, the
    expected signature or the body.
    """

    __slots__ = (
        "_clock",
        "_header_lower",
        "_header_name",
        "_macs",
        "_on_invalid_payload",
        "_resolver",
        "_schemes",
        "_secrets",
        "_sha256_fast",
        "_timestamped_fast",
        "insecure_accept_unsigned",
        "max_body_size",
        "window",
    )

    def __init__(
        self,
        secrets: Secrets | None,
        *,
        header: str = DEFAULT_SIGNATURE_HEADER,
        window: ReplayWindow | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        clock: Callable[[], float] = time.time,
        on_invalid_payload: InvalidPayloadCallback | None = None,
        insecure_accept_unsigned: bool = False,
        schemes: str | SignatureScheme | Iterable[str | SignatureScheme] = DEFAULT_SCHEMES,
    ) -> None:
        if not isinstance(header, str) or not header.strip() or not header.isascii():
            raise ConfigurationError("the signature header name must be a non-empty ASCII string")
        if type(max_body_size) is not int or max_body_size <= 0:
            raise ConfigurationError("max_body_size must be a positive integer number of bytes")
        self._resolver: SecretResolver | None = None
        self._secrets: tuple[bytes, ...] = ()
        if secrets is None:
            if not insecure_accept_unsigned:
                raise ConfigurationError(
                    "a webhook secret is required (pass insecure_accept_unsigned=True to accept forged deliveries)"
                )
        elif callable(secrets):
            self._resolver = secrets
        else:
            try:
                self._secrets = normalize_secrets(secrets)
            except TypeError:  # e.g. Verifier(42): neither a secret, nor several, nor a callable
                raise ConfigurationError("secrets must be a str, bytes, an iterable of them, or a callable") from None
        self._macs = prekey(self._secrets)
        self._schemes = resolve_schemes(schemes)
        # With the built-in schemes only, a header's first characters say which
        # one it is, and the search for its scheme is skipped (every delivery of
        # the benchmarked hot paths). A custom scheme might claim either shape first.
        built_in = {type(scheme): scheme for scheme in self._schemes}
        own = set(built_in) <= {Sha256Signature, TimestampedSignature}
        self._sha256_fast = own and Sha256Signature in built_in
        self._timestamped_fast = built_in.get(TimestampedSignature) if own else None
        if insecure_accept_unsigned:
            warnings.warn(
                "insecure_accept_unsigned=True: unsigned webhook deliveries will be accepted",
                stacklevel=2,
            )
        self._header_name = header
        self._header_lower = header.lower()
        self.window = window or ReplayWindow()
        self.max_body_size = max_body_size
        self._clock = clock
        self._on_invalid_payload = on_invalid_payload or _log_invalid_payload
        self.insecure_accept_unsigned = insecure_accept_unsigned

    @property
    def header(self) -> str:
        """The signature header's name."""
        return self._header_name

    @property
    def schemes(self) -> tuple[SignatureScheme, ...]:
        """The signature formats this verifier accepts, in the order they are tried."""
        return self._schemes

    @property
    def max_span(self) -> float:
        """The longest any accepted delivery stays acceptable: the body's window or a
        scheme's own (``t=``), whichever is longer. A replay store must remember
        an event at least this long."""
        return max([self.window.span, *(scheme.window.span for scheme in self._schemes if scheme.window is not None)])

    def body_reader(self, content_length: str | None = None) -> BodyReader:
        """A :class:`BodyReader` bound to this verifier's size limit."""
        return BodyReader(self.max_body_size, content_length)

    def check(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> Verified:
        """Like :meth:`verify`, with the signer's scope, and without the log line (the lifecycle writes it)."""
        return Verified(*self._verify(body, headers, now))

    async def check_async(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> Verified:
        """:meth:`check` for the async path."""
        return Verified(*self._verify(body, headers, now))

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> Event:
        """Return the typed event for a delivery, or raise a :class:`WebhookError`.

        *headers* is any mapping of header names to values; the look-up is
        case-insensitive. An adapter that sees a header line twice must join
        the values with ``", "`` (RFC 9110), which is then malformed.
        """
        try:
            return self._verify(body, headers, now)[0]
        except WebhookError as error:
            logger.warning(
                "webhook delivery rejected: %s (status=%d, event_id=%s)",
                error.reason,
                error.status_code,
                error.event_id or "-",
            )
            raise

    # A tuple, not a Verified: building a frozen dataclass costs 0.4 µs, a tenth of
    # verify() (benchmark row 1), and verify() does not need one.
    def _verify(self, body: bytes, headers: Mapping[str, str], now: float | None) -> tuple[Event, str]:
        if len(body) > self.max_body_size:
            raise PayloadTooLarge()
        if now is None:
            now = self._clock()
        header = _header(headers, self._header_name, self._header_lower)
        data: Any = None
        decode_error: InvalidJSON | None = None
        if self._resolver is not None:
            # Read the untrusted project_id only to choose which secrets to try.
            try:
                data = decode_json(body)
            except InvalidJSON as error:
                decode_error = error
            project = data.get("project_id") if type(data) is dict else None
            scope = project if type(project) is str else ""
            secrets = self._resolve(scope or None)
        else:
            scope = ""
            secrets = self._secrets
        if self.insecure_accept_unsigned and (header is None or not secrets):
            pass
        elif header is None:
            raise MissingSignature()
        elif self._sha256_fast and type(header) is str and header.startswith(SIGNATURE_PREFIX):
            verify_prekeyed(body, header, self._macs if self._resolver is None else prekey(secrets))
        elif self._timestamped_fast is not None and type(header) is str and header.startswith("t="):
            self._timestamped_fast.verify(body, header, self._macs if self._resolver is None else prekey(secrets), now)
        else:
            self._check_signature(body, header, self._macs if self._resolver is None else prekey(secrets), now)
        try:
            if decode_error is not None:
                raise decode_error
            if data is None:
                data = decode_json(body)
            if type(data) is not dict:
                raise NotAnObject()
            event = parse_event(data)
        except InvalidPayload as error:
            candidate = data.get("event_id") if type(data) is dict else None
            # Only a printable id goes into log lines: no lone surrogates, no forged newlines.
            if type(candidate) is str and candidate[:256].isprintable():
                error.event_id = candidate[:256]
            self._report_invalid(body, error)
            raise
        if type(event) is JobEvent:
            self.window.check(event.raw["timestamp"], now, event_id=event.event_id)
            if scope:
                scope = str(event.project_id)  # one spelling of the project, whatever case the body used
        elif type(event) is WebhookEvent:
            self.window.check(event.timestamp.timestamp(), now, event_id=event.event_id)
        return event, scope

    def _check_signature(self, body: bytes, value: str | bytes, keys: Sequence[KeyedSecret], now: float) -> None:
        header = header_text(value)
        for scheme in self._schemes:
            if scheme.claims(header):
                scheme.verify(body, header, keys, now)
                return
        known = known_scheme_for(header)
        if known is not None:
            accepted = ", ".join(scheme.name for scheme in self._schemes)
            raise MalformedSignature(f"a {known} signature, and this receiver accepts only: {accepted}")
        raise MalformedSignature()

    def _resolve(self, project_id: str | None) -> tuple[bytes, ...]:
        assert self._resolver is not None
        try:
            resolved = self._resolver(project_id)
        except Exception:
            logger.exception("the webhook secret resolver raised")
            raise SecretsUnavailable() from None
        if resolved is None:
            raise UnknownProject()
        items: tuple[object, ...]
        try:
            items = (resolved,) if isinstance(resolved, (str, bytes)) else tuple(resolved)
        except TypeError:
            items = (resolved,)
        if not all(isinstance(item, (str, bytes)) for item in items):
            # Not secrets at all (42, [42]): a bug on our side, so a retryable
            # 503 rather than a 401 that would lose the event for good.
            logger.error("the webhook secret resolver returned neither secrets nor None")
            raise SecretsUnavailable()
        try:
            return normalize_secrets(cast("tuple[str | bytes, ...]", items), warn=False)
        except ConfigurationError:  # nothing, or only empty secrets: no secret for this project
            raise UnknownProject() from None

    def _report_invalid(self, body: bytes, error: InvalidPayload) -> None:
        try:
            self._on_invalid_payload(body, error)
        except Exception:
            logger.exception("the on_invalid_payload callback raised")
