"""Sign and verify the ``X-Webhook-Signature`` header.

The header is ``sha256=`` followed by the lowercase hex HMAC-SHA256 of the raw
body bytes, keyed with the secret's UTF-8 bytes (``docs/contract.md`` §2). The
header's shape is checked before anything is decoded, and digests are compared
as bytes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from hashlib import _Hash

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
    """Prepare secrets once for :func:`verify_prekeyed`.

    Setting up an HMAC for a key costs about as much as hashing a small body
    (hmac.digest creates and keys a fresh context every call); a verifier
    with fixed secrets pays that once instead of on every delivery.
    """
    return tuple(_keyed(key) for key in keys)


def verify_prekeyed(body: bytes, header: str | bytes | None, keys: tuple[KeyedSecret, ...]) -> int:
    """:func:`verify_signature` with secrets prepared by :func:`prekey`.

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
