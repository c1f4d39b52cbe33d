"""The contract every adapter honours: docs/contract.md §4, row by row.

Each adapter's test module subclasses :class:`AdapterContract` and implements
:meth:`AdapterContract.open_poster`, which mounts *receiver* in the framework
(in endpoint mode the receiver's registered handlers run; in guard mode the
adapter's own view must call *handler* with the typed event) and yields a
function that sends one request through the framework's own test client.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kreuzberg_webhooks import Event, MemoryStore, Receiver, ReplayWindow, sign
from kreuzberg_webhooks.events import parse_event
from kreuzberg_webhooks.testing import job_document_payload, job_event_payload, signed_delivery
from tests.support import DownStore

SECRET = "contract-secret-0123456789abcdef0123456789"
NOW = 1_800_000_000.0
PATH = "/webhooks/kreuzberg"
LIMIT = 4096


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


#: (method, path, body, header pairs — a name may repeat) -> Answer
Poster = Callable[[str, str, bytes, list[tuple[str, str]]], Answer]


@dataclass
class Recorder:
    """The application's handler: records events, or raises while `fail` is set."""

    events: list[Event] = field(default_factory=list)
    fail: bool = False

    def __call__(self, event: Event) -> None:
        if self.fail:
            raise RuntimeError("handler failed on purpose")
        self.events.append(event)


def make_receiver(recorder: Recorder, store: Any = None) -> Receiver:
    receiver = Receiver(
        SECRET,
        store=store if store is not None else MemoryStore(),
        clock=lambda: NOW,
        window=ReplayWindow(max_age=600, max_future=60),
        max_body_size=LIMIT,
    )
    receiver.on()(recorder)
    return receiver


def pairs(headers: dict[str, str]) -> list[tuple[str, str]]:
    return list(headers.items())


class AdapterContract:
    """Shared cases; subclasses implement `open_poster`."""

    def open_poster(
        self, receiver: Receiver, handler: Callable[[Event], None]
    ) -> contextlib.AbstractContextManager[Poster]:
        raise NotImplementedError

    @pytest.fixture
    def recorder(self) -> Recorder:
        return Recorder()

    @pytest.fixture
    def post(self, recorder: Recorder) -> Iterator[Poster]:
        with self.open_poster(make_receiver(recorder), recorder) as poster:
            yield poster

    def deliver(self, post: Poster, **overrides: Any) -> tuple[Answer, dict[str, Any]]:
        payload = job_event_payload(now=NOW, **overrides)
        body, headers = signed_delivery(SECRET, payload)
        return post("POST", PATH, body, pairs(headers)), payload

    def assert_error(self, answer: Answer, status: int, reason: str) -> None:
        assert answer.status == status, answer
        assert answer.headers.get("content-type", "").startswith("application/json")
        assert answer.json()["error"] == reason

    # -- 2xx ---------------------------------------------------------------

    def test_valid_delivery_runs_handler_once(self, post: Poster, recorder: Recorder) -> None:
        answer, payload = self.deliver(post)
        assert answer.status == 200, answer
        assert [e.event_id for e in recorder.events] == [payload["event_id"]]

    def test_same_event_again_is_acknowledged_as_duplicate(self, post: Poster, recorder: Recorder) -> None:
        payload = job_event_payload(now=NOW)
        body, headers = signed_delivery(SECRET, payload)
        first = post("POST", PATH, body, pairs(headers))
        retry = dict(payload, attempt_count=2)  # a retry is re-signed with its new attempt_count
        second_body, second_headers = signed_delivery(SECRET, retry)
        second = post("POST", PATH, second_body, pairs(second_headers))
        assert (first.status, second.status) == (200, 200)
        assert second.json() == {"status": "duplicate"}
        assert len(recorder.events) == 1

    def test_unknown_status_and_fields_reach_the_handler(self, post: Poster, recorder: Recorder) -> None:
        answer, _ = self.deliver(post, status="archived", shard="eu-2")
        assert answer.status == 200, answer
        (event,) = recorder.events
        assert event.status == "archived"
        assert event.type == "job.archived"
        assert event.raw["shard"] == "eu-2"

    def test_job_document_shape_is_processed_once(self, post: Poster, recorder: Recorder) -> None:
        body, headers = signed_delivery(SECRET, job_document_payload(now=NOW, metadata={"request_id": "r-1"}))
        first = post("POST", PATH, body, pairs(headers))
        again = post("POST", PATH, body, pairs(headers))
        assert (first.status, again.status) == (200, 200)
        assert again.json() == {"status": "duplicate"}
        (event,) = recorder.events
        assert event.metadata == {"request_id": "r-1"}  # type: ignore[union-attr]

    # -- 401 ---------------------------------------------------------------

    def test_forged_signature_is_401(self, post: Poster, recorder: Recorder) -> None:
        body, headers = signed_delivery("another-secret-0123456789abcdef0123", job_event_payload(now=NOW))
        self.assert_error(post("POST", PATH, body, pairs(headers)), 401, "signature_mismatch")
        assert recorder.events == []

    def test_missing_signature_is_401(self, post: Poster, recorder: Recorder) -> None:
        body, headers = signed_delivery(None, job_event_payload(now=NOW))
        self.assert_error(post("POST", PATH, body, pairs(headers)), 401, "missing_signature")
        assert recorder.events == []

    def test_malformed_signature_is_401(self, post: Poster) -> None:
        body, headers = signed_delivery(None, job_event_payload(now=NOW), signature="sha1=abc")
        self.assert_error(post("POST", PATH, body, pairs(headers)), 401, "malformed_signature")

    def test_duplicate_signature_header_lines_are_401(self, post: Poster, recorder: Recorder) -> None:
        body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
        good = headers["X-Webhook-Signature"]
        lines = [*pairs(headers), ("X-Webhook-Signature", good)]
        self.assert_error(post("POST", PATH, body, lines), 401, "malformed_signature")
        assert recorder.events == []

    def test_errors_never_echo_secret_signature_or_body(self, post: Poster) -> None:
        payload = job_event_payload(now=NOW, job_id="secret-looking-job-id")
        body, headers = signed_delivery("wrong-secret-0123456789abcdef0123456", payload)
        answer = post("POST", PATH, body, pairs(headers))
        expected = sign(body, SECRET).encode()
        for needle in (SECRET.encode(), expected, expected[7:], b"secret-looking-job-id", body):
            assert needle not in answer.body

    # -- 400 ---------------------------------------------------------------

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            pytest.param(b"{not json", "invalid_json", id="not-json"),
            pytest.param(b"\xff\xfe{}", "invalid_json", id="invalid-utf8"),
            pytest.param(b"[1, 2]", "not_an_object", id="array"),
            pytest.param(b'{"status": "completed"}', "missing_field", id="no-ids"),
        ],
    )
    def test_signed_but_invalid_payload_is_400(
        self, post: Poster, recorder: Recorder, body: bytes, reason: str
    ) -> None:
        headers = {"Content-Type": "application/json", "X-Webhook-Signature": sign(body, SECRET)}
        self.assert_error(post("POST", PATH, body, pairs(headers)), 400, reason)
        assert recorder.events == []

    def test_wrong_field_type_is_400(self, post: Poster) -> None:
        answer, _ = self.deliver(post, timestamp="yesterday")
        self.assert_error(answer, 400, "invalid_field")

    def test_stale_timestamp_is_400(self, post: Poster, recorder: Recorder) -> None:
        answer, _ = self.deliver(post, timestamp=int(NOW) - 601)
        self.assert_error(answer, 400, "stale_timestamp")
        assert recorder.events == []

    def test_future_timestamp_is_400(self, post: Poster) -> None:
        answer, _ = self.deliver(post, timestamp=int(NOW) + 61)
        self.assert_error(answer, 400, "future_timestamp")

    # -- 405, 413 ----------------------------------------------------------

    def test_get_is_405_not_a_redirect(self, post: Poster) -> None:
        answer = post("GET", PATH, b"", [])
        self.assert_error(answer, 405, "method_not_allowed")

    @pytest.mark.parametrize("method", ["OPTIONS", "PUT", "DELETE"])
    def test_other_methods_get_the_same_405(self, post: Poster, method: str) -> None:
        # Every adapter answers alike: no framework's automatic OPTIONS 200 at the webhook path.
        self.assert_error(post(method, PATH, b"", []), 405, "method_not_allowed")

    def test_body_over_limit_is_413(self, post: Poster, recorder: Recorder) -> None:
        payload = job_event_payload(now=NOW, padding="x" * LIMIT)
        body, headers = signed_delivery(SECRET, payload)
        self.assert_error(post("POST", PATH, body, pairs(headers)), 413, "payload_too_large")
        assert recorder.events == []

    # -- 429, 500, 503 -----------------------------------------------------

    def test_in_flight_duplicate_gets_429_with_retry_after(self, recorder: Recorder) -> None:
        store = MemoryStore()
        payload = job_event_payload(now=NOW)
        store.claim(parse_event(payload).dedup_key, 120.0)  # another request holds it
        body, headers = signed_delivery(SECRET, payload)
        with self.open_poster(make_receiver(recorder, store), recorder) as post:
            answer = post("POST", PATH, body, pairs(headers))
        self.assert_error(answer, 429, "in_flight")
        assert 1 <= int(answer.headers["retry-after"]) <= 120
        assert recorder.events == []

    def test_handler_error_is_500_and_the_retry_is_processed(self, post: Poster, recorder: Recorder) -> None:
        payload = job_event_payload(now=NOW)
        body, headers = signed_delivery(SECRET, payload)
        recorder.fail = True
        self.assert_error(post("POST", PATH, body, pairs(headers)), 500, "handler_error")
        recorder.fail = False
        retry = post("POST", PATH, body, pairs(headers))
        assert retry.status == 200, retry
        assert retry.json() == {"status": "processed"}
        assert len(recorder.events) == 1

    def test_store_unreachable_is_503_and_handler_does_not_run(self, recorder: Recorder) -> None:
        body, headers = signed_delivery(SECRET, job_event_payload(now=NOW))
        with self.open_poster(make_receiver(recorder, DownStore()), recorder) as post:
            answer = post("POST", PATH, body, pairs(headers))
        self.assert_error(answer, 503, "store_unavailable")
        assert recorder.events == []
