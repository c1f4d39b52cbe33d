"""The vendor guide's own verification, rebuilt from its description, agrees with the package.

kreuzberg-dev/kreuzberg-cloud-sdk, ``docs-site/src/content/docs/guides/webhooks.md``
(commit 12b1f4d2) verifies a ``t=…,v1=…`` header in a few lines of Python:
split the header on commas and each part at its first ``=`` into a dict (a
key seen twice keeps its last value), take ``t`` and ``v1``, refuse when
``|now - int(t)|`` is over 300 seconds, then compare (as text, in constant
time) ``v1`` with the hex HMAC-SHA256, keyed with the secret's UTF-8 bytes,
of ``f"{t}.{body.decode()}"`` encoded as UTF-8. :func:`guide_verify` does just
that, with the clock passed in. Any exception it raises counts as a refusal.

For headers a sender produces (digits for ``t``, lowercase hex for ``v1``), and
for any tampering with them, both must accept and refuse the same deliveries.
Where the package is stricter or more lenient on purpose, a test below says so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import ReplayWindow, Verifier, WebhookError
from kreuzberg_webhooks.testing import webhook_event_payload

SECRET = "whsec_inline_webhook_secret_0123456789abcdef"
WRONG = "whsec_someone_elses_secret_0123456789abcdef0"
NOW = 1_800_000_000


def guide_verify(body: bytes, header: str, secret: str, now: float) -> bool:
    """The guide's Python verification, step by step as it describes them."""
    fields = {}
    for part in header.split(","):
        name, value = part.split("=", 1)
        fields[name] = value
    t, v1 = fields["t"], fields["v1"]
    if abs(now - int(t)) > 300:
        return False
    message = f"{t}.{body.decode()}".encode()
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1)


def guide_accepts(body: bytes, header: str, secret: str, now: float) -> bool:
    try:
        return guide_verify(body, header, secret, now)
    except Exception:  # a crash of the snippet refuses the delivery, as it would in an app
        return False


def package_accepts(body: bytes, header: str, secret: str, now: float) -> bool:
    # Only the t= format, so a header that is not of it is never read as sha256=.
    verifier = Verifier(secret, schemes=("t-v1",), window=ReplayWindow(), clock=lambda: now)
    try:
        verifier.verify(body, {"X-Webhook-Signature": header})
    except WebhookError:
        return False
    return True


def mac(secret: str, t: str, body: bytes) -> str:
    return hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()


event_bodies = st.builds(
    lambda event, metadata, note: json.dumps(
        # The event happened before any signing time drawn below, so the body's own window never refuses it.
        webhook_event_payload(now=NOW - 1000, event=event, metadata=metadata, note=note),
        ensure_ascii=False,
    ).encode(),
    st.sampled_from(["job.completed", "job.failed", "job.cancelled", "job.retried"]),
    st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3),
    st.text(max_size=30),
)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, str, str, float]:
    """A delivery as a sender signs it, then perhaps tampered with in one way, checked at some time."""
    body = draw(event_bodies)
    signed_at = NOW + draw(st.integers(min_value=-400, max_value=400))
    t = str(signed_at)
    if draw(st.booleans()):
        t = "0" * draw(st.integers(min_value=1, max_value=2)) + t  # leading zeros, signed as sent
    signer = draw(st.sampled_from([SECRET, SECRET, WRONG]))
    v1 = mac(signer, t, body)
    tamper = draw(st.sampled_from(["none", "none", "body", "t", "v1-digit", "v1-short", "drop-t", "drop-v1"]))
    if tamper == "body":
        body = body + b" "
    elif tamper == "t":
        t = str(int(t) + draw(st.sampled_from([-1, 1, 60])))
    elif tamper == "v1-digit":
        index = draw(st.integers(min_value=0, max_value=63))
        v1 = v1[:index] + ("0" if v1[index] != "0" else "1") + v1[index + 1 :]
    elif tamper == "v1-short":
        v1 = v1[:-2]
    parts = {"t": f"t={t}", "v1": f"v1={v1}"}
    if tamper == "drop-t":
        del parts["t"]
    elif tamper == "drop-v1":
        del parts["v1"]
    elements = list(parts.values())
    if draw(st.booleans()):
        elements.insert(draw(st.integers(min_value=0, max_value=len(elements))), f"v0={'ab' * 32}")
    elements = draw(st.permutations(elements))
    checked_at = signed_at + draw(st.sampled_from([-301, -300, -10, 0, 10, 299, 300, 301, 1000]))
    return body, ",".join(elements), SECRET, float(checked_at)


@given(deliveries())
@settings(max_examples=600, deadline=None)
def test_the_package_and_the_guide_accept_and_refuse_the_same_deliveries(delivery: Any) -> None:
    body, header, secret, now = delivery
    assert package_accepts(body, header, secret, now) == guide_accepts(body, header, secret, now), header


def test_the_agreement_covers_both_answers() -> None:
    # The control: the domain above holds deliveries both accept and both refuse.
    body = json.dumps(webhook_event_payload(now=NOW)).encode()
    good = f"t={NOW},v1={mac(SECRET, str(NOW), body)}"
    assert package_accepts(body, good, SECRET, NOW)
    assert guide_accepts(body, good, SECRET, NOW)
    stale = f"t={NOW - 301},v1={mac(SECRET, str(NOW - 301), body)}"
    assert not package_accepts(body, stale, SECRET, NOW)
    assert not guide_accepts(body, stale, SECRET, NOW)


# -- where they differ, on purpose ------------------------------------------------------------


def test_several_v1_the_package_accepts_any_match_the_guide_only_the_last() -> None:
    # A sender rotating its secret sends one v1 per secret; the guide's dict keeps the last.
    body = json.dumps(webhook_event_payload(now=NOW)).encode()
    header = f"t={NOW},v1={mac(SECRET, str(NOW), body)},v1={mac(WRONG, str(NOW), body)}"
    assert package_accepts(body, header, SECRET, NOW)
    assert not guide_accepts(body, header, SECRET, NOW)


@pytest.mark.parametrize(
    "t", [f" {NOW}", f"+{NOW}", f"{NOW:_}", f"{NOW}\n"], ids=["space", "plus", "underscores", "newline"]
)
def test_t_that_python_int_tolerates_is_malformed_for_the_package(t: str) -> None:
    # int() reads these; a sender writes digits only, so the package refuses anything else.
    body = json.dumps(webhook_event_payload(now=NOW)).encode()
    header = f"t={t},v1={mac(SECRET, t, body)}"
    assert guide_accepts(body, header, SECRET, NOW)
    assert not package_accepts(body, header, SECRET, NOW)


def test_uppercase_hex_the_package_compares_digests_the_guide_compares_text() -> None:
    body = json.dumps(webhook_event_payload(now=NOW)).encode()
    header = f"t={NOW},v1={mac(SECRET, str(NOW), body).upper()}"
    assert package_accepts(body, header, SECRET, NOW)
    assert not guide_accepts(body, header, SECRET, NOW)


def test_a_signed_body_that_is_not_an_event_the_package_refuses_the_guide_does_not_look() -> None:
    body = b"not json"
    header = f"t={NOW},v1={mac(SECRET, str(NOW), body)}"
    assert guide_accepts(body, header, SECRET, NOW)
    assert not package_accepts(body, header, SECRET, NOW)
