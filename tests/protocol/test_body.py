"""The body limit (``protocol/body.py``): a declared length over it is refused before reading,
a body read in chunks stops at it."""

from __future__ import annotations

import pytest

from kreuzberg_webhooks import (
    BodyReader,
    PayloadTooLarge,
)
from tests.protocol.support import (
    make_verifier,
)


@pytest.mark.parametrize(
    ("content_length", "refused"),
    [
        pytest.param("101", True, id="declared-over"),
        pytest.param("100", False, id="declared-at-limit"),
        pytest.param(" 101 ", True, id="declared-with-spaces"),
        pytest.param("abc", False, id="malformed-is-left-to-the-server"),
        pytest.param("-5", False, id="negative"),
        pytest.param("\u0661\u0660\u0661", False, id="non-ascii-digits"),
        pytest.param(None, False, id="absent"),
    ],
)
def test_body_reader_refuses_a_declared_length_over_the_limit(content_length: str | None, refused: bool) -> None:
    if refused:
        with pytest.raises(PayloadTooLarge):
            BodyReader(100, content_length)
    else:
        BodyReader(100, content_length)


def test_body_reader_stops_at_the_limit_while_reading() -> None:
    reader = make_verifier(max_body_size=10).body_reader("5")  # the declared length lies
    reader.feed(b"12345")
    reader.feed(b"")
    reader.feed(b"67890")
    assert reader.body() == b"1234567890"
    with pytest.raises(PayloadTooLarge):
        reader.feed(b"1")


def test_body_reader_joins_chunks() -> None:
    reader = BodyReader(100)
    assert reader.body() == b""
    for chunk in (b"ab", b"cd", b"ef"):
        reader.feed(chunk)
    assert reader.body() == b"abcdef"
