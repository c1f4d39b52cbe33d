"""The sans-I/O verifier: ``(body, headers, now) -> event`` or a :class:`WebhookError`.

Checks run in the order of ``docs/contract.md`` §4, cheapest and safest first:
size, signature, JSON, shape, replay window. Nothing of the body is trusted
before its signature verifies; the one exception is a per-project secret
resolver, which is shown the body's ``project_id`` only to pick the secrets.
"""

from __future__ import annotations

import inspect
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Any, NamedTuple, NoReturn, TypeAlias, cast
from uuid import UUID

from ..events import (
    AutoTuneWebhookEvent,
    CrawlJobDocument,
    CrawlWebhookEvent,
    Event,
    JobDocument,
    JobEvent,
    UnknownEvent,
    WebhookEvent,
    canonical_job_id,
    parse_event,
)
from ..exceptions import (
    ConfigurationError,
    InvalidJSON,
    InvalidPayload,
    MalformedSignature,
    MissingSignature,
    NotAnObject,
    PayloadTooLarge,
    ProjectMismatch,
    SecretsUnavailable,
    UnknownProject,
    WebhookError,
)
from .body import DEFAULT_MAX_BODY_SIZE, BodyReader, RequestBody, StreamedBody
from .decoding import decode_json
from .headers import find_header, header_name
from .keys import MAX_SCOPE_LENGTH, bounded
from .resolver import (
    PROJECT_ID_SCAN_LIMIT,
    AsyncSecretResolver,
    SecretResolver,
    is_async_resolver,
    peek_project_id,
)
from .signing import (
    DEFAULT_SCHEMES,
    SIGNATURE_PREFIX,
    KeyedSecret,
    Sha256Signature,
    SignatureScheme,
    StreamingMac,
    TimestampedSignature,
    header_text,
    known_scheme_for,
    matching_key_index,
    normalize_secrets,
    parse_timestamped_header,
    prekey,
    resolve_schemes,
    signing_key_index,
)
from .window import ReplayWindow

__all__ = [
    "DEFAULT_DOCUMENT_WINDOW",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_SIGNATURE_HEADER",
    "AsyncSecretResolver",
    "BodyReader",
    "ReplayWindow",
    "RequestBody",
    "SecretResolver",
    "Secrets",
    "StreamedBody",
    "Verified",
    "Verifier",
    "decode_json",
]

logger = logging.getLogger("kreuzberg_webhooks")

DEFAULT_SIGNATURE_HEADER = "X-Webhook-Signature"
#: How old a job document's latest signed time (``created_at``, or ``completed_at``)
#: may be: generous, since it counts from the job's creation: long OCR jobs and
#: the sender's hours of retries fit in it many times over. A captured document
#: is refused once it is older; until then, the dedupe retention (which covers
#: this span, see :attr:`Verifier.max_span`) answers it as a duplicate.
DEFAULT_DOCUMENT_WINDOW = ReplayWindow(max_age=7 * 24 * 60 * 60, max_future=5 * 60)

Secrets: TypeAlias = "str | bytes | Iterable[str | bytes] | SecretResolver | AsyncSecretResolver"
#: Called with a signed body that is not a valid delivery, and the error.
InvalidPayloadCallback: TypeAlias = Callable[[bytes, InvalidPayload], None]


class Verified(NamedTuple):
    """A verified delivery: its typed event, and the scope of who signed it (``kreuzberg_webhooks.protocol.keys``).

    A named tuple, not a frozen dataclass: one is built for every delivery, for
    a third of the cost.
    """

    event: Event
    #: ``""`` with static secrets; with a resolver, the project the verifying secret belongs to
    #: (``docs/contract.md`` §4c), ``""`` when the resolver did not say.
    scope: str


#: What a resolver's answer gives the verifier: the keys to try and, when the answer
#: named them (a mapping), the project each key belongs to.
_Resolved: TypeAlias = "tuple[tuple[bytes, ...], tuple[str, ...] | None]"


def _log_invalid_payload(body: Sized, error: InvalidPayload) -> None:
    logger.warning(
        "signed delivery with an invalid payload kept out (reason=%s, %d bytes): %s",
        error.reason,
        len(body),
        error.detail,
    )


#: What _project_of answers for a body it did not decode.
_UNDECODED: Any = object()


def _project_of(body: RequestBody) -> tuple[str | None, Any]:
    """The untrusted ``project_id`` to choose secrets by, and the decoded body when it was decoded.

    Read only to choose which secrets to try, with bounded work: a body that
    fits in :data:`~kreuzberg_webhooks.protocol.resolver.PROJECT_ID_SCAN_LIMIT` is
    decoded whole (a few microseconds for an event, and the decode is kept for
    after the signature check); a larger one is scanned in its first 64 KiB by
    :func:`~kreuzberg_webhooks.protocol.resolver.peek_project_id`, in fixed memory, so a
    forged body of any size costs what its HMAC costs.
    """
    if isinstance(body, StreamedBody):
        body = body.bytes()  # never in practice: a body is streamed only for static secrets
    if len(body) > PROJECT_ID_SCAN_LIMIT:
        return peek_project_id(body), _UNDECODED
    try:
        data = decode_json(body)
    except InvalidJSON as error:
        return None, error
    project = data.get("project_id") if type(data) is dict else None
    return (project if type(project) is str else None), data


def _log_rejection(error: WebhookError) -> None:
    logger.warning(
        "webhook delivery rejected: %s (status=%d, event_id=%s)",
        error.reason,
        error.status_code,
        error.event_id or "-",
    )


def _misconfigured_resolver(what: str) -> NoReturn:
    # A bug in the application, not in the delivery: a 503 keeps the sender
    # retrying (a 401 would lose the event for good), and the log says why on
    # every delivery until it is fixed.
    logger.error(
        "the webhook secret resolver %s; it must return str, bytes, an iterable of them, or None "
        "for an unknown project (or a mapping of project ids to those). "
        "Deliveries are answered 503 (retried by the sender) until it is fixed",
        what,
    )
    raise SecretsUnavailable()


_BYTES_LIKE = (bytes, bytearray, memoryview)


def project_scope(project: str) -> str:
    """The scope a project id gives: a UUID written lower-case with hyphens, anything else
    as given (its digest past :data:`~kreuzberg_webhooks.protocol.keys.MAX_SCOPE_LENGTH`)."""
    return canonical_job_id(project) or bounded(project, MAX_SCOPE_LENGTH)


def _secret_items(answer: object, what: str) -> tuple[str | bytes, ...]:
    """One answer's secrets (a secret or an iterable of them), bytes-like ones as ``bytes``."""
    if isinstance(answer, str):
        return (answer,)
    if isinstance(answer, _BYTES_LIKE):
        return (bytes(answer),)
    if isinstance(answer, Mapping) or not isinstance(answer, Iterable):
        _misconfigured_resolver(f"returned {what}a {type(answer).__name__}")
    try:
        items = tuple(answer)
    except Exception:
        logger.exception("the webhook secret resolver's answer could not be iterated")
        raise SecretsUnavailable() from None
    odd = [type(item).__name__ for item in items if not isinstance(item, (str, *_BYTES_LIKE))]
    if odd:
        _misconfigured_resolver(f"returned {what}a {type(answer).__name__} holding a {odd[0]}")
    return tuple(bytes(item) if isinstance(item, (bytearray, memoryview)) else item for item in items)


def _keys(items: tuple[str | bytes, ...]) -> tuple[bytes, ...]:
    try:
        return normalize_secrets(items, warn=False)
    except ConfigurationError:  # nothing, or only empty secrets: no secret for this project
        return ()


def _resolved_secrets(answer: object) -> _Resolved:
    """The keys of a resolver's answer; see :mod:`kreuzberg_webhooks.protocol.resolver` for what it may be."""
    if answer is None:
        raise UnknownProject()
    if isinstance(answer, Mapping):
        # {project id: its secrets}: the verifying key names the signer's project.
        keys: list[bytes] = []
        owners: list[str] = []
        for project, secrets in answer.items():
            if isinstance(project, UUID):
                project = str(project)
            if not isinstance(project, str) or not project:
                _misconfigured_resolver(f"returned a mapping keyed by a {type(project).__name__}, not a project id")
            if secrets is None:
                continue
            found = _keys(_secret_items(secrets, f"for project {project!r} "))
            keys.extend(found)
            owners.extend([project_scope(project)] * len(found))
        if not keys:
            raise UnknownProject()
        return tuple(keys), tuple(owners)
    found = _keys(_secret_items(answer, ""))
    if not found:
        raise UnknownProject()
    return found, None


class Verifier:
    """Verifies one delivery: size, signature, payload and replay window.

    :param secrets: the webhook secret, several secrets (any of them verifies:
        key rotation), or a resolver: a callable given the delivery's
        not-yet-trusted ``project_id`` (read within the body's first 64 KiB, or
        ``None``) that returns the secrets to try, a mapping of project ids to
        their secrets, or ``None`` for an unknown project (see
        :mod:`kreuzberg_webhooks.protocol.resolver`). The delivery's scope is the project
        that owns the secret which verified it (``docs/contract.md`` §4c). An ``async``
        resolver works on the async path only (:meth:`verify_scoped_async`, :meth:`verify_async`).
    :param header: the signature header's name (case-insensitive).
    :param window: the :class:`ReplayWindow` for the signed ``timestamp`` in the body.
    :param document_window: the :class:`ReplayWindow` for a job document's
        latest signed time (it carries no ``timestamp``); default
        :data:`DEFAULT_DOCUMENT_WINDOW`, 7 days back and 5 minutes ahead.
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
        "_async_resolver",
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
        "_warned_unowned",
        "document_window",
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
        document_window: ReplayWindow | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        clock: Callable[[], float] = time.time,
        on_invalid_payload: InvalidPayloadCallback | None = None,
        insecure_accept_unsigned: bool = False,
        schemes: str | SignatureScheme | Iterable[str | SignatureScheme] = DEFAULT_SCHEMES,
    ) -> None:
        header_name(header)
        if type(max_body_size) is not int or max_body_size <= 0:  # type(), not isinstance: True is not a size
            raise ConfigurationError("max_body_size must be a positive integer number of bytes")
        for name, given in (("window", window), ("document_window", document_window)):
            if given is not None and not isinstance(given, ReplayWindow):
                raise ConfigurationError(f"{name} must be a ReplayWindow, not {type(given).__name__}")
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning unix seconds")
        if on_invalid_payload is not None and not callable(on_invalid_payload):
            raise ConfigurationError("on_invalid_payload must be callable")
        self._resolver: SecretResolver | AsyncSecretResolver | None = None
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
        self._async_resolver = is_async_resolver(self._resolver)
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
        self.document_window = document_window or DEFAULT_DOCUMENT_WINDOW
        self.max_body_size = max_body_size
        self._clock = clock
        self._on_invalid_payload = on_invalid_payload or _log_invalid_payload
        self._warned_unowned = False
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
        """The longest any accepted delivery stays acceptable: the body's window, the
        job documents' window or a scheme's own (``t=``), whichever is longest. A
        replay store must remember an event at least this long (the default retention)."""
        return max(
            self.window.span,
            self.document_window.span,
            *(scheme.window.span for scheme in self._schemes if scheme.window is not None),
        )

    def span_for(self, event: Event) -> float:
        """How long a delivery of *event*'s kind is accepted, in seconds: the least its
        dedupe entry must be kept. The event window's span for an event with a signed
        ``timestamp`` (a small event, a ``WebhookEvent``), the document window's for a
        job document, :attr:`max_span` for anything else (a ``t=`` signature's own
        window may add to either)."""
        if isinstance(event, (JobDocument, CrawlJobDocument)):
            return max(self.document_window.span, self._scheme_span)
        if isinstance(event, UnknownEvent) and event.timestamp is None:
            return self.max_span
        return max(self.window.span, self._scheme_span)

    @property
    def _scheme_span(self) -> float:
        return max((scheme.window.span for scheme in self._schemes if scheme.window is not None), default=0.0)

    @property
    def is_async(self) -> bool:
        """Whether the secret resolver is a coroutine function: only :meth:`verify_scoped_async` and
        :meth:`verify_async` can use this verifier."""
        return self._async_resolver

    def body_reader(self, content_length: str | None = None) -> BodyReader:
        """A :class:`BodyReader` bound to this verifier's size limit."""
        return BodyReader(self.max_body_size, content_length)

    def streaming_mac(self, headers: Mapping[str, str]) -> StreamingMac | None:
        """The HMACs to advance while a delivery's body arrives, when they can start before it.

        They can with static secrets and a signature header of a built-in
        format (the ``t=`` prefix is in the header); ``None`` otherwise: a
        resolver's secrets depend on the body (its ``project_id``), a custom
        scheme hashes what it likes, and a missing or malformed header is
        answered without hashing. A body read with one is verified from its
        digests (:class:`StreamedBody`), with the same answers as whole.
        """
        if self._resolver is not None or not self._macs:
            return None
        header = find_header(headers, self._header_name, self._header_lower)
        if type(header) is not str:
            return None
        if self._sha256_fast and header.startswith(SIGNATURE_PREFIX):
            return StreamingMac(self._macs, header)
        if self._timestamped_fast is not None and header.startswith("t="):
            try:
                prefix = parse_timestamped_header(header)[1]
            except MalformedSignature:
                return None
            return StreamingMac(self._macs, header, prefix)
        return None

    def verify_scoped(self, body: RequestBody, headers: Mapping[str, str], *, now: float | None = None) -> Verified:
        """Like :meth:`verify`, with the signer's scope, and without the log line (the lifecycle writes it).

        Raises :class:`ConfigurationError` when the secret resolver is async
        (:attr:`is_async`): that verifier needs :meth:`verify_scoped_async`.
        """
        return Verified(*self._verify(body, headers, now))

    async def verify_scoped_async(
        self, body: RequestBody, headers: Mapping[str, str], *, now: float | None = None
    ) -> Verified:
        """:meth:`verify_scoped` for the async path: an ``async`` secret resolver is awaited.

        A plain resolver is called directly (keep it fast: it runs on the loop);
        one that returns an awaitable has it awaited.
        """
        header = self._precheck(body, headers)
        if self._resolver is None:
            return Verified(*self._verified(body, header, None, None, now))
        project, decoded = _project_of(body)
        return Verified(*self._verified(body, header, await self._resolve_async(project), project, now, decoded))

    def verify(self, body: RequestBody, headers: Mapping[str, str], *, now: float | None = None) -> Event:
        """Return the typed event for a delivery, or raise a :class:`WebhookError`.

        *headers* is any mapping of header names to values; the look-up is
        case-insensitive. An adapter that sees a header line twice must join
        the values with ``", "`` (RFC 9110), which is then malformed.

        Raises :class:`ConfigurationError` when the secret resolver is async
        (:attr:`is_async`): that verifier needs :meth:`verify_async`.
        """
        try:
            return self._verify(body, headers, now)[0]
        except WebhookError as error:
            _log_rejection(error)
            raise

    async def verify_async(self, body: RequestBody, headers: Mapping[str, str], *, now: float | None = None) -> Event:
        """:meth:`verify` for an event loop: an ``async`` secret resolver is awaited."""
        try:
            return (await self.verify_scoped_async(body, headers, now=now)).event
        except WebhookError as error:
            _log_rejection(error)
            raise

    # A tuple, not a Verified: verify() needs no frozen dataclass, and building one
    # is a tenth of its cost.
    def _verify(self, body: RequestBody, headers: Mapping[str, str], now: float | None) -> tuple[Event, str]:
        if self._resolver is None:  # static secrets: the common path, one call shorter
            if len(body) > self.max_body_size:
                raise PayloadTooLarge()
            header = find_header(headers, self._header_name, self._header_lower)
            if header is None and not self.insecure_accept_unsigned:
                raise MissingSignature()
            return self._verified(body, header, None, None, now)
        if self._async_resolver:
            raise ConfigurationError(
                "this verifier's secret resolver is a coroutine function: use the async path "
                "(verify_async, handle_async, an async adapter), or pass a plain function"
            )
        header = self._precheck(body, headers)
        project, decoded = _project_of(body)
        return self._verified(body, header, self._resolve(project), project, now, decoded)

    def _precheck(self, body: RequestBody, headers: Mapping[str, str]) -> str | None:
        """Size and signature header, before anything is resolved or read."""
        if len(body) > self.max_body_size:
            raise PayloadTooLarge()
        header = find_header(headers, self._header_name, self._header_lower)
        if header is None and not self.insecure_accept_unsigned:
            raise MissingSignature()  # before the resolver: an unsigned request costs no look-up
        return header

    def _verified(
        self,
        body: RequestBody,
        header: str | None,
        resolved: _Resolved | None,
        project: str | None,
        now: float | None,
        decoded: Any = _UNDECODED,
    ) -> tuple[Event, str]:
        """Signature, JSON, shape and windows, with the resolver's secrets (*resolved*) or the static
        ones; *decoded* is what :func:`_project_of` decoded of a small body already."""
        if now is None:
            now = self._clock()
        secrets = self._secrets if resolved is None else resolved[0]
        index: int | None = None
        chunked: StreamedBody | None = None
        raw = b""
        if type(body) is bytes:
            raw = body
        else:
            # Read by streaming: its HMACs are done, and it is decoded from its chunks.
            streamed = cast("StreamedBody", body)
            mac = streamed.mac
            if header is not None and header == mac.header and resolved is None and mac.keys is self._macs:
                index = self._check_streamed(mac, now)
                chunked = streamed
            else:  # not what the HMACs were started for (never from an Exchange): checked whole
                raw = streamed.bytes()
        if index is not None or (self.insecure_accept_unsigned and (header is None or not secrets)):
            pass
        elif header is None:
            raise MissingSignature()
        elif self._sha256_fast and type(header) is str and header.startswith(SIGNATURE_PREFIX):
            index = signing_key_index(raw, header, self._macs if resolved is None else prekey(secrets))
        elif self._timestamped_fast is not None and type(header) is str and header.startswith("t="):
            index = self._timestamped_fast.verify(raw, header, self._macs if resolved is None else prekey(secrets), now)
        else:
            index = self._check_signature(raw, header, self._macs if resolved is None else prekey(secrets), now)
        data: Any = None
        try:
            if chunked is not None:
                # Freed chunk by chunk as it is decoded unless something needs the bytes after:
                # the application's on_invalid_payload (the default one reads only the size).
                data = chunked.decode(release=self._on_invalid_payload is _log_invalid_payload)
            elif decoded is _UNDECODED:
                data = decode_json(raw)
            elif isinstance(decoded, InvalidJSON):
                raise decoded
            else:
                data = decoded
            if type(data) is not dict:
                raise NotAnObject()
            if self._resolver is not None:
                signed_project = data.get("project_id")
                if (signed_project if type(signed_project) is str else None) != project:
                    # The secrets were chosen for another project than the one the
                    # body names (a duplicate key past the scanned prefix).
                    raise ProjectMismatch()
            event = parse_event(data)
        except InvalidPayload as error:
            candidate = data.get("event_id") if type(data) is dict else None
            # Only a printable id goes into log lines: no lone surrogates, no forged newlines.
            if type(candidate) is str and candidate[:256].isprintable():
                error.event_id = candidate[:256]
            self._report_invalid(body, error)
            raise
        if type(event) is JobEvent:
            window, signed = self.window, event.raw["timestamp"]
            # The comparisons inline, the call only to raise: this runs on every delivery.
            if now - signed > window.max_age or signed - now > window.max_future:
                window.check(signed, now, event_id=event.event_id)
        elif type(event) is JobDocument or type(event) is CrawlJobDocument:
            self._check_document(event, now)
        else:
            # The webhook families, and an unknown one's event that carries a usable time.
            signed_at = cast("WebhookEvent | CrawlWebhookEvent | AutoTuneWebhookEvent | UnknownEvent", event).timestamp
            if signed_at is not None:
                self.window.check(signed_at.timestamp(), now, event_id=event.event_id)
        if resolved is None:
            return event, ""
        return event, self._scope(resolved[1], index, project)

    def _scope(self, owners: tuple[str, ...] | None, index: int | None, project: str | None) -> str:
        """Who signed a delivery the resolver chose secrets for: the project that owns the
        verifying secret (``docs/contract.md`` §4c), so one job keys alike in every shape."""
        if owners is not None and index is not None:
            return owners[index]  # the resolver named each secret's project
        if project is not None:
            return project_scope(project)  # the resolver answered for this project
        # Asked for no project and answered plain secrets: the owner is unknown.
        if not self._warned_unowned:
            self._warned_unowned = True
            logger.warning(
                "the webhook secret resolver answered plain secrets for a body that names no project: such "
                "deliveries are scoped '' while a small event of the same job is scoped by its project, so one "
                "job could run twice; answer a mapping {project_id: secrets} for them (docs/contract.md §4c)"
            )
        return ""

    def _check_document(self, event: JobDocument | CrawlJobDocument, now: float) -> None:
        signed_time = event.signed_time
        if signed_time is None:
            # Every vendor schema requires created_at, so a document without one
            # is a sender change, not an attack (no one else can sign it): accepted,
            # since a 400 would lose it for good, with its dedupe entry as the bound.
            logger.warning(
                "job document %s carries no created_at; accepted, deduplicated for the store's retention only",
                event.job_id,
            )
            return
        self.document_window.check(signed_time.timestamp(), now)

    def _check_streamed(self, mac: StreamingMac, now: float) -> int:
        """The signature check of a streamed body: the same formats, errors and order as the whole one's."""
        if self._sha256_fast and mac.header.startswith(SIGNATURE_PREFIX):
            return matching_key_index(mac.digests(), mac.header)
        # A StreamingMac is started for the two built-in formats only.
        return cast("TimestampedSignature", self._timestamped_fast).verify_streamed(mac, now)

    def _check_signature(self, body: bytes, value: str | bytes, keys: Sequence[KeyedSecret], now: float) -> int:
        header = header_text(value)
        for scheme in self._schemes:
            if scheme.claims(header):
                return scheme.verify(body, header, keys, now)
        known = known_scheme_for(header)
        if known is not None:
            accepted = ", ".join(scheme.name for scheme in self._schemes)
            raise MalformedSignature(f"a {known} signature, and this receiver accepts only: {accepted}")
        raise MalformedSignature()

    def _resolve(self, project_id: str | None) -> _Resolved:
        assert self._resolver is not None
        try:
            answer = self._resolver(project_id)
        except Exception:
            logger.exception("the webhook secret resolver raised")
            raise SecretsUnavailable() from None
        if inspect.isawaitable(answer):
            if inspect.iscoroutine(answer):
                answer.close()  # never awaited: no "coroutine was never awaited" warning on top
            _misconfigured_resolver("returned an awaitable on the sync path (use verify_async, an async adapter)")
        return _resolved_secrets(answer)

    async def _resolve_async(self, project_id: str | None) -> _Resolved:
        assert self._resolver is not None
        try:
            answer = self._resolver(project_id)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception:
            logger.exception("the webhook secret resolver raised")
            raise SecretsUnavailable() from None
        return _resolved_secrets(answer)

    def _report_invalid(self, body: RequestBody, error: InvalidPayload) -> None:
        try:
            if type(body) is bytes or self._on_invalid_payload is not _log_invalid_payload:
                self._on_invalid_payload(body if type(body) is bytes else body.bytes(), error)  # type: ignore[union-attr]
            else:  # a streamed body, maybe released as it was decoded: the log line needs only its size
                _log_invalid_payload(body, error)
        except Exception:
            logger.exception("the on_invalid_payload callback raised")
