"""The optimised hot path equals the standard library it replaces.

Each fast path in the core (the signature-header parser, the JSON decoder,
the UUID parser, the project-id cache, HMAC from pre-keyed states) is checked
against the plain standard-library code it stands for, on inputs hypothesis
builds, including the edges the optimisations skip over.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks import events
from kreuzberg_webhooks.exceptions import (
    InvalidField,
    InvalidJSON,
    MalformedSignature,
    MissingSignature,
    SignatureMismatch,
)
from kreuzberg_webhooks.protocol.signing import parse_signature_header, prekey, signing_key_index
from kreuzberg_webhooks.protocol.verify import decode_json

PROPERTIES = settings(max_examples=400, deadline=None)

# -- the signature header ---------------------------------------------------------

_HEADER = re.compile(r"sha256=[0-9a-fA-F]{64}")
_HEADER_BYTES = re.compile(rb"sha256=[0-9a-fA-F]{64}")
# Hex digits, and the characters a lenient parser might let through in their place:
# whitespace (bytes.fromhex skips it), non-ASCII digits, full-width letters, signs, "_".
_NEAR_HEX = "0123456789abcdefABCDEF \t\n\r\x0b\x0c\u0663\uff41\uff10\u00e9+-_xg"


@st.composite
def _header_values(draw: st.DrawFn) -> str:
    """Mostly near misses of a valid header: the shapes random text almost never hits."""
    prefix = draw(st.sampled_from(["sha256=", "SHA256=", "sha256 =", "sha256", "sha1=", "", " sha256=", "sha256=="]))
    if draw(st.booleans()):
        digits = draw(st.text(alphabet=_NEAR_HEX, min_size=0, max_size=73))
    else:  # whole pairs and whitespace, which bytes.fromhex takes apart without complaint
        pairs = st.sampled_from(["ab", "0F", "9c", " ", "\t", "  ", "\n", "a", "\u0663"])
        digits = "".join(draw(st.lists(pairs, max_size=40)))
    if draw(st.booleans()):  # most digit runs exactly 64 long, where the length check no longer helps
        digits = (digits + draw(st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64)))[:64]
    return prefix + digits + draw(st.sampled_from(["", "", " ", "\n", "0", "\u0663"]))


_HEADER_TEXT = st.one_of(
    _header_values(),
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="ascii"), min_size=71, max_size=71),
).filter(lambda value: len(value) <= 80)


@PROPERTIES
@given(value=_HEADER_TEXT)
@example(value="sha256=" + "ab" * 32)
@example(value="sha256=" + "AB" * 32)
@example(value="sha256=" + "ab" * 31 + "a ")
@example(value="sha256=" + "ab" * 31 + "\u0663\u0663")
@example(value="sha256=" + " a" * 32)
@example(value="sha256=" + "ab" * 31 + "  ")  # 64 characters, 31 bytes
@example(value="sha256=" + "ab " * 21 + "a")
@example(value="")
def test_the_header_parser_accepts_exactly_the_documented_shape_of_a_str(value: str) -> None:
    if _HEADER.fullmatch(value):
        assert parse_signature_header(value) == bytes.fromhex(value[7:])
    else:
        with pytest.raises(MissingSignature if value == "" else MalformedSignature):
            parse_signature_header(value)


@PROPERTIES
@given(
    value=st.one_of(
        _HEADER_TEXT.map(lambda text: text.encode("utf-8")),
        st.binary(max_size=80),
        _HEADER_TEXT.map(lambda text: text.encode("latin-1", "replace")),
    ),
    mutable=st.booleans(),
)
@example(value=b"sha256=" + b"ab" * 32, mutable=False)
@example(value=b"sha256=" + b"ab" * 31 + b"\xff\xfe", mutable=True)
@example(value=b"", mutable=False)
def test_the_header_parser_accepts_exactly_the_documented_shape_of_bytes(value: bytes, mutable: bool) -> None:
    given_value: bytes | bytearray = bytearray(value) if mutable else value
    if _HEADER_BYTES.fullmatch(value):
        assert parse_signature_header(given_value) == bytes.fromhex(value[7:].decode("ascii"))
    else:
        with pytest.raises(MissingSignature if value == b"" else MalformedSignature):
            parse_signature_header(given_value)


# -- JSON -------------------------------------------------------------------------

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)
_WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)


def _json_reference(body: bytes) -> Any:
    """What ``json.loads`` makes of a UTF-8 body, with the constants refused and one BOM skipped.

    Raises ValueError (or RecursionError) where ``decode_json`` must raise InvalidJSON.
    """

    def refuse(name: str) -> Any:
        raise ValueError(name)

    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    # Decoded here, not by json.loads(bytes), which would also guess UTF-16 and UTF-32.
    return json.loads(body.decode("utf-8"), parse_constant=refuse)


def _same_json(body: bytes) -> None:
    try:
        expected = _json_reference(body)
    except (ValueError, RecursionError):
        with pytest.raises(InvalidJSON):
            decode_json(body)
        return
    # repr, not ==: 1 == 1.0 == True and 0.0 == -0.0, but the types and signs must match too.
    assert repr(decode_json(body)) == repr(expected)


@PROPERTIES
@given(
    value=_JSON_VALUES,
    ensure_ascii=st.booleans(),
    indent=st.none() | st.integers(min_value=0, max_value=2),
    before=_WHITESPACE,
    after=_WHITESPACE,
    bom=st.booleans(),
)
def test_decode_json_equals_json_loads_on_any_document(
    value: Any, ensure_ascii: bool, indent: int | None, before: str, after: str, bom: bool
) -> None:
    text = before + json.dumps(value, ensure_ascii=ensure_ascii, indent=indent) + after
    body = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    assert repr(decode_json(body)) == repr(json.loads(text))
    _same_json(body)


# Texts close to JSON, where a parser's edges are: constants, trailing data, escapes, numbers.
_JSONISH = st.text(alphabet='{}[]":,0123456789.eE+-truefalsnNaIiy \t\n\r\\/u\x00\x1f\u00e9\ud800', max_size=40)


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate becomes bytes that are not valid UTF-8, which must be refused.
    return text.encode("utf-8", "surrogatepass")


@PROPERTIES
@given(
    body=st.one_of(
        st.binary(max_size=64),
        _JSONISH.map(_utf8),
        st.tuples(_JSON_VALUES, _JSONISH).map(lambda pair: _utf8(json.dumps(pair[0]) + pair[1])),
        st.tuples(_JSONISH, _JSON_VALUES).map(lambda pair: _utf8(pair[0] + json.dumps(pair[1]))),
        st.tuples(st.binary(max_size=4), _JSON_VALUES).map(lambda pair: pair[0] + json.dumps(pair[1]).encode()),
    )
)
@example(body=b"NaN")
@example(body=b"[1, Infinity]")
@example(body=b'{"a": -Infinity}')
@example(body=b"\xef\xbb\xbf{}")
@example(body=b"\xef\xbb\xbf\xef\xbb\xbf{}")
@example(body=b'"\xff"')
@example(body=b'"\xed\xa0\x80"')  # a UTF-8-encoded surrogate: invalid UTF-8
@example(body=b"\xff\xfe{\x00}\x00")  # UTF-16: json.loads(bytes) would take it
@example(body=b"1 2")
@example(body=b" \n")
@example(body=b"")
@example(body=b"1" * 5000)  # past the int conversion limit
@example(body=b"[" * 100_000 + b"]" * 100_000)  # too deep
@example(body=b'{"a": 1, "a": 2}')
@example(body=b"\x0c{}")  # form feed is not JSON whitespace
def test_decode_json_raises_invalid_json_exactly_where_json_loads_raises(body: bytes) -> None:
    _same_json(body)


# -- UUIDs ------------------------------------------------------------------------

_HEX = "0123456789abcdefABCDEF"


@st.composite
def _uuid_like(draw: st.DrawFn) -> str:
    """A UUID in one of the spellings uuid.UUID knows, or a near miss of one."""
    value = draw(st.uuids()).hex
    value = draw(st.sampled_from([str.lower, str.upper, str.swapcase]))(value)
    if draw(st.booleans()):
        value = f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    wrap = draw(st.sampled_from(["{}", "urn:uuid:{}", "{{{}}}", "uuid:{}", "urn:{}", "{{{{{}}}}}", "{}", "{}"]))
    value = wrap.format(value)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):  # a few edits: insert, delete, replace
        position = draw(st.integers(min_value=0, max_value=len(value)))
        char = draw(st.sampled_from([*_HEX, "-", "-" * 9, "{", "}", " ", "_", "+", "x", "0x", "g", "\u0663", "urn:"]))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        if edit == "insert":
            value = value[:position] + char + value[position:]
        elif edit == "delete":
            value = value[:position] + value[position + 1 :]
        else:
            value = value[:position] + char + value[position + 1 :]
    return value


def _uuid_reference(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@PROPERTIES
@given(value=st.one_of(_uuid_like(), st.text(alphabet=_HEX + "-{}:urnid _x", max_size=60), st.text(max_size=50)))
@example(value="1CBB9D72-660A-4DF2-BA3D-66D83B6AFAFF")
@example(value="{1cbb9d72-660a-4df2-ba3d-66d83b6afaff}")
@example(value="urn:uuid:1cbb9d72-660a-4df2-ba3d-66d83b6afaff")
@example(value="1cbb9d72660a4df2ba3d66d83b6afaff")
@example(value="1cbb9d72660a4df2ba3d66d83b6afaf")
@example(value="1cbb9d72660a4df2ba3d66d83b6afaff0")
@example(value="1-c-b-b-9-d-7-2-6-6-0-a-4-d-f-2-b-a-3-d-6-6-d-8-3-b-6-a-f-a-f-f")  # 63 characters
@example(value="0x" + "0" * 30)
@example(value=" " + "f" * 31)
@example(value="+" + "f" * 31)
@example(value="1_" + "f" * 30)
@example(value="\u0663" * 32)
def test_the_fast_uuid_parser_equals_uuid_uuid_on_any_string(value: str) -> None:
    expected = _uuid_reference(value)
    if expected is None:
        with pytest.raises(InvalidField):
            events._uuid(value, "job_id")
        return
    parsed = events._uuid(value, "job_id")
    assert type(parsed) is uuid.UUID
    assert parsed == expected
    assert parsed.int == expected.int
    assert parsed.is_safe is expected.is_safe
    assert str(parsed) == str(expected)
    assert hash(parsed) == hash(expected)


@PROPERTIES
@given(
    status=st.sampled_from(["completed", "failed", "cancelled", "partial_success", "a_new_status"]),
    attempt=st.integers(min_value=1, max_value=10),
    error=st.one_of(st.none(), st.text(max_size=20)),
)
def test_an_event_built_through_its_slots_equals_one_built_by_its_constructor(
    status: str, attempt: int, error: str | None
) -> None:
    from dataclasses import fields

    from kreuzberg_webhooks.testing import job_event_payload, webhook_event_payload

    data = job_event_payload(now=1_800_000_000, status=status, attempt_count=attempt, error_message=error)
    fast = events.parse_job_event(data)
    values = {f.name: getattr(fast, f.name) for f in fields(events.JobEvent)}  # every slot was set
    assert events.JobEvent(**values) == fast
    assert values["job_id"] == data["job_id"]
    assert values["project_id"] == uuid.UUID(data["project_id"])
    assert values["raw"] is data
    # The inline webhook's WebhookEvent is built the same way (_hot.slot_setter).
    inline = webhook_event_payload(now=1_800_000_000, event="job.completed" if error is None else "job.failed")
    built = events.parse_webhook_event(inline)
    webhook_values = {f.name: getattr(built, f.name) for f in fields(events.WebhookEvent)}
    assert events.WebhookEvent(**webhook_values) == built
    assert webhook_values["raw"] is inline


# -- HMAC from pre-keyed states -----------------------------------------------------


def _reference_index(body: bytes, digest: bytes, keys: list[bytes]) -> int | None:
    """The first key whose ``hmac.digest`` equals *digest*: what signing_key_index must answer."""
    for index, key in enumerate(keys):
        if hmac.compare_digest(hmac.digest(key, body, "sha256"), digest):
            return index
    return None


@st.composite
def _keys(draw: st.DrawFn) -> list[bytes]:
    # Lengths around the 64-byte block are where RFC 2104 changes course (a longer key is hashed first).
    size = st.integers(min_value=1, max_value=200) | st.sampled_from([1, 32, 63, 64, 65, 127, 128, 129, 200])
    return draw(st.lists(size.flatmap(lambda n: st.binary(min_size=n, max_size=n)), min_size=1, max_size=3))


@PROPERTIES
@given(keys=_keys(), bodies=st.lists(st.binary(max_size=300), min_size=1, max_size=3), data=st.data())
@example(keys=[b"k" * 64], bodies=[b"{}"], data=None)
@example(keys=[b"k" * 65], bodies=[b"{}"], data=None)
@example(keys=[b"\0" * 63, b"\0" * 64], bodies=[b""], data=None)  # zero padding makes these the same key
def test_verify_prekeyed_equals_hmac_digest_verification(
    keys: list[bytes], bodies: list[bytes], data: st.DataObject | None
) -> None:
    prepared = prekey(keys)
    for body in bodies:  # the same prepared states, reused: they must never be updated
        digests = [hmac.digest(key, body, "sha256") for key in keys]
        candidates = [*digests, bytes(32), digests[0][:-1] + bytes([digests[0][-1] ^ 1])]
        if data is not None:
            candidates.append(data.draw(st.binary(min_size=32, max_size=32)))
            signer = data.draw(st.binary(min_size=1, max_size=200))
            candidates.append(hmac.digest(signer, body, "sha256"))
        for digest in candidates:
            header = "sha256=" + digest.hex()
            expected = _reference_index(body, digest, keys)
            if expected is None:
                with pytest.raises(SignatureMismatch):
                    signing_key_index(body, header, prepared)
            else:
                assert signing_key_index(body, header, prepared) == expected
                assert signing_key_index(body, header.encode(), prepared) == expected


# -- the ASGI middleware's lazy headers -----------------------------------------------

_HEADER_NAMES = st.sampled_from([b"x-webhook-signature", b"X-Webhook-Signature", b"content-length", b"host", b"x-a"])
_RAW_HEADERS = st.lists(st.tuples(_HEADER_NAMES, st.binary(max_size=12)), max_size=8)


@PROPERTIES
@given(raw=_RAW_HEADERS, name=st.sampled_from(["X-Webhook-Signature", "x-webhook-signature", "Content-Length", "X-A"]))
def test_scope_headers_view_answers_like_the_decoded_dict(raw: list[tuple[bytes, bytes]], name: str) -> None:
    from kreuzberg_webhooks.adapters.asgi import ScopeHeaders, scope_headers

    decoded = scope_headers({"headers": raw})
    view = ScopeHeaders(raw)
    assert view.get(name) == decoded.get(name.lower())
    assert (name in view) == (name.lower() in decoded)
    assert dict(view) == decoded
    assert len(view) == len(decoded)
    lines = [value.decode("latin-1") for key, value in raw if key.lower() == name.lower().encode()]
    assert view.get(name) == (", ".join(lines) if lines else None)


@PROPERTIES
@given(values=st.lists(st.one_of(st.uuids().map(str), _uuid_like(), st.text(max_size=40)), max_size=200))
def test_the_project_uuid_cache_answers_like_the_parser(values: list[str]) -> None:
    from kreuzberg_webhooks._hot import project_uuid

    for value in [*values, *values]:  # the second pass answers from the cache, past its bound too
        expected = _uuid_reference(value)
        parsed = project_uuid(value)
        assert parsed == expected
        assert parsed is None or parsed.int == uuid.UUID(value).int


def test_a_body_reader_keeps_one_copy_of_the_body_once_joined() -> None:
    from kreuzberg_webhooks.protocol.body import BodyReader

    reader = BodyReader(100)
    for chunk in (b"ab", b"cd", b"ef"):
        reader.feed(chunk)
    body = reader.body()
    assert body == b"abcdef"
    assert reader.body() is body  # the parts were let go: no second copy of a large document
    reader.feed(b"g")
    assert reader.body() == b"abcdefg"


@PROPERTIES
@given(value=st.one_of(_uuid_like(), st.text(alphabet=_HEX + "-{}:urnid _x", max_size=60), st.text(max_size=200)))
@example(value="1CBB9D72-660A-4DF2-BA3D-66D83B6AFAFF")
@example(value="01JDQ8Z6W1N3K4M5P6Q7R8S9T0")
@example(value="1cbb9d72660a4df2ba3d66d83b6afaff")
@example(value="")
@example(value="a\nb")
def test_a_job_id_is_canonical_as_uuid_uuid_spells_it_and_any_other_id_is_kept(value: str) -> None:
    canonical = events.canonical_job_id(value)
    expected = _uuid_reference(value)
    if not value or not value.isprintable():
        assert canonical is None
    elif expected is not None:
        assert canonical == str(expected)
    elif len(value) <= events.MAX_JOB_ID_LENGTH:
        assert canonical == value
    else:
        assert canonical == events.bounded(value, events.MAX_JOB_ID_LENGTH)
