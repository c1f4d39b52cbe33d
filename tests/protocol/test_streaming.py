"""Streaming verification (``protocol/body.py``, ``protocol/signing.py``): a body whose HMACs advance
as its chunks arrive, kept once as those chunks and decoded from them, is answered exactly as the whole body is."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import BodyReader, PayloadTooLarge, Verifier, WebhookError, sign, sign_timestamped
from kreuzberg_webhooks.exceptions import InvalidJSON
from kreuzberg_webhooks.lifecycle.exchange import Exchange
from kreuzberg_webhooks.protocol.body import STREAM_FROM, StreamedBody
from kreuzberg_webhooks.protocol.decoding import decode_json
from kreuzberg_webhooks.protocol.signing import StreamingMac, prekey
from kreuzberg_webhooks.testing import job_document_payload, job_event_payload
from tests.protocol.support import NOW, OLD_SECRET, SECRET, make_verifier


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(body) + 1) for cut in cuts} | {0, len(body)})
    return [body[start:end] for start, end in itertools.pairwise(points)]


def _streamed(verifier: Verifier, body: bytes, headers: dict[str, str], cuts: list[int], keep: bool = True) -> Any:
    reader = BodyReader(verifier.max_body_size, None, verifier, headers, stream_from=0, keep_bytes=keep)
    for chunk in _split(body, cuts):
        reader.feed(chunk)
    return reader.delivery()


def _answer(verifier: Verifier, body: Any, headers: dict[str, str]) -> tuple[Any, ...]:
    try:
        verified = verifier.verify_scoped(body, headers)
    except WebhookError as error:
        return ("refused", type(error), error.reason, error.status_code, error.event_id)
    return ("accepted", verified.event.raw, verified.scope, type(verified.event))


# -- the HMAC advanced chunk by chunk ------------------------------------------------------


@given(
    body=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=6), prefix=st.sampled_from([b"", b"17."])
)
def test_a_streaming_mac_equals_the_hmac_of_the_whole_body_for_any_chunking(
    body: bytes, cuts: list[int], prefix: bytes
) -> None:
    keys = (SECRET.encode(), OLD_SECRET.encode() * 3)  # one key longer than a block
    mac = StreamingMac(prekey(keys), "unused", prefix)
    for chunk in _split(body, cuts):
        mac.update(chunk)
    assert mac.digests() == tuple(hmac.digest(key, prefix + body, hashlib.sha256) for key in keys)


# -- kept once, given back exactly -------------------------------------------------------


def _decoded(decode: Any) -> tuple[str, Any]:
    try:
        return ("value", repr(decode()))
    except InvalidJSON as error:
        return ("refused", error.reason)


@given(
    text=st.text(max_size=200),
    damage=st.one_of(st.none(), st.tuples(st.integers(0, 1000), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))),
    cuts=st.lists(st.integers(0, 1000), max_size=8),
    keep=st.booleans(),
)
def test_a_streamed_body_gives_back_its_exact_bytes_and_decodes_as_the_whole_body_does(
    text: str, damage: tuple[int, bytes] | None, cuts: list[int], keep: bool
) -> None:
    body = text.encode("utf-8", "surrogatepass")
    if damage is not None:
        at = damage[0] % (len(body) + 1)
        body = body[:at] + damage[1] + body[at:]
    verifier = make_verifier()
    streamed = _streamed(verifier, body, {"X-Webhook-Signature": sign(body, SECRET)}, cuts, keep=keep)
    if not body:
        assert streamed == b""  # nothing was read: nothing to stream
        return
    assert isinstance(streamed, StreamedBody)
    assert len(streamed) == len(body)
    assert _decoded(streamed.decode) == _decoded(lambda: decode_json(body))  # kept: decoded from the joined bytes
    assert streamed.bytes() == body
    assert streamed.bytes() == body  # asked twice: the same bytes, kept once
    assert _decoded(lambda: streamed.decode(release=True)) == _decoded(lambda: decode_json(body))
    assert not streamed.released  # joined by bytes(): decoded from that one copy, which stays


@given(
    text=st.text(max_size=200),
    cuts=st.lists(st.integers(0, 1000), min_size=1, max_size=8),
)
def test_a_streamed_body_not_kept_is_released_as_it_is_decoded_and_its_bytes_are_gone(
    text: str, cuts: list[int]
) -> None:
    body = json.dumps({"text": text}).encode()
    streamed = _streamed(make_verifier(), body, {"X-Webhook-Signature": sign(body, SECRET)}, cuts, keep=False)
    assert isinstance(streamed, StreamedBody)
    assert streamed.decode(release=True) == json.loads(body)
    assert streamed.released is (len(_split(body, cuts)) > 1)
    assert len(streamed) == len(body)  # the size is still known (the log line of an invalid payload)
    if streamed.released:
        with pytest.raises(RuntimeError):
            streamed.bytes()


def test_a_body_under_the_streaming_size_is_collected_as_bytes() -> None:
    body = json.dumps(job_event_payload(now=NOW)).encode()
    headers = {"X-Webhook-Signature": sign(body, SECRET), "Content-Length": str(len(body))}
    exchange = Exchange("POST", headers, 10 * STREAM_FROM, verifier=make_verifier())
    exchange.feed(body)
    assert type(exchange.delivery) is bytes
    assert exchange.delivery == body


def _document(size: int) -> bytes:
    payload = job_document_payload(now=NOW)
    payload["result"]["content"] = "é-line of text\n" * (size // 16)
    return json.dumps(payload, ensure_ascii=False).encode()


def test_a_large_body_read_through_an_exchange_is_streamed_and_verifies_like_the_whole_body() -> None:
    body = _document(2 * STREAM_FROM)
    verifier = make_verifier()
    headers = {"X-Webhook-Signature": sign(body, SECRET)}
    exchange = Exchange("POST", headers, verifier.max_body_size, verifier=verifier)
    for start in range(0, len(body), 65536):
        assert exchange.feed(body[start : start + 65536])
    delivery = exchange.delivery
    assert isinstance(delivery, StreamedBody)
    assert delivery.keep  # an exchange made without an inbox's say keeps the bytes
    assert _answer(verifier, delivery, headers) == _answer(verifier, body, headers)
    assert exchange.body == body  # a guard still gets the exact bytes


def test_a_streamed_body_that_passes_the_limit_is_refused_413_and_nothing_is_kept() -> None:
    verifier = make_verifier(max_body_size=STREAM_FROM + 10)
    body = b"x" * (STREAM_FROM + 11)
    exchange = Exchange("POST", {"X-Webhook-Signature": sign(body, SECRET)}, verifier.max_body_size, verifier=verifier)
    assert exchange.feed(body[:STREAM_FROM]) is True  # streaming from here on
    assert exchange.feed(body[STREAM_FROM:]) is False
    assert exchange.answer is not None
    assert exchange.answer.status_code == 413
    assert exchange.body == b""


@pytest.mark.parametrize(
    ("verifier", "header"),
    [
        pytest.param(make_verifier(lambda project: SECRET), "sha256=" + "0" * 64, id="a-resolver-needs-the-body"),
        pytest.param(make_verifier(), None, id="no-signature"),
        pytest.param(make_verifier(), "sha256=xyz", id="malformed-sha256-still-streams"),
        pytest.param(make_verifier(), "t=1,v1=short", id="malformed-t-v1"),
        pytest.param(make_verifier(), "v1=abc,t=1", id="another-order-is-read-whole"),
        pytest.param(make_verifier(schemes="t-v1"), "sha256=" + "0" * 64, id="a-scheme-not-accepted"),
    ],
)
def test_the_hmac_starts_before_the_body_only_when_the_header_and_secrets_allow(
    verifier: Verifier, header: str | None
) -> None:
    headers = {} if header is None else {"X-Webhook-Signature": header}
    mac = verifier.streaming_mac(headers)
    # sha256= is recognised by its prefix; its digest is read (and refused) when the body is complete.
    assert (mac is not None) == (header is not None and header.startswith("sha256=xyz"))


# -- the property: chunked streaming accepts exactly what whole-body verification accepts ----


def _bodies() -> st.SearchStrategy[bytes]:
    payloads = st.sampled_from(
        [
            job_event_payload(now=NOW),
            job_event_payload(now=NOW, event="job.failed"),
            job_event_payload(now=NOW - 7200),  # outside the window
            job_document_payload(now=NOW),
            {"event": "job.completed"},  # signed, invalid
            [1, 2],
        ]
    )
    encoded = payloads.map(lambda payload: json.dumps(payload, ensure_ascii=False).encode())
    framed = st.tuples(
        st.sampled_from([b"", b"", b"\xef\xbb\xbf", b" \n", b"\xef\xbb\xbf\xef\xbb\xbf"]),
        encoded,
        st.sampled_from([b"", b"", b"\n", b" x", b"\xff", b"\xc3"]),
    ).map(lambda parts: b"".join(parts))
    # Mostly deliveries (about a third accepted), some anything at all.
    return st.one_of(framed, framed, framed, framed, st.binary(max_size=64), st.text(max_size=64).map(str.encode))


@settings(max_examples=300, deadline=None)
@given(
    body=_bodies(),
    cuts=st.lists(st.integers(0, 2000), max_size=8),
    how=st.sampled_from(
        ["sha256", "t-v1", "old-secret", "two-v1"] * 2 + ["other-secret", "tampered", "stale-t", "no-v1"]
    ),
)
def test_chunked_streaming_verification_accepts_exactly_what_whole_body_verification_accepts(
    body: bytes, cuts: list[int], how: str
) -> None:
    invalid: list[bytes] = []
    verifier = make_verifier([SECRET, OLD_SECRET], on_invalid_payload=lambda raw, error: invalid.append(raw))
    header = {
        "sha256": lambda: sign(body, SECRET),
        "t-v1": lambda: sign_timestamped(body, SECRET, timestamp=int(NOW)),
        "old-secret": lambda: sign(body, OLD_SECRET),
        "other-secret": lambda: sign(body, "another-secret-0123456789abcdef0123456"),
        "tampered": lambda: sign(body + b" ", SECRET),
        "stale-t": lambda: sign_timestamped(body, SECRET, timestamp=int(NOW) - 3600),
        "no-v1": lambda: f"t={int(NOW)},v2=abc",
        "two-v1": lambda: sign_timestamped(
            body, ["another-secret-0123456789abcdef01234", OLD_SECRET], timestamp=int(NOW)
        ),
    }[how]()
    headers = {"X-Webhook-Signature": header}
    whole = _answer(verifier, body, headers)
    streamed = _streamed(verifier, body, headers, cuts)
    # A malformed t= header starts no HMAC: that body is read whole, as before.
    assert isinstance(streamed, StreamedBody) or body == b"" or how == "no-v1"
    assert _answer(verifier, streamed, headers) == whole
    assert all(raw == body for raw in invalid)  # an invalid payload is reported with its exact bytes


def test_a_body_reader_whose_verifier_cannot_start_a_mac_never_streams() -> None:
    reader = BodyReader(100, None, make_verifier(), {}, stream_from=0)  # no signature header
    reader.feed(b"abc")
    assert reader.delivery() == b"abc"
    with pytest.raises(PayloadTooLarge):
        reader.feed(b"x" * 98)
