"""Signatures: published vectors, their near misses, and properties of sign/verify."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import (
    ConfigurationError,
    InvalidPayload,
    MalformedSignature,
    MissingSignature,
    SignatureError,
    SignatureMismatch,
    Verifier,
    WeakSecretWarning,
    sign,
    verify_signature,
)
from kreuzberg_webhooks.testing import job_event_payload
from tests.errors import error_from

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_HEADER = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

RFC4231_KEY = "Jefe"
RFC4231_DATA = b"what do ya want for nothing?"
RFC4231_HEADER = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

SECRET = "signing-test-secret-0123456789abcdef"
NOW = 1_800_000_000.0

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


def quiet_verifier(secrets: Any, **options: Any) -> Verifier:
    """A verifier for short published secrets, without the weak-secret warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakSecretWarning)
        return Verifier(secrets, clock=lambda: NOW, **options)


# -- published vectors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        pytest.param(GITHUB_SECRET, GITHUB_BODY, GITHUB_HEADER, id="github"),
        pytest.param(RFC4231_KEY, RFC4231_DATA, RFC4231_HEADER, id="rfc4231-case-2"),
    ],
)
class TestPublishedVectors:
    def test_sign_produces_the_published_header(self, secret: str, body: bytes, header: str) -> None:
        assert sign(body, secret) == header

    def test_sign_accepts_the_secret_as_bytes(self, secret: str, body: bytes, header: str) -> None:
        assert sign(body, secret.encode()) == header

    def test_verify_signature_accepts_the_published_header(self, secret: str, body: bytes, header: str) -> None:
        assert verify_signature(body, header, [secret.encode()]) == 0

    def test_verifier_accepts_the_signature(self, secret: str, body: bytes, header: str) -> None:
        # The bodies are not JSON: past the signature, the verifier answers 400, not 401.
        verifier = quiet_verifier(secret)
        with pytest.raises(InvalidPayload) as caught:
            verifier.verify(body, {"X-Webhook-Signature": header})
        assert (caught.value.status_code, caught.value.reason) == (400, "invalid_json")


def test_uppercase_hex_digits_carry_the_same_digest() -> None:
    header = "sha256=" + GITHUB_HEADER.removeprefix("sha256=").upper()
    assert verify_signature(GITHUB_BODY, header, [GITHUB_SECRET.encode()]) == 0


# -- near misses ------------------------------------------------------------------

_HEX = GITHUB_HEADER.removeprefix("sha256=")

NEAR_MISSES = [
    pytest.param(GITHUB_HEADER + "\n", "malformed_signature", id="trailing-newline"),
    pytest.param(GITHUB_HEADER + "\r\n", "malformed_signature", id="trailing-crlf"),
    pytest.param(GITHUB_HEADER + " ", "malformed_signature", id="trailing-space"),
    pytest.param(" " + GITHUB_HEADER, "malformed_signature", id="leading-space"),
    pytest.param("sha1=" + _HEX[:40], "malformed_signature", id="sha1-prefix"),
    pytest.param("sha1=" + _HEX, "malformed_signature", id="sha1-prefix-64-hex"),
    pytest.param("SHA256=" + _HEX, "malformed_signature", id="uppercase-prefix"),
    pytest.param("sha256:" + _HEX, "malformed_signature", id="colon-separator"),
    pytest.param("sha256 =" + _HEX, "malformed_signature", id="space-before-equals"),
    pytest.param("sha512=" + _HEX, "malformed_signature", id="sha512-prefix"),
    pytest.param("sha256=" + _HEX[:63], "malformed_signature", id="63-hex"),
    pytest.param("sha256=" + _HEX + "0", "malformed_signature", id="65-hex"),
    pytest.param("sha256=" + _HEX * 2, "malformed_signature", id="128-hex"),
    pytest.param("sha256=", "malformed_signature", id="prefix-only"),
    pytest.param("sha256=" + _HEX[:32] + " " + _HEX[32:63], "malformed_signature", id="space-inside-hex"),
    pytest.param("sha256=" + " ".join(_HEX[i : i + 2] for i in range(0, 64, 2)), "malformed_signature", id="spaced"),
    pytest.param(_HEX, "malformed_signature", id="raw-hex-without-prefix"),
    pytest.param("sha256=" + "g" * 64, "malformed_signature", id="non-hex-letters"),
    pytest.param("sha256=" + _HEX[:62] + "é", "malformed_signature", id="non-ascii-str"),
    pytest.param("sha256=" + "\u0663" * 64, "malformed_signature", id="arabic-indic-digits"),
    pytest.param("sha256=" + "\uff10" * 64, "malformed_signature", id="fullwidth-digits"),
    pytest.param("sha256=" + _HEX[:63] + "\x00", "malformed_signature", id="nul-byte"),
    pytest.param(f"{GITHUB_HEADER}, {GITHUB_HEADER}", "malformed_signature", id="header-sent-twice"),
    pytest.param("sha256=" + "0" * 64, "signature_mismatch", id="zero-digest"),
    pytest.param("sha256=" + _HEX[:63] + ("0" if _HEX[63] != "0" else "1"), "signature_mismatch", id="last-digit"),
    pytest.param("", "missing_signature", id="empty"),
]

BYTES_NEAR_MISSES = [
    pytest.param(b"sha256=" + "é".encode() * 32, "malformed_signature", id="utf8-bytes"),
    pytest.param(b"sha256=" + b"\xff" * 64, "malformed_signature", id="invalid-utf8-bytes"),
    pytest.param(b"sha256=" + _HEX.encode()[:63] + b"\x80", "malformed_signature", id="latin1-byte"),
    pytest.param(b"", "missing_signature", id="empty-bytes"),
]


@pytest.mark.parametrize(("header", "reason"), NEAR_MISSES + BYTES_NEAR_MISSES)
def test_near_misses_are_401_with_their_reason(header: str | bytes, reason: str) -> None:
    verifier = quiet_verifier(GITHUB_SECRET)
    with pytest.raises(SignatureError) as caught:
        verifier.verify(GITHUB_BODY, {"X-Webhook-Signature": header})  # type: ignore[dict-item]
    assert (caught.value.status_code, caught.value.reason) == (401, reason)


@pytest.mark.parametrize(("header", "reason"), NEAR_MISSES + BYTES_NEAR_MISSES)
def test_verify_signature_raises_only_signature_errors(header: str | bytes, reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        verify_signature(GITHUB_BODY, header, [GITHUB_SECRET.encode()])
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param(None, MissingSignature, id="none"),
        pytest.param(12345, MalformedSignature, id="int"),
        pytest.param(["sha256=" + _HEX], MalformedSignature, id="list"),
        pytest.param(bytearray(GITHUB_HEADER.encode()), None, id="bytearray-is-accepted"),
    ],
)
def test_header_values_of_other_types(value: Any, error: type[Exception] | None) -> None:
    if error is None:
        assert verify_signature(GITHUB_BODY, value, [GITHUB_SECRET.encode()]) == 0
    else:
        with pytest.raises(error):
            verify_signature(GITHUB_BODY, value, [GITHUB_SECRET.encode()])


def test_a_valid_json_delivery_signed_right_passes_the_same_checks() -> None:
    # The control for the near misses above: a well-formed header on a valid body verifies.
    payload = job_event_payload(now=NOW)
    body = json.dumps(payload).encode()
    event = quiet_verifier(SECRET).verify(body, {"X-Webhook-Signature": sign(body, SECRET)})
    assert event.event_id == payload["event_id"]


# -- sign() ---------------------------------------------------------------------


def test_sign_is_lowercase_hex_under_the_prefix() -> None:
    value = sign(b"{}", SECRET)
    assert value.startswith("sha256=")
    digest = value.removeprefix("sha256=")
    assert len(digest) == 64
    assert digest == digest.lower()
    int(digest, 16)


def test_a_str_secret_is_keyed_by_its_utf8_bytes() -> None:
    secret = "géheimnis-ünïcode-0123456789abcdef"
    assert sign(b"{}", secret) == sign(b"{}", secret.encode("utf-8"))
    assert sign(b"{}", secret) != sign(b"{}", secret.encode("latin-1"))


@pytest.mark.parametrize(
    "secret",
    [pytest.param("", id="empty-str"), pytest.param(b"", id="empty-bytes"), pytest.param(42, id="int")],
)
def test_sign_refuses_unusable_secrets(secret: Any) -> None:
    with pytest.raises(ConfigurationError):
        sign(b"{}", secret)


def test_verify_signature_reports_which_secret_matched() -> None:
    keys = [b"old-secret-0123456789abcdef0123456789", b"new-secret-0123456789abcdef0123456789"]
    assert verify_signature(b"{}", sign(b"{}", keys[1]), keys) == 1
    assert verify_signature(b"{}", sign(b"{}", keys[0]), keys) == 0
    with pytest.raises(SignatureMismatch):
        verify_signature(b"{}", sign(b"{}", b"third-secret-0123456789abcdef01234"), keys)


# -- properties -------------------------------------------------------------------

secrets_ = st.one_of(st.binary(min_size=1, max_size=100), st.text(min_size=1, max_size=60))


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _flip(data: bytes, bit: int) -> bytes:
    index = bit % (len(data) * 8)
    flipped = bytearray(data)
    flipped[index // 8] ^= 1 << (index % 8)
    return bytes(flipped)


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=2048), secret=secrets_)
def test_any_body_and_secret_round_trip(body: bytes, secret: str | bytes) -> None:
    header = sign(body, secret)
    assert verify_signature(body, header, [_key(secret)]) == 0
    error = error_from(lambda: quiet_verifier(secret).verify(body, {"x-webhook-signature": header}))
    # Past the signature, only the payload or the replay window may object.
    assert not isinstance(error, SignatureError)


@PROPERTY_SETTINGS
@given(body=st.binary(min_size=1, max_size=512), secret=secrets_, bit=st.integers(min_value=0))
def test_flipping_any_bit_of_the_body_is_rejected(body: bytes, secret: str | bytes, bit: int) -> None:
    header = sign(body, secret)
    with pytest.raises(SignatureMismatch):
        verify_signature(_flip(body, bit), header, [_key(secret)])
    with pytest.raises(SignatureMismatch):
        quiet_verifier(secret).verify(_flip(body, bit), {"X-Webhook-Signature": header})


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=512), secret=secrets_, bit=st.integers(min_value=0, max_value=255))
def test_flipping_any_bit_of_the_digest_is_rejected(body: bytes, secret: str | bytes, bit: int) -> None:
    digest = bytes.fromhex(sign(body, secret).removeprefix("sha256="))
    forged = "sha256=" + _flip(digest, bit).hex()
    with pytest.raises(SignatureMismatch):
        verify_signature(body, forged, [_key(secret)])
    with pytest.raises(SignatureMismatch):
        quiet_verifier(secret).verify(body, {"X-Webhook-Signature": forged})


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=512), secret=st.binary(min_size=1, max_size=100), bit=st.integers(min_value=0))
def test_flipping_any_bit_of_the_secret_is_rejected(body: bytes, secret: bytes, bit: int) -> None:
    # Same length, different bytes: HMAC's zero padding cannot make the keys equivalent.
    header = sign(body, _flip(secret, bit))
    with pytest.raises(SignatureMismatch):
        verify_signature(body, header, [secret])
    with pytest.raises(SignatureMismatch):
        quiet_verifier(secret).verify(body, {"X-Webhook-Signature": header})


@PROPERTY_SETTINGS
@given(header=st.one_of(st.text(max_size=80), st.binary(max_size=80)))
def test_any_header_value_is_accepted_or_a_signature_error(header: str | bytes) -> None:
    error = error_from(lambda: verify_signature(b"{}", header, [SECRET.encode()]))
    assert error is None or (isinstance(error, SignatureError) and error.status_code == 401)
