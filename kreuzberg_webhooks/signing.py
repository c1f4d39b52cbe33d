"""Sign and verify the ``X-Webhook-Signature`` header.

The header is ``sha256=`` followed by the lowercase hex HMAC-SHA256 of the raw
body bytes, keyed with the secret's UTF-8 bytes (``CONTRACT.md`` §2). The
header's shape is checked before anything is decoded, and digests are compared
as bytes in constant time.
"""

from __future__ import annotations

import hmac
import warnings
from collections.abc import Iterable

from .exceptions import ConfigurationError, MalformedSignature, MissingSignature, SignatureMismatch

__all__ = [
    "MIN_SECRET_BYTES",
    "SIGNATURE_PREFIX",
    "WeakSecretWarning",
    "normalize_secrets",
    "parse_signature_header",
    "sign",
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
    if not value:
        raise MissingSignature()
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise MalformedSignature() from None
    elif not isinstance(value, str):
        raise MalformedSignature()
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


def prekey(keys: Iterable[bytes]) -> tuple[hmac.HMAC, ...]:
    """HMAC-SHA256 objects keyed once with each secret, for :func:`verify_prekeyed`.

    Keying an HMAC costs about as much as hashing a small body; a verifier
    with fixed secrets pays it once instead of on every delivery.
    """
    return tuple(hmac.new(key, digestmod="sha256") for key in keys)


def verify_prekeyed(body: bytes, header: str | bytes | None, macs: tuple[hmac.HMAC, ...]) -> int:
    """:func:`verify_signature` with secrets prepared by :func:`prekey`.

    Each delivery hashes a copy of the keyed object, so the shared ones are
    never updated and may be used from any number of threads.
    """
    digest = parse_signature_header(header)
    for index, keyed in enumerate(macs):
        mac = keyed.copy()
        mac.update(body)
        if hmac.compare_digest(mac.digest(), digest):
            return index
    raise SignatureMismatch()
