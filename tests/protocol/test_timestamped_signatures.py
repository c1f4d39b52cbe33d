"""The ``t=<unix seconds>,v1=<hex>`` format: vectors, near misses, windows, schemes and properties."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import warnings
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import (
    ConfigurationError,
    MalformedSignature,
    MissingSignature,
    Receiver,
    ReplayWindow,
    Sha256Signature,
    SignatureMismatch,
    TimestampedSignature,
    Verifier,
    WebhookError,
    WebhookEvent,
    sign,
    sign_timestamped,
)
from kreuzberg_webhooks.protocol.signing import MAX_TIMESTAMPED_SIGNATURES, parse_timestamped_header, prekey
from kreuzberg_webhooks.settings import MISSING, receiver_from_settings
from kreuzberg_webhooks.testing import job_event_payload, signed_delivery, webhook_event_payload
from tests.errors import error_from

SECRET = "timestamped-test-secret-0123456789abcdef"
OTHER_SECRET = "timestamped-other-secret-0123456789abcdef"
NOW = 1_800_000_000
HEADER = "X-Webhook-Signature"
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)

# Computed with `openssl dgst -sha256 -hmac <key>` over "<t>." + body, outside Python altogether.
OPENSSL_SECRET = "whsec_vendor_guide_example_secret_0123456789"
OPENSSL_T = 1764651600
OPENSSL_BODY = b'{"event":"job.completed","job_id":"550e8400-e29b-41d4-a716-446655440000"}'
OPENSSL_V1 = "c2479f4df34c7a38da1678cbfe1786a69cd1d7a31082b9b3b8bdfd2e7fbfbf5f"
OPENSSL_EMPTY_BODY_KEY = "Jefe"
OPENSSL_EMPTY_BODY_V1 = "11652bae6a7c7980e601386ce8491eb6dee4eb12a282617846c88eac1ccd064c"


def reference_v1(secret: str, t: int | str, body: bytes) -> str:
    """The signature as the vendor describes it, with the standard library alone."""
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def event_body(now: float = NOW, **overrides: Any) -> bytes:
    return json.dumps(webhook_event_payload(now=now, **overrides)).encode()


def verifier(*, secrets: Any = SECRET, now: float = NOW, **options: Any) -> Verifier:
    return Verifier(secrets, clock=lambda: now, **options)


def verdict(v: Verifier, body: bytes, header: str | bytes | None, **kwargs: Any) -> tuple[int, str]:
    """(status, reason) for a delivery; (200, "ok") when it verifies."""
    headers = {} if header is None else {HEADER: header}
    try:
        v.verify(body, headers, **kwargs)  # type: ignore[arg-type]  # bytes headers on purpose
    except WebhookError as error:
        return error.status_code, error.reason
    return 200, "ok"


# -- vectors --------------------------------------------------------------------------------


def test_sign_timestamped_matches_the_openssl_vector() -> None:
    assert sign_timestamped(OPENSSL_BODY, OPENSSL_SECRET, timestamp=OPENSSL_T) == f"t={OPENSSL_T},v1={OPENSSL_V1}"


def test_the_openssl_vector_over_an_empty_body() -> None:
    assert sign_timestamped(b"", OPENSSL_EMPTY_BODY_KEY, timestamp=OPENSSL_T).endswith("v1=" + OPENSSL_EMPTY_BODY_V1)


def test_scheme_accepts_the_openssl_vector() -> None:
    header = f"t={OPENSSL_T},v1={OPENSSL_V1}"
    assert TimestampedSignature().verify(OPENSSL_BODY, header, prekey([OPENSSL_SECRET.encode()]), OPENSSL_T) == 0


@pytest.mark.parametrize("body", [b"", b"{}", event_body(), bytes(range(256)), b"x" * 70_000], ids=len)
def test_sign_timestamped_equals_hmac_over_t_dot_body(body: bytes) -> None:
    assert sign_timestamped(body, SECRET, timestamp=NOW) == f"t={NOW},v1={reference_v1(SECRET, NOW, body)}"


def test_a_secret_longer_than_a_block_is_hashed_first_as_hmac_does() -> None:
    long_secret = "k" * 200
    body = event_body()
    header = f"t={NOW},v1={reference_v1(long_secret, NOW, body)}"
    assert TimestampedSignature().verify(body, header, prekey([long_secret.encode()]), NOW) == 0


def test_the_verifier_accepts_a_header_built_with_hmac_alone() -> None:
    body = event_body()
    event = verifier().verify(body, {HEADER: f"t={NOW},v1={reference_v1(SECRET, NOW, body)}"})
    assert isinstance(event, WebhookEvent)


def test_leading_zeros_in_t_are_signed_as_sent() -> None:
    body = event_body()
    t = f"00{NOW}"
    assert verdict(verifier(), body, f"t={t},v1={reference_v1(SECRET, t, body)}") == (200, "ok")
    # The same digits without the zeros are a different message.
    assert verdict(verifier(), body, f"t={t},v1={reference_v1(SECRET, NOW, body)}") == (401, "signature_mismatch")


def test_rotation_several_secrets_sign_one_v1_each() -> None:
    body = event_body()
    header = sign_timestamped(body, [OTHER_SECRET, SECRET], timestamp=NOW)
    assert header == f"t={NOW},v1={reference_v1(OTHER_SECRET, NOW, body)},v1={reference_v1(SECRET, NOW, body)}"
    assert verdict(verifier(), body, header) == (200, "ok")


@pytest.mark.parametrize("position", [0, 1, 2])
def test_any_matching_v1_verifies(position: int) -> None:
    body = event_body()
    values = [reference_v1(f"stranger-{i}-secret-0123456789abcdef", NOW, body) for i in range(2)]
    values.insert(position, reference_v1(SECRET, NOW, body))
    header = f"t={NOW}," + ",".join(f"v1={value}" for value in values)
    assert verdict(verifier(), body, header) == (200, "ok")


def test_the_receivers_rotated_secrets_each_verify() -> None:
    body = event_body()
    v = verifier(secrets=[OTHER_SECRET, SECRET])
    assert (
        TimestampedSignature().verify(
            body, sign_timestamped(body, SECRET, timestamp=NOW), prekey([OTHER_SECRET.encode(), SECRET.encode()]), NOW
        )
        == 1
    )
    assert verdict(v, body, sign_timestamped(body, OTHER_SECRET, timestamp=NOW)) == (200, "ok")


def test_elements_in_any_order_and_other_versions_beside_v1_verify() -> None:
    body = event_body()
    v1 = reference_v1(SECRET, NOW, body)
    for header in (f"v1={v1},t={NOW}", f"t={NOW},v0={'ab' * 32},v1={v1}", f"v2=xyz,t={NOW},v1={v1}"):
        assert verdict(verifier(), body, header) == (200, "ok"), header


def test_uppercase_hex_carries_the_same_digest() -> None:
    # As for sha256=: the digest is compared as bytes.
    body = event_body()
    assert verdict(verifier(), body, f"t={NOW},v1={reference_v1(SECRET, NOW, body).upper()}") == (200, "ok")


# -- near misses --------------------------------------------------------------------------

_BODY = event_body()
_V1 = reference_v1(SECRET, NOW, _BODY)
_T = f"t={NOW}"

NEAR_MISSES = [
    pytest.param(f"v1={_V1}", "malformed_signature", id="missing-t"),
    pytest.param(f"t=,v1={_V1}", "malformed_signature", id="empty-t"),
    pytest.param(f"t=abc,v1={_V1}", "malformed_signature", id="non-numeric-t"),
    pytest.param(f"t={NOW}.5,v1={_V1}", "malformed_signature", id="fractional-t"),
    pytest.param(f"t=-{NOW},v1={_V1}", "malformed_signature", id="negative-t"),
    pytest.param(f"t=+{NOW},v1={_V1}", "malformed_signature", id="plus-sign-t"),
    pytest.param(f"t=1_800_000_000,v1={_V1}", "malformed_signature", id="underscores-in-t"),
    pytest.param(f"t=0x{NOW:x},v1={_V1}", "malformed_signature", id="hex-t"),
    pytest.param(f"t={'1' * 13},v1={_V1}", "malformed_signature", id="13-digit-t"),
    pytest.param("t=" + "\u0661" * 10 + f",v1={_V1}", "malformed_signature", id="arabic-indic-digits-t"),
    pytest.param(f"{_T},v1=", "malformed_signature", id="empty-v1"),
    pytest.param(f"{_T},v1={'g' * 64}", "malformed_signature", id="non-hex-v1"),
    pytest.param(f"{_T},v1={_V1[:63]}", "malformed_signature", id="63-hex-v1"),
    pytest.param(f"{_T},v1={_V1}0", "malformed_signature", id="65-hex-v1"),
    pytest.param(f"{_T},v1={_V1 * 2}", "malformed_signature", id="128-hex-v1"),
    pytest.param(f"{_T},v1=sha256={_V1}", "malformed_signature", id="prefixed-v1"),
    pytest.param(f"{_T},v0={_V1}", "malformed_signature", id="only-v0"),
    pytest.param(f"{_T},v2={_V1}", "malformed_signature", id="only-v2"),
    pytest.param(f"{_T}", "malformed_signature", id="t-only"),
    pytest.param(f"{_T},{_T},v1={_V1}", "malformed_signature", id="duplicated-t-same-value"),
    pytest.param(f"{_T},t={NOW + 1},v1={_V1}", "malformed_signature", id="duplicated-t-other-value"),
    pytest.param(f"{_T}, v1={_V1}", "malformed_signature", id="space-after-comma"),
    pytest.param(f" {_T},v1={_V1}", "malformed_signature", id="leading-space"),
    pytest.param(f"{_T},v1={_V1} ", "malformed_signature", id="trailing-space"),
    pytest.param(f"t = {NOW},v1={_V1}", "malformed_signature", id="spaces-around-equals"),
    pytest.param(f"{_T},v1={_V1}\t", "malformed_signature", id="trailing-tab"),
    pytest.param(f"{_T},v1={_V1}\r\n", "malformed_signature", id="trailing-crlf"),
    pytest.param(f"{_T},v1={_V1}, {_T},v1={_V1}", "malformed_signature", id="header-sent-twice"),
    pytest.param(f"{_T};v1={_V1}", "malformed_signature", id="semicolon-separator"),
    pytest.param(f"{_T},v1={_V1},", "malformed_signature", id="trailing-comma"),
    pytest.param(f",{_T},v1={_V1}", "malformed_signature", id="leading-comma"),
    pytest.param(f"{_T},,v1={_V1}", "malformed_signature", id="empty-element"),
    pytest.param(f"{_T},v1={_V1},junk", "malformed_signature", id="element-without-equals"),
    pytest.param(f"{_T},={_V1}", "malformed_signature", id="empty-key"),
    pytest.param(f"T={NOW},V1={_V1}", "malformed_signature", id="uppercase-keys"),
    pytest.param(f"{_T},v1={_V1[:62]}é", "malformed_signature", id="non-ascii"),
    pytest.param(f"{_T},v1={_V1[:63]}\x00", "malformed_signature", id="nul-byte"),
    pytest.param(
        f"{_T}," + ",".join([f"v1={_V1}"] * (MAX_TIMESTAMPED_SIGNATURES + 1)), "malformed_signature", id="too-many-v1"
    ),
    pytest.param(f"t={NOW + 1},v1={_V1}", "signature_mismatch", id="t-changed-after-signing"),
    pytest.param(f"{_T},v1={reference_v1(OTHER_SECRET, NOW, _BODY)}", "signature_mismatch", id="other-secret"),
    pytest.param(
        f"{_T},v1={hmac.new(SECRET.encode(), _BODY, hashlib.sha256).hexdigest()}",
        "signature_mismatch",
        id="hmac-over-body-without-t",
    ),
    pytest.param(f"{_T},v1={reference_v1(SECRET, NOW, _BODY + b' ')}", "signature_mismatch", id="other-body"),
    pytest.param("", "missing_signature", id="empty-header"),
]


@pytest.mark.parametrize(("header", "reason"), NEAR_MISSES)
def test_near_misses_are_401_with_a_stable_reason(header: str, reason: str) -> None:
    assert verdict(verifier(), _BODY, header) == (401, reason)


@pytest.mark.parametrize(("header", "reason"), [p for p in NEAR_MISSES if p.values[1] == "malformed_signature"])
def test_near_misses_as_bytes_are_401_too(header: str, reason: str) -> None:
    assert verdict(verifier(), _BODY, header.encode("utf-8")) == (401, reason)


def test_a_near_miss_raises_the_documented_classes() -> None:
    with pytest.raises(MalformedSignature):
        parse_timestamped_header(f"{_T},v1=")
    with pytest.raises(MissingSignature):
        parse_timestamped_header(None)
    with pytest.raises(SignatureMismatch):
        TimestampedSignature().verify(_BODY, f"t={NOW + 1},v1={_V1}", prekey([SECRET.encode()]), NOW)


def test_parse_returns_the_time_the_signed_prefix_and_every_digest() -> None:
    other = "ab" * 32
    t, prefix, digests = parse_timestamped_header(f"t=0{NOW},v1={_V1},v0=zz,v1={other}")
    assert (t, prefix, digests) == (NOW, f"0{NOW}.".encode(), (bytes.fromhex(_V1), bytes.fromhex(other)))


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_header_text_is_answered_never_raised(header: str) -> None:
    status, reason = verdict(verifier(), _BODY, header)
    assert (status, reason) in {(401, "malformed_signature"), (401, "missing_signature"), (401, "signature_mismatch")}


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_any_header_bytes_are_answered_never_raised(header: bytes) -> None:
    status, _ = verdict(verifier(), _BODY, header)
    assert status == 401


@given(
    st.lists(
        st.tuples(st.sampled_from(["t", "v1", "v0", "x", "", "T"]), st.sampled_from([str(NOW), _V1, "", "zz", "1 "])),
        max_size=6,
    )
)
@settings(max_examples=300, deadline=None)
def test_any_combination_of_elements_is_answered_never_raised(elements: list[tuple[str, str]]) -> None:
    header = ",".join(f"{key}={value}" for key, value in elements)
    status, reason = verdict(verifier(), _BODY, header)
    expected_ok = (
        [key for key, _ in elements].count("t") == 1
        and dict(elements).get("t") == str(NOW)
        and all(value == _V1 for key, value in elements if key == "v1")
        and any(key == "v1" for key, _ in elements)
        and all(key for key, _ in elements)
        and not any(" " in value for _, value in elements)
    )
    assert (status == 200) == expected_ok, (header, status, reason)


# -- the t window ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param(-300, (200, "ok"), id="exactly-5-minutes-old"),
        pytest.param(-301, (400, "stale_timestamp"), id="5-minutes-1-second-old"),
        pytest.param(-86_400, (400, "stale_timestamp"), id="a-day-old"),
        pytest.param(300, (200, "ok"), id="exactly-5-minutes-ahead"),
        pytest.param(301, (400, "future_timestamp"), id="5-minutes-1-second-ahead"),
        pytest.param(0, (200, "ok"), id="now"),
    ],
)
def test_t_has_its_own_five_minute_window(offset: int, expected: tuple[int, str]) -> None:
    body = event_body()
    assert verdict(verifier(), body, sign_timestamped(body, SECRET, timestamp=NOW + offset)) == expected


def test_a_forged_stale_signature_is_401_not_400() -> None:
    # The window is looked at only once the signature is known to be the sender's.
    body = event_body()
    assert verdict(verifier(), body, sign_timestamped(body, OTHER_SECRET, timestamp=NOW - 3600)) == (
        401,
        "signature_mismatch",
    )


def test_the_t_window_is_configurable() -> None:
    body = event_body()
    wide = verifier(schemes=[TimestampedSignature(window=ReplayWindow(max_age=3600, max_future=0))])
    assert verdict(wide, body, sign_timestamped(body, SECRET, timestamp=NOW - 3000)) == (200, "ok")
    assert verdict(wide, body, sign_timestamped(body, SECRET, timestamp=NOW + 1)) == (400, "future_timestamp")


def test_the_body_timestamp_window_still_applies_under_a_fresh_t() -> None:
    # A fresh t on a replayed body of three days ago: the sender would not do that.
    body = event_body(now=NOW - 3 * 86_400)
    assert verdict(verifier(), body, sign_timestamped(body, SECRET, timestamp=NOW)) == (400, "stale_timestamp")


def test_a_late_retry_is_resigned_and_accepted_within_the_body_window() -> None:
    # Attempt 5 comes about 11 minutes after the event: a fresh t, the same body.
    body = event_body(now=NOW - 11 * 60)
    assert verdict(verifier(), body, sign_timestamped(body, SECRET, timestamp=NOW)) == (200, "ok")


def test_an_explicit_now_applies_to_t_too() -> None:
    body = event_body()
    header = sign_timestamped(body, SECRET, timestamp=NOW)
    assert verdict(verifier(now=0), body, header, now=NOW) == (200, "ok")
    assert verdict(verifier(now=NOW), body, header, now=NOW + 301) == (400, "stale_timestamp")


# -- choosing the schemes -------------------------------------------------------------------


def test_by_default_both_formats_verify() -> None:
    body = event_body()
    v = verifier()
    assert [scheme.name for scheme in v.schemes] == ["sha256", "t-v1"]
    assert verdict(v, body, sign(body, SECRET)) == (200, "ok")
    assert verdict(v, body, sign_timestamped(body, SECRET, timestamp=NOW)) == (200, "ok")


def test_both_formats_still_need_the_secret() -> None:
    body = event_body()
    assert verdict(verifier(), body, sign(body, OTHER_SECRET)) == (401, "signature_mismatch")
    assert verdict(verifier(), body, sign_timestamped(body, OTHER_SECRET, timestamp=NOW)) == (401, "signature_mismatch")


@pytest.mark.parametrize(
    ("schemes", "accepted", "refused"),
    [
        pytest.param(("sha256",), "sha256", "t-v1", id="sha256-only"),
        pytest.param("sha256", "sha256", "t-v1", id="sha256-as-a-string"),
        pytest.param(("t-v1",), "t-v1", "sha256", id="t-v1-only"),
        pytest.param([TimestampedSignature()], "t-v1", "sha256", id="scheme-object"),
        pytest.param([Sha256Signature()], "sha256", "t-v1", id="sha256-object"),
    ],
)
def test_a_verifier_can_be_restricted_to_one_format(schemes: Any, accepted: str, refused: str) -> None:
    body = event_body()
    v = verifier(schemes=schemes)
    signers = {"sha256": lambda: sign(body, SECRET), "t-v1": lambda: sign_timestamped(body, SECRET, timestamp=NOW)}
    assert verdict(v, body, signers[accepted]()) == (200, "ok")
    with pytest.raises(MalformedSignature) as caught:
        v.verify(body, {HEADER: signers[refused]()})
    assert f"a {refused} signature" in caught.value.detail
    assert caught.value.status_code == 401


def test_the_order_of_the_schemes_is_kept() -> None:
    assert [s.name for s in verifier(schemes=("t-v1", "sha256")).schemes] == ["t-v1", "sha256"]
    body = event_body()
    assert verdict(verifier(schemes=("t-v1", "sha256")), body, sign(body, SECRET)) == (200, "ok")


@pytest.mark.parametrize(
    "schemes",
    [
        pytest.param(("sha512",), id="unknown-name"),
        pytest.param(("SHA256",), id="wrong-case"),
        pytest.param((), id="none"),
        pytest.param(("sha256", "sha256"), id="twice"),
        pytest.param((42,), id="not-a-scheme"),
        pytest.param(42, id="an-int"),
        pytest.param(("t-v1", TimestampedSignature()), id="same-scheme-by-name-and-object"),
        pytest.param(
            [type("NoWindow", (Sha256Signature,), {"__slots__": (), "name": "x", "window": 300})()],
            id="window-not-a-replay-window",
        ),
    ],
)
def test_schemes_that_cannot_work_are_refused(schemes: Any) -> None:
    with pytest.raises(ConfigurationError):
        verifier(schemes=schemes)


def test_a_t_window_that_is_not_a_window_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        TimestampedSignature(window=300)  # type: ignore[arg-type]


def test_the_receiver_forwards_schemes() -> None:
    receiver = Receiver(SECRET, schemes=("t-v1",))
    assert [s.name for s in receiver.verifier.schemes] == ["t-v1"]


def test_max_span_covers_the_longest_window_in_use() -> None:
    default = verifier()
    # The job documents' 7 days + 5 min beat the body's 24 h + 5 min, which beat the t= 10 min.
    assert default.max_span == default.document_window.span > default.window.span
    tiny = ReplayWindow(max_age=30, max_future=0)
    short = verifier(window=ReplayWindow(max_age=60, max_future=0), document_window=tiny)
    assert short.max_span == 600  # the t= window's 5 min back + 5 min ahead
    assert short.window.span == 60  # the body's window is still reachable as before
    only_sha = verifier(window=ReplayWindow(max_age=60, max_future=0), document_window=tiny, schemes=("sha256",))
    assert only_sha.max_span == 60
    with pytest.raises(ConfigurationError):  # no window is unbounded: no store could cover it
        TimestampedSignature(window=ReplayWindow(math.inf, math.inf))


def test_a_custom_scheme_plugs_in() -> None:
    class Prefixed:
        """sha256= under another name: enough to show the verifier hands the header over."""

        name = "custom"
        window = ReplayWindow(max_age=10, max_future=10)

        def claims(self, header: str) -> bool:
            return header.startswith("custom=")

        def verify(self, body: bytes, header: str, keys: Any, now: float) -> int:
            return Sha256Signature().verify(body, header.replace("custom=", "sha256=", 1), keys, now)

        def sign(self, body: bytes, secret: str | bytes, *, now: float | None = None) -> str:
            return sign(body, secret).replace("sha256=", "custom=", 1)

    body = event_body()
    v = verifier(schemes=[Prefixed(), "t-v1"])
    assert verdict(v, body, Prefixed().sign(body, SECRET)) == (200, "ok")
    assert verdict(v, body, sign(body, SECRET))[1] == "malformed_signature"
    assert v.max_span == max(v.window.span, v.document_window.span)  # the custom 20 s window is shorter


# -- the resolver path --------------------------------------------------------------------


def test_a_resolver_receives_none_for_a_webhook_event_and_its_secret_verifies() -> None:
    asked: list[str | None] = []

    def resolve(project_id: str | None) -> str:
        asked.append(project_id)
        return SECRET

    body = event_body()
    v = verifier(secrets=resolve)
    assert verdict(v, body, sign_timestamped(body, SECRET, timestamp=NOW)) == (200, "ok")
    assert verdict(v, body, sign_timestamped(body, OTHER_SECRET, timestamp=NOW)) == (401, "signature_mismatch")
    assert asked == [None, None]


def test_a_small_event_may_be_signed_t_v1_too() -> None:
    body = json.dumps(job_event_payload(now=NOW)).encode()
    assert verdict(verifier(), body, sign_timestamped(body, SECRET, timestamp=NOW)) == (200, "ok")


# -- properties -----------------------------------------------------------------------------

secrets = st.text(min_size=1, max_size=80).filter(lambda s: s.strip() != "") | st.binary(min_size=1, max_size=100)


@given(body=st.binary(max_size=2000), secret=secrets, t=st.integers(min_value=0, max_value=10**12 - 1))
@PROPERTY_SETTINGS
def test_round_trip_any_body_any_secret_any_time(body: bytes, secret: str | bytes, t: int) -> None:
    header = sign_timestamped(body, secret, timestamp=t)
    key = secret.encode() if isinstance(secret, str) else secret
    assert header == f"t={t},v1={hmac.new(key, f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"
    assert TimestampedSignature().verify(body, header, prekey([key]), t) == 0


@given(body=st.binary(min_size=1, max_size=500), secret=secrets, bit=st.integers(min_value=0))
@PROPERTY_SETTINGS
def test_any_flipped_bit_of_the_body_is_a_mismatch(body: bytes, secret: str | bytes, bit: int) -> None:
    header = sign_timestamped(body, secret, timestamp=NOW)
    position = bit % (len(body) * 8)
    tampered = bytearray(body)
    tampered[position // 8] ^= 1 << (position % 8)
    key = secret.encode() if isinstance(secret, str) else secret
    with pytest.raises(SignatureMismatch):
        TimestampedSignature().verify(bytes(tampered), header, prekey([key]), NOW)


@given(
    event=st.sampled_from(["job.completed", "job.failed", "job.cancelled", "job.archived"]),
    metadata=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5),
    age=st.integers(min_value=0, max_value=300),
    skew=st.integers(min_value=-300, max_value=300),
)
@PROPERTY_SETTINGS
def test_round_trip_through_the_verifier(event: str, metadata: dict[str, str], age: int, skew: int) -> None:
    payload = webhook_event_payload(now=NOW - age, event=event, metadata=metadata)
    body, headers = signed_delivery(SECRET, payload, signed_at=NOW + skew)
    parsed = verifier().verify(body, headers)
    assert isinstance(parsed, WebhookEvent)
    assert (parsed.type, parsed.event_id, str(parsed.job_id), parsed.metadata) == (
        event,
        payload["event_id"],
        payload["job_id"],
        metadata,
    )
    assert parsed.timestamp.timestamp() == NOW - age


@given(t=st.integers(min_value=0, max_value=10**12 - 1), extra=st.integers(min_value=0, max_value=7))
@PROPERTY_SETTINGS
def test_parse_reads_back_what_sign_wrote(t: int, extra: int) -> None:
    keys = [f"secret-{i}-0123456789abcdef0123456789" for i in range(extra + 1)]
    header = sign_timestamped(b"body", keys, timestamp=t)
    parsed_t, prefix, digests = parse_timestamped_header(header)
    assert (parsed_t, prefix, len(digests)) == (t, f"{t}.".encode(), extra + 1)


@given(st.integers(min_value=-(10**6), max_value=-1) | st.just(True))
def test_sign_timestamped_refuses_a_time_that_cannot_be_signed(t: Any) -> None:
    assume(t is True or t < 0)
    with pytest.raises(ConfigurationError):
        sign_timestamped(b"", SECRET, timestamp=t)


def test_sign_timestamped_refuses_empty_secrets() -> None:
    for secret in ("", b"", [], [SECRET, ""]):
        with pytest.raises(ConfigurationError):
            sign_timestamped(b"", secret, timestamp=NOW)


def test_error_responses_never_echo_the_signature() -> None:
    body = event_body()
    header = sign_timestamped(body, OTHER_SECRET, timestamp=NOW)
    error = error_from(lambda: verifier().verify(body, {HEADER: header}))
    expected = reference_v1(SECRET, NOW, body)
    assert error is not None
    assert expected not in error.detail
    assert header.split("v1=")[1] not in error.detail
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert str(TimestampedSignature()).startswith("TimestampedSignature(window=")


def test_a_custom_scheme_listed_first_gets_the_headers_it_claims() -> None:
    # The built-in shortcuts by prefix must not bypass a custom scheme that claims t= headers itself.
    seen: list[str] = []

    class Recording:
        name = "recording"
        window = None

        def claims(self, header: str) -> bool:
            return header.startswith(("t=", "sha256="))

        def verify(self, body: bytes, header: str, keys: Any, now: float) -> int:
            seen.append(header[:2])
            return 0

        def sign(self, body: bytes, secret: str | bytes, *, now: float | None = None) -> str:
            return "t=0"

    body = event_body()
    v = verifier(schemes=[Recording(), "sha256", "t-v1"])
    assert verdict(v, body, sign_timestamped(body, OTHER_SECRET, timestamp=NOW)) == (200, "ok")
    assert verdict(v, body, sign(body, OTHER_SECRET)) == (200, "ok")
    assert seen == ["t=", "sh"]


def test_a_receiver_refuses_a_retention_shorter_than_the_t_window() -> None:
    # The body's window is one minute here, the t= window ten: retention must cover the ten.
    minute = ReplayWindow(max_age=60, max_future=0)  # the job documents' window too, here
    with pytest.raises(ConfigurationError):
        Receiver(SECRET, window=minute, document_window=minute, retention=120)
    assert Receiver(SECRET, window=minute, document_window=minute).retention == 600


@pytest.mark.parametrize(
    ("configured", "names"),
    [(None, ["sha256", "t-v1"]), ("t-v1", ["t-v1"]), (["sha256"], ["sha256"])],
    ids=["default", "t-v1-only", "sha256-only-as-a-list"],
)
def test_the_schemes_setting_reaches_the_verifier(configured: Any, names: list[str]) -> None:
    settings_values = {"SECRET": SECRET} if configured is None else {"SECRET": SECRET, "SCHEMES": configured}
    receiver = receiver_from_settings(lambda name: settings_values.get(name, MISSING), {}, describe=lambda name: name)
    assert [scheme.name for scheme in receiver.verifier.schemes] == names


def test_an_unknown_scheme_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown signature scheme"):
        receiver_from_settings(
            lambda name: {"SECRET": SECRET, "SCHEMES": ["sha1"]}.get(name, MISSING), {}, describe=lambda name: name
        )
