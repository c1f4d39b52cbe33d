"""Decoding a body from its chunks (``protocol/decoding.py``, ``decode_json_chunks``): for every body and
every way of cutting it, the same value or the same refusal as decoding it whole (``decode_json``)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kreuzberg_webhooks.exceptions import InvalidJSON
from kreuzberg_webhooks.protocol.decoding import decode_json, decode_json_chunks

PROPERTIES = settings(max_examples=500, deadline=None)

_STRINGS = st.text() | st.text(alphabet='a\\"\n\u00e9\u4e80\U0001f422\ud83d\ude00\x1f/', max_size=30)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _STRINGS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_STRINGS, children, max_size=5),
    max_leaves=25,
)
_WHITESPACE = st.text(alphabet=" \t\n\r", max_size=3)
# Texts close to JSON, where a parser's edges are: constants, escapes, surrogates, numbers, whitespace.
_JSONISH = st.text(alphabet='{}[]":,0123456789.eE+-truefalsnNaIiy \t\n\r\\/uD8dc\x00\x1f\u00e9\ud800', max_size=40)


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(body) + 1) for cut in cuts} | {0, len(body)})
    return [body[start:end] for start, end in itertools.pairwise(points)]


def _answer(decode: Any, body: Any) -> tuple[str, str]:
    try:
        # repr, not ==: 1 == 1.0 == True and 0.0 == -0.0, but the types and signs must match too.
        return ("value", repr(decode(body)))
    except InvalidJSON as error:
        return ("refused", error.reason)


def _same_answer(body: bytes, cuts: list[int]) -> None:
    chunks = _split(body, cuts)
    assert b"".join(chunks) == body
    assert _answer(decode_json_chunks, chunks) == _answer(decode_json, body)
    # One byte at a time: every UTF-8 sequence, escape, number and literal is cut somewhere.
    assert _answer(decode_json_chunks, [body[i : i + 1] for i in range(len(body))]) == _answer(decode_json, body)


def _utf8(text: str) -> bytes:
    # surrogatepass: a lone surrogate becomes bytes that are not valid UTF-8, which must be refused.
    return text.encode("utf-8", "surrogatepass")


@PROPERTIES
@given(
    value=_JSON_VALUES,
    ensure_ascii=st.booleans(),
    indent=st.none() | st.integers(min_value=0, max_value=2),
    before=_WHITESPACE,
    after=_WHITESPACE,
    bom=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
)
def test_any_document_cut_anywhere_decodes_to_the_value_of_the_whole_body(
    value: Any, ensure_ascii: bool, indent: int | None, before: str, after: str, bom: bool, cuts: list[int]
) -> None:
    text = before + json.dumps(value, ensure_ascii=ensure_ascii, indent=indent) + after
    body = (b"\xef\xbb\xbf" if bom else b"") + _utf8(text)
    _same_answer(body, cuts)


@PROPERTIES
@given(
    body=st.one_of(
        st.binary(max_size=64),
        _JSONISH.map(_utf8),
        st.tuples(_JSON_VALUES, _JSONISH).map(lambda pair: _utf8(json.dumps(pair[0]) + pair[1])),
        st.tuples(_JSONISH, _JSON_VALUES).map(lambda pair: _utf8(pair[0] + json.dumps(pair[1]))),
        st.tuples(_JSON_VALUES, st.integers(0, 200), _JSONISH).map(
            lambda triple: _utf8(json.dumps(triple[0])[: triple[1]] + triple[2])
        ),
        st.tuples(st.binary(max_size=4), _JSON_VALUES).map(lambda pair: pair[0] + json.dumps(pair[1]).encode()),
    ),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
@example(body=b"NaN", cuts=[1])
@example(body=b"[1, Infinity]", cuts=[6])
@example(body=b'{"a": -Infinity}', cuts=[7])
@example(body=b"\xef\xbb\xbf{}", cuts=[1])
@example(body=b"\xef\xbb\xbf\xef\xbb\xbf{}", cuts=[4])
@example(body=b'"\xff"', cuts=[])
@example(body=b'"\xed\xa0\x80"', cuts=[2])
@example(body=b"\xff\xfe{\x00}\x00", cuts=[])
@example(body=b"1 2", cuts=[1])
@example(body=b"12", cuts=[1])
@example(body=b"[12,3]", cuts=[2])
@example(body=b'{"": 4.5}', cuts=[7])  # the C scanner takes "4" of "4." for a whole number
@example(body=b"[1e5, 2]", cuts=[3])
@example(body=b"[tru", cuts=[2])
@example(body=b" \n", cuts=[1])
@example(body=b"", cuts=[])
@example(body=b"1" * 5000, cuts=[2500])
@example(body=b"[" * 100_000 + b"]" * 100_000, cuts=[50_000, 150_000])
@example(body=b'{"a": 1, "a": 2}', cuts=[9])
@example(body=b"\x0c{}", cuts=[])
@example(body=b'["\\ud83d\\ude00"]', cuts=[8])
@example(body=b'["\\ud83d\\ude00"]', cuts=[9])
@example(body=b'["\\ud83d\\ude00"]', cuts=[14])
@example(body=b'["\\ud83dx"]', cuts=[9])
@example(body=b'["a\\\\"]', cuts=[5])
@example(body=b'["a\\\\\\"b"]', cuts=[6])
@example(body=b'["\\u12"]', cuts=[5])
@example(body=b'{"k\\n": "v"}', cuts=[4])
@example(body=b'["\x01"]', cuts=[3])
def test_any_body_cut_anywhere_is_refused_exactly_where_the_whole_body_is(body: bytes, cuts: list[int]) -> None:
    _same_answer(body, cuts)


def _object_text(pairs: list[tuple[str, Any]], separator: str) -> str:
    # Written by hand: duplicate keys, which no dict can hold, are in it.
    return "{" + separator.join(json.dumps(key) + ": " + json.dumps(value) for key, value in pairs) + "}"


_MEMBERS = st.one_of(
    st.lists(_JSON_VALUES, min_size=2, max_size=60),
    st.dictionaries(_STRINGS, _JSON_VALUES, min_size=2, max_size=60),
    st.tuples(
        st.lists(st.tuples(st.sampled_from(["a", "b", "c"]) | _STRINGS, _JSON_VALUES), min_size=2, max_size=60),
        st.sampled_from([", ", ",", ",\n  "]),
    ).map(lambda pair: json.loads(_object_text(*pair), object_pairs_hook=lambda pairs: pairs)),
)


@PROPERTIES
@given(
    members=_MEMBERS,
    nested=st.booleans(),
    indent=st.none() | st.integers(min_value=0, max_value=2),
    chunk=st.integers(8, 300),
    damage=st.none() | st.tuples(st.integers(0, 10_000), st.sampled_from([b",", b"]", b"}", b'"', b"\\", b"x"])),
)
def test_a_container_of_many_members_read_in_batches_decodes_as_the_whole_body(
    members: Any, nested: bool, indent: int | None, chunk: int, damage: tuple[int, bytes] | None
) -> None:
    # Many members, in chunks of any size: the members after the first two are scanned in batches,
    # cut at the last separator in each chunk, which may lie inside a string or a nested container.
    if type(members) is list and members and all(type(pair) is tuple for pair in members):
        text = _object_text(members, ", ")  # pairs with duplicate keys, as an object
        body = ('{"pages": ' + text + ', "n": 1}' if nested else text).encode()
    else:
        body = json.dumps({"pages": members, "n": 1} if nested else members, indent=indent).encode()
    if damage is not None:
        at = damage[0] % (len(body) + 1)
        body = body[:at] + damage[1] + body[at:]
    chunks = [body[start : start + chunk] for start in range(0, len(body), chunk)]
    assert _answer(decode_json_chunks, chunks) == _answer(decode_json, body)


def _long_document(text: str, count: int, ensure_ascii: bool = False) -> bytes:
    return json.dumps(
        {"id": "x", "result": {"content": text * count, "pages": [{"n": n, "t": text} for n in range(count)]}},
        ensure_ascii=ensure_ascii,
    ).encode()


@pytest.mark.parametrize(
    "run", ["\\ud800", "\\ud83d\\ude00", "\\\\", "\\n"], ids=["high-surrogates", "pairs", "backslashes", "newlines"]
)
@pytest.mark.parametrize("chunk", [5, 64, 65536])
def test_a_long_string_of_escapes_is_cut_near_every_chunk_end(run: str, chunk: int) -> None:
    body = ('{"text": "' + run * (200_000 // len(run)) + '"}').encode()
    chunks = [body[start : start + chunk] for start in range(0, len(body), chunk)]
    assert repr(decode_json_chunks(chunks)) == repr(json.loads(body))


@pytest.mark.parametrize(
    "text",
    ["plain line\n", 'quoted "line"\t\\ end\n', "żółw · 亀 🐢\n", "🐢 escaped as a surrogate pair\n"],
    ids=["ascii", "escapes", "multi-byte", "surrogate-pairs"],
)
@pytest.mark.parametrize("chunk", [1, 7, 4096, 65536])
def test_a_long_document_decodes_from_chunks_of_any_size_to_the_value_json_loads_gives(text: str, chunk: int) -> None:
    body = _long_document(text, 20_000 if chunk >= 4096 else 300, ensure_ascii="surrogate" in text)
    chunks = [body[start : start + chunk] for start in range(0, len(body), chunk)]
    assert decode_json_chunks(chunks) == json.loads(body)


def test_chunks_popped_from_a_list_are_freed_as_the_document_is_built() -> None:
    body = _long_document("plain line\n", 50_000)
    chunks = [body[start : start + 65536] for start in range(0, len(body), 65536)]
    seen: list[int] = []

    def popped() -> Any:
        chunks.reverse()
        while chunks:
            seen.append(len(chunks))
            yield chunks.pop()

    assert decode_json_chunks(popped()) == json.loads(body)
    assert chunks == []
    assert seen == list(range(len(seen), 0, -1))
