"""The request side of a delivery (``kreuzberg_webhooks.lifecycle.exchange``): 405, 413, the body; no receiver."""

from __future__ import annotations

import logging

import pytest

from kreuzberg_webhooks import DeliveryReport
from kreuzberg_webhooks.lifecycle.exchange import Exchange


def test_a_method_other_than_post_is_answered_405_and_reads_nothing() -> None:
    exchange = Exchange("GET", {}, limit=100)
    assert exchange.answer is not None
    assert (exchange.answer.status_code, exchange.answer.reason) == (405, "method_not_allowed")
    assert ("allow", "POST") in exchange.answer.headers
    assert not exchange.reading
    assert exchange.feed(b"ignored") is False
    assert exchange.body == b""


def test_a_declared_length_over_the_limit_is_answered_413_before_any_chunk() -> None:
    exchange = Exchange("POST", {"Content-Length": "101"}, limit=100)
    assert exchange.answer is not None
    assert exchange.answer.status_code == 413
    assert exchange.feed(b"x") is False


def test_a_body_that_passes_the_limit_while_read_stops_the_reading_with_413() -> None:
    exchange = Exchange("POST", {}, limit=5)
    assert exchange.feed(b"abc") is True
    assert exchange.reading
    assert exchange.feed(b"def") is False
    assert exchange.answer is not None
    assert exchange.answer.status_code == 413
    assert exchange.body == b""  # nothing of a refused body is kept


def test_a_body_under_the_limit_is_collected_whole() -> None:
    exchange = Exchange("POST", {"content-length": "6"}, limit=6)
    for chunk in (b"ab", b"cd", b"ef"):
        assert exchange.feed(chunk) is True
    assert exchange.answer is None
    assert exchange.body == b"abcdef"


def test_a_refusal_is_logged_and_reported_to_the_observers(caplog: pytest.LogCaptureFixture) -> None:
    reports: list[DeliveryReport] = []
    with caplog.at_level(logging.WARNING, "kreuzberg_webhooks"):
        Exchange("PUT", {}, limit=10, observers=[reports.append])
    assert [(r.status_code, r.reason, r.mode, r.event_id) for r in reports] == [
        (405, "method_not_allowed", "endpoint", None)
    ]
    assert "webhook delivery rejected: method_not_allowed (status=405" in caplog.text
