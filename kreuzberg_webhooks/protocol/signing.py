"""Sign and verify the ``X-Webhook-Signature`` header, in either of its two formats.

* ``sha256=<hex>``: the lowercase hex HMAC-SHA256 of the raw body bytes, keyed
  with the secret's UTF-8 bytes (dashboard webhooks, ``docs/contract.md`` §2);
* ``t=<unix seconds>,v1=<hex>``: the HMAC-SHA256 of the bytes ``b"<t>." + body``
  (inline webhooks of ``POST /v1/extract``, §2 "Third shape"), with its own
  short replay window on ``t``.

Each format is a :class:`SignatureScheme`; a :class:`~kreuzberg_webhooks.Verifier`
accepts both by default. A header's shape is checked before anything is
decoded, and digests are compared as bytes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeAlias

if TYPE_CHECKING:
    from hashlib import _Hash

from ..exceptions import ConfigurationError, MalformedSignature, MissingSignature, SignatureMismatch
from .window import ReplayWindow

__all__ = [
    "DEFAULT_SCHEMES",
    "MAX_TIMESTAMPED_SIGNATURES",
    "MIN_SECRET_BYTES",
    "SIGNATURE_PREFIX",
    "TIMESTAMPED_WINDOW",
    "Sha256Signature",
    "SignatureScheme",
    "StreamingMac",
    "TimestampedSignature",
    "WeakSecretWarning",
    "normalize_secrets",
    "parse_signature_header",
    "parse_timestamped_header",
    "resolve_schemes",
    "sign",
    "sign_timestamped",
    "verify_signature",
]

SIGNATURE_PREFIX = "sha256="
#: The dashboard generates secrets of 32+ random bytes; shorter ones are guessable.
MIN_SECRET_BYTES = 32

_PREFIX_LENGTH = len(SIGNATURE_PREFIX)
_HEADER_LENGTH = _PREFIX_LENGTH + 64


class WeakSecretWarning(UserWarning):
    """A webhook secret shorter than 32 bytes was configured."""


def _secret_bytes(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        return secret.encode("utf-8")
    if isinstance(secret, (bytes, bytearray, memoryview)):
        return bytes(secret)
    raise ConfigurationError(f"a webhook secret must be str or bytes, not {type(secret).__name__}")


def normalize_secrets(secrets: str | bytes | Iterable[str | bytes], *, warn: bool = True) -> tuple[bytes, ...]:
    """Turn one secret or several into a tuple of keys, refusing empty ones.

    A secret shorter than :data:`MIN_SECRET_BYTES` emits :class:`WeakSecretWarning`.
    """
    items: Iterable[str | bytes] = (secrets,) if isinstance(secrets, (str, bytes)) else secrets
    keys = tuple(_secret_bytes(s) for s in items)
    if not keys:
        raise ConfigurationError("at least one webhook secret is required")
    for key in keys:
        if not key:
            raise ConfigurationError("a webhook secret must not be empty")
        if warn and len(key) < MIN_SECRET_BYTES:
            warnings.warn(
                f"a webhook secret is {len(key)} bytes long; use at least {MIN_SECRET_BYTES} random bytes",
                WeakSecretWarning,
                stacklevel=3,
            )
    return keys


def sign(body: bytes, secret: str | bytes) -> str:
    """Return the signature header value for *body*: ``sha256=<lowercase hex>``."""
    key = _secret_bytes(secret)
    if not key:
        raise ConfigurationError("a webhook secret must not be empty")
    return SIGNATURE_PREFIX + hmac.digest(key, body, "sha256").hex()


def parse_signature_header(value: str | bytes | None) -> bytes:
    """Return the 32-byte digest carried by a signature header value.

    Raises :class:`MissingSignature` for ``None`` or an empty value and
    :class:`MalformedSignature` for anything that is not exactly ``sha256=``
    and 64 hex characters (no whitespace, no other prefix, ASCII only).
    """
    if type(value) is not str:  # an exact str (every adapter's case) skips these checks
        if not value:
            raise MissingSignature()
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("ascii")
            except UnicodeDecodeError:
                raise MalformedSignature() from None
        elif not isinstance(value, str):
            raise MalformedSignature()
    elif not value:
        raise MissingSignature()
    # Exactly the prefix and 64 ASCII hex digits. bytes.fromhex skips
    # whitespace between pairs, so 64 characters give 32 bytes only when every
    # one is a hex digit; the ASCII check keeps "sha256=٣..." malformed.
    if len(value) == _HEADER_LENGTH and value.startswith(SIGNATURE_PREFIX) and value.isascii():
        try:
            digest = bytes.fromhex(value[_PREFIX_LENGTH:])
        except ValueError:
            raise MalformedSignature() from None
        if len(digest) == 32:
            return digest
    raise MalformedSignature()


def verify_signature(body: bytes, header: str | bytes | None, secrets: Iterable[bytes]) -> int:
    """Check *header* against *body* under each secret; return the index that matched.

    Every comparison is :func:`hmac.compare_digest` on raw digests. Raises a
    :class:`~kreuzberg_webhooks.SignatureError` subclass when none matches.
    """
    digest = parse_signature_header(header)
    for index, key in enumerate(secrets):
        if hmac.compare_digest(hmac.digest(key, body, "sha256"), digest):
            return index
    raise SignatureMismatch()


#: One secret prepared by :func:`prekey`: SHA-256 states after HMAC's inner and outer padded key.
KeyedSecret: TypeAlias = "tuple[_Hash, _Hash]"

_SHA256_BLOCK_SIZE = 64
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


def _keyed(key: bytes) -> KeyedSecret:
    # RFC 2104: the key is hashed when longer than a block, then zero-padded to it.
    if len(key) > _SHA256_BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK_SIZE, b"\0")
    return hashlib.sha256(key.translate(_INNER_PAD)), hashlib.sha256(key.translate(_OUTER_PAD))


def prekey(keys: Iterable[bytes]) -> tuple[KeyedSecret, ...]:
    """Prepare secrets once for :func:`signing_key_index`.

    Setting up an HMAC for a key costs about as much as hashing a small body
    (hmac.digest creates and keys a fresh context every call); a verifier
    with fixed secrets pays that once instead of on every delivery.
    """
    return tuple(_keyed(key) for key in keys)


def signing_key_index(body: bytes, header: str | bytes | None, keys: Sequence[KeyedSecret]) -> int:
    """The index in *keys* (prepared by :func:`prekey`) of the key that signed *body*:
    :func:`verify_signature` for prepared secrets, :class:`SignatureMismatch` when none did.

    HMAC-SHA256 (RFC 2104) continued from copies of the keyed states, so the
    shared ones are never updated and may be used from any number of threads;
    the result equals :func:`hmac.digest` (the tests compare them).
    """
    digest = parse_signature_header(header)
    for index, (inner, outer) in enumerate(keys):
        inner_hash = inner.copy()
        inner_hash.update(body)
        outer_hash = outer.copy()
        outer_hash.update(inner_hash.digest())
        if hmac.compare_digest(outer_hash.digest(), digest):
            return index
    raise SignatureMismatch()


class StreamingMac:
    """HMAC-SHA256 of ``prefix + body`` under each prepared key, advanced chunk by chunk as the body arrives.

    Started before the body from what the signature header says (the ``t=``
    format signs ``b"<t>."`` first), so the body itself need never be held
    whole to be checked. :attr:`header` and :attr:`keys` are what it was
    started for: a verifier uses its digests only for that header and those keys.
    """

    __slots__ = ("_digests", "_inner", "_outer", "header", "keys")

    def __init__(self, keys: Sequence[KeyedSecret], header: str, prefix: bytes = b"") -> None:
        self.keys = keys
        self.header = header
        self._inner = []
        for inner, _ in keys:
            inner_hash = inner.copy()
            inner_hash.update(prefix)
            self._inner.append(inner_hash)
        self._outer = tuple(outer for _, outer in keys)
        self._digests: tuple[bytes, ...] | None = None

    def update(self, chunk: bytes) -> None:
        """Add the body's next chunk."""
        for inner_hash in self._inner:
            inner_hash.update(chunk)

    def digests(self) -> tuple[bytes, ...]:
        """The HMAC under each key, in the keys' order (computed once, when the body is complete)."""
        if self._digests is None:
            finished = []
            for inner_hash, outer in zip(self._inner, self._outer, strict=True):
                outer_hash = outer.copy()
                outer_hash.update(inner_hash.digest())
                finished.append(outer_hash.digest())
            self._digests = tuple(finished)
        return self._digests


def matching_key_index(macs: Sequence[bytes], header: str | bytes | None) -> int:
    """:func:`signing_key_index` for HMACs already computed (a :class:`StreamingMac`'s digests):
    the index of the one that a ``sha256=`` *header* carries, :class:`SignatureMismatch` when none."""
    digest = parse_signature_header(header)
    for index, mac in enumerate(macs):
        if hmac.compare_digest(mac, digest):
            return index
    raise SignatureMismatch()


def _mac(keyed: KeyedSecret, *parts: bytes) -> bytes:
    # HMAC-SHA256 of the concatenated parts, without concatenating them (the body may be large).
    inner, outer = keyed
    inner_hash = inner.copy()
    for part in parts:
        inner_hash.update(part)
    outer_hash = outer.copy()
    outer_hash.update(inner_hash.digest())
    return outer_hash.digest()


def header_text(value: str | bytes | None) -> str:
    """A signature header's value as text: :class:`MissingSignature` when absent or
    empty, :class:`MalformedSignature` when it is not ASCII."""
    if not value:
        raise MissingSignature()
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedSignature() from None
    if not isinstance(value, str) or not value.isascii():
        raise MalformedSignature()
    return value


# -- the t=<unix seconds>,v1=<hex> format ------------------------------------------------

#: The vendor's guide rejects a ``t`` older than five minutes ("the replay window the
#: server itself enforces", so the sender signs every attempt afresh); the same skew ahead.
TIMESTAMPED_WINDOW = ReplayWindow(max_age=5 * 60, max_future=5 * 60)
#: A sender rotating its secret sends a ``v1=`` per secret; more than this is refused,
#: since each one costs an HMAC per configured secret.
MAX_TIMESTAMPED_SIGNATURES = 8
#: Unix seconds up to the year 33658; a longer ``t`` is a near miss, not a time.
_MAX_TIMESTAMP_DIGITS = 12


def sign_timestamped(body: bytes, secret: str | bytes | Sequence[str | bytes], *, timestamp: int | None = None) -> str:
    """Return ``t=<timestamp>,v1=<lowercase hex>`` for *body* (``timestamp`` defaults to now).

    The HMAC-SHA256 is over the bytes ``b"<timestamp>." + body``. Several
    secrets give one ``v1=`` each, as a sender rotating its secret does.
    """
    keys = tuple(_secret_bytes(s) for s in ((secret,) if isinstance(secret, (str, bytes)) else secret))
    if not keys or not all(keys):
        raise ConfigurationError("a webhook secret must not be empty")
    signed_at = int(time.time()) if timestamp is None else timestamp
    if type(signed_at) is not int or signed_at < 0:
        raise ConfigurationError("the signature timestamp must be a non-negative whole number of unix seconds")
    prefix = b"%d." % signed_at
    signatures = ",".join("v1=" + hmac.digest(key, prefix + body, "sha256").hex() for key in keys)
    return f"t={signed_at},{signatures}"


def parse_timestamped_header(value: str | bytes | None) -> tuple[int, bytes, tuple[bytes, ...]]:
    """Split a ``t=<unix seconds>,v1=<hex>[,v1=<hex>…]`` value into its parts.

    Returns the signed time, the exact signed prefix (``b"<t>."`` as sent) and
    the 32-byte digests of every ``v1=``. Elements of other versions are left
    alone. Anything else is :class:`MalformedSignature`: no ``t`` or two of
    them, a ``t`` that is not ASCII digits, no ``v1``, a ``v1`` that is not 64
    hex characters, an element that is not ``key=value``, any whitespace.
    """
    timestamp: str | None
    # The sender's own shape, t=<digits>,v1=<64 hex>, read without splitting it up:
    # this is every genuine delivery. Anything else takes the general path below.
    if type(value) is str and value.startswith("t=") and value.isascii():
        comma = value.find(",v1=")
        if len(value) == comma + 68:
            timestamp = value[2:comma]
            if timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS:
                try:
                    digest = bytes.fromhex(value[comma + 4 :])
                except ValueError:
                    digest = b""
                if len(digest) == 32:  # fewer when the 64 characters held whitespace
                    return int(timestamp), timestamp.encode("ascii") + b".", (digest,)
    text = header_text(value)  # ASCII from here on
    if not text.isprintable() or " " in text:
        raise MalformedSignature("the signature header contains whitespace or control characters")
    timestamp = None
    digests: list[bytes] = []
    for element in text.split(","):
        key, equals, item = element.partition("=")
        if not equals or not key:
            raise MalformedSignature("an element of the signature header is not key=value")
        if key == "t":
            if timestamp is not None:
                raise MalformedSignature("the signature header has more than one t=")
            timestamp = item
        elif key == "v1":
            # 64 ASCII characters without whitespace make 32 bytes exactly when all are hex.
            try:
                digest = bytes.fromhex(item) if len(item) == 64 else b""
            except ValueError:
                digest = b""
            if len(digest) != 32:
                raise MalformedSignature("a v1= signature is not 64 hex characters")
            digests.append(digest)
        # Any other key (another version, a later addition) is not ours to check.
    if timestamp is None:
        raise MalformedSignature("the signature header has no t= timestamp")
    if not (timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
        raise MalformedSignature("the signature header's t= is not a whole number of unix seconds")
    if not digests:
        raise MalformedSignature("the signature header has no v1= signature")
    if len(digests) > MAX_TIMESTAMPED_SIGNATURES:
        raise MalformedSignature(f"the signature header has more than {MAX_TIMESTAMPED_SIGNATURES} v1= signatures")
    return int(timestamp), timestamp.encode("ascii") + b".", tuple(digests)


# -- the schemes ---------------------------------------------------------------------------


class SignatureScheme(Protocol):
    """One format of the signature header: how to recognise it, check it and produce it.

    A :class:`~kreuzberg_webhooks.Verifier` hands a header to the first of its
    schemes that :meth:`claims` it.
    """

    @property
    def name(self) -> str:
        """The public name ``Verifier(schemes=...)`` knows it by."""
        ...

    @property
    def window(self) -> ReplayWindow | None:
        """The replay window of the time the scheme signs; ``None`` when it signs no time."""
        ...

    def claims(self, header: str) -> bool:
        """Whether *header* is (or tries to be) of this format."""
        ...

    def verify(self, body: bytes, header: str, keys: Sequence[KeyedSecret], now: float) -> int:
        """Return the index of the key whose signature *header* carries for *body*.

        Raises a :class:`~kreuzberg_webhooks.SignatureError` when none matches and
        a :class:`~kreuzberg_webhooks.TimestampOutOfWindow` when the signed time
        is outside :attr:`window`; never another exception.
        """
        ...

    def sign(self, body: bytes, secret: str | bytes, *, now: float | None = None) -> str:
        """The header value a sender puts on *body*."""
        ...


class Sha256Signature:
    """``sha256=<hex>``: HMAC-SHA256 of the raw body (dashboard webhooks). Signs no time."""

    __slots__ = ()

    name = "sha256"
    window = None

    def __repr__(self) -> str:
        return "Sha256Signature()"

    def claims(self, header: str) -> bool:
        """Whether *header* starts with ``sha256=``."""
        return header.startswith(SIGNATURE_PREFIX)

    def verify(self, body: bytes, header: str, keys: Sequence[KeyedSecret], now: float) -> int:
        """See :meth:`SignatureScheme.verify`."""
        return signing_key_index(body, header, keys)

    def sign(self, body: bytes, secret: str | bytes, *, now: float | None = None) -> str:
        """``sha256=<hex>`` for *body*; *now* is unused."""
        return sign(body, secret)


class TimestampedSignature:
    """``t=<unix seconds>,v1=<hex>``: HMAC-SHA256 of ``b"<t>." + body`` (inline webhooks).

    :param window: how far ``t`` may lie behind or ahead of the receiver's clock
        (default five minutes each way, :data:`TIMESTAMPED_WINDOW`). A ``t``
        outside it is 400 ``stale_timestamp`` / ``future_timestamp``.

    Several ``v1=`` values verify if any matches (the sender rotating its secret).
    """

    __slots__ = ("window",)

    name = "t-v1"

    def __init__(self, window: ReplayWindow = TIMESTAMPED_WINDOW) -> None:
        if not isinstance(window, ReplayWindow):
            raise ConfigurationError("the t=,v1= scheme's window must be a ReplayWindow")
        self.window = window

    def __repr__(self) -> str:
        return f"TimestampedSignature(window={self.window!r})"

    def claims(self, header: str) -> bool:
        """Whether *header* looks like ``t=…,v1=…`` (in any order, or with other versions only)."""
        return header.startswith("v") or "t=" in header or "v1=" in header

    def verify(self, body: bytes, header: str, keys: Sequence[KeyedSecret], now: float) -> int:
        """See :meth:`SignatureScheme.verify`; the window is checked once the signature matched."""
        timestamp, prefix, digests = parse_timestamped_header(header)
        for index, keyed in enumerate(keys):
            mac = _mac(keyed, prefix, body)
            # Every v1 is compared, so the time taken does not tell which one matched.
            matched = False
            for digest in digests:
                matched |= hmac.compare_digest(mac, digest)
            if matched:
                self.window.check(timestamp, now)
                return index
        raise SignatureMismatch()

    def verify_streamed(self, mac: StreamingMac, now: float) -> int:
        """:meth:`verify` for a body whose HMACs *mac* advanced as it arrived (started for ``mac.header``)."""
        timestamp, _, digests = parse_timestamped_header(mac.header)
        for index, computed in enumerate(mac.digests()):
            matched = False  # every v1 compared, as in verify()
            for digest in digests:
                matched |= hmac.compare_digest(computed, digest)
            if matched:
                self.window.check(timestamp, now)
                return index
        raise SignatureMismatch()

    def sign(self, body: bytes, secret: str | bytes, *, now: float | None = None) -> str:
        """``t=<now>,v1=<hex>`` for *body*, *now* (default: the current time) in whole seconds."""
        return sign_timestamped(body, secret, timestamp=None if now is None else int(now))


_SCHEMES: dict[str, type[Sha256Signature] | type[TimestampedSignature]] = {
    Sha256Signature.name: Sha256Signature,
    TimestampedSignature.name: TimestampedSignature,
}
#: What a :class:`~kreuzberg_webhooks.Verifier` accepts unless told otherwise: both formats.
DEFAULT_SCHEMES: tuple[str, ...] = tuple(_SCHEMES)


def resolve_schemes(schemes: str | SignatureScheme | Iterable[str | SignatureScheme]) -> tuple[SignatureScheme, ...]:
    """Turn scheme names (``"sha256"``, ``"t-v1"``) and scheme objects into schemes.

    Raises :class:`ConfigurationError` for an unknown name, nothing at all, or
    the same scheme twice.
    """
    single = isinstance(schemes, str) or not isinstance(schemes, Iterable)
    items: tuple[object, ...] = (schemes,) if single else tuple(schemes)  # type: ignore[arg-type]
    resolved: list[SignatureScheme] = []
    for item in items:
        if isinstance(item, str):
            factory = _SCHEMES.get(item)
            if factory is None:
                known = ", ".join(repr(name) for name in _SCHEMES)
                raise ConfigurationError(f"unknown signature scheme {item!r}: expected one of {known}")
            resolved.append(factory())
        elif (
            all(callable(getattr(item, method, None)) for method in ("claims", "verify", "sign"))
            and isinstance(getattr(item, "name", None), str)
            and isinstance(getattr(item, "window", False), ReplayWindow | None)
        ):
            resolved.append(item)  # type: ignore[arg-type]  # checked just above, structurally
        else:
            raise ConfigurationError(
                f"a signature scheme must be a name ({', '.join(_SCHEMES)}) or a SignatureScheme, "
                f"not {type(item).__name__}"
            )
    if not resolved:
        raise ConfigurationError("at least one signature scheme is required")
    names = [scheme.name for scheme in resolved]
    if len(set(names)) != len(names):
        raise ConfigurationError("a signature scheme is given twice")
    return tuple(resolved)


_BUILT_IN: tuple[SignatureScheme, ...] = (Sha256Signature(), TimestampedSignature())


def known_scheme_for(header: str) -> str | None:
    """The name of the built-in scheme whose format *header* has, if any."""
    for scheme in _BUILT_IN:
        if scheme.claims(header):
            return scheme.name
    return None
