"""JSON decoding (``protocol/decoding.py``) as the verifier sees it: edge cases are a 400, never a crash."""

from __future__ import annotations

import json

import pytest

from kreuzberg_webhooks import (
    InvalidPayload,
    JobEvent,
)
from tests.protocol.support import (
    PREFIX,
    VALID,
    make_verifier,
    rejection,
    signed,
)

JSON_EDGE_CASES = [
    pytest.param(b"[" * 100_000, "invalid_json", id="100000-brackets"),
    pytest.param(b'{"a":' * 100_000, "invalid_json", id="100000-nested-objects"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "invalid_json", id="100000-balanced-brackets"),
    pytest.param(PREFIX + b',"timestamp":' + b"1" + b"0" * 5000 + b"}", "invalid_json", id="timestamp-5000-digits"),
    pytest.param(PREFIX + b',"timestamp":' + b"1" + b"0" * 400 + b"}", "invalid_field", id="timestamp-400-digits"),
    pytest.param(PREFIX + b',"timestamp":1e400}', "invalid_field", id="timestamp-float-overflow"),
    pytest.param(PREFIX + b',"timestamp":NaN}', "invalid_json", id="nan"),
    pytest.param(PREFIX + b',"timestamp":Infinity}', "invalid_json", id="infinity"),
    pytest.param(PREFIX + b',"timestamp":-Infinity}', "invalid_json", id="minus-infinity"),
    pytest.param(PREFIX + b',"extra":NaN}', "invalid_json", id="nan-in-an-unknown-field"),
    pytest.param(PREFIX + b',"extra":"\xff"}', "invalid_json", id="invalid-utf8-in-a-string"),
    pytest.param(PREFIX + b',"extra":"\xed\xa0\x80"}', "invalid_json", id="utf8-encoded-surrogate"),
    pytest.param(VALID.decode().encode("utf-16"), "invalid_json", id="utf16"),
    pytest.param(b"\xef\xbb\xbf\xef\xbb\xbf" + VALID, "invalid_json", id="two-boms"),
    pytest.param(b"", "invalid_json", id="empty-body"),
    pytest.param(b"   ", "invalid_json", id="whitespace"),
    pytest.param(VALID + b"{}", "invalid_json", id="trailing-data"),
    pytest.param(b"null", "not_an_object", id="null"),
    pytest.param(b'"a string"', "not_an_object", id="string"),
    pytest.param(b"[]", "not_an_object", id="array"),
    pytest.param(b"1e999", "not_an_object", id="number-infinite"),
    pytest.param(b"{}", "missing_field", id="empty-object"),
    pytest.param(PREFIX + b',"event_id":"\\ud800"}', "invalid_field", id="lone-surrogate-event-id"),
    pytest.param(PREFIX + b',"attempt_count":true}', "invalid_field", id="bool-attempt-count"),
    pytest.param(PREFIX + b',"timestamp":false}', "invalid_field", id="bool-timestamp"),
    pytest.param(PREFIX + b',"job_id":null}', "invalid_field", id="null-job-id"),
]


@pytest.mark.parametrize(("body", "reason"), JSON_EDGE_CASES)
def test_json_edge_cases_are_400_never_a_crash(body: bytes, reason: str) -> None:
    error = rejection(make_verifier(), body, signed(body))
    assert (error.status_code, error.reason) == (400, reason)
    assert isinstance(error, InvalidPayload)


def test_duplicate_keys_keep_the_last_value() -> None:
    body = PREFIX + b',"status":"failed","status":"cancelled"}'
    event = make_verifier().verify(body, signed(body))
    assert event.status == "cancelled"
    assert event.type == "job.cancelled"


def test_a_utf8_bom_is_accepted() -> None:
    body = b"\xef\xbb\xbf" + VALID
    event = make_verifier().verify(body, signed(body))
    assert isinstance(event, JobEvent)
    assert event.raw == json.loads(VALID)


def test_surrounding_whitespace_is_accepted() -> None:
    body = b"\r\n " + VALID + b"\n"
    assert isinstance(make_verifier().verify(body, signed(body)), JobEvent)


def test_escaped_unicode_in_unknown_fields_is_kept() -> None:
    body = PREFIX + b',"note":"caf\\u00e9 \\ud83d\\ude00 \\udfff"}'
    event = make_verifier().verify(body, signed(body))
    assert event.raw["note"] == "café \U0001f600 \udfff"
