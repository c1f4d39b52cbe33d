"""A large body read through a receiver's exchange is streamed, and what needs the exact bytes gets them:
the inbox stores them, ``on_invalid_payload`` is given them, a guard replays them."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from kreuzberg_webhooks import Delivery, MemoryStore, Receiver, sign, sign_timestamped
from kreuzberg_webhooks.protocol.body import STREAM_FROM, StreamedBody
from kreuzberg_webhooks.testing import job_document_payload

SECRET = "exchange-stream-secret-0123456789abcdef"


class ListInbox:
    """An inbox writer that keeps what it is given."""

    def __init__(self) -> None:
        self.entries: list[Any] = []

    def enqueue(self, entry: Any) -> bool:
        self.entries.append(entry)
        return True


def _document(text: str) -> bytes:
    payload = job_document_payload()
    payload["result"]["content"] = text * (2 * STREAM_FROM // len(text.encode()))
    return json.dumps(payload, ensure_ascii=False).encode()


def _read(receiver: Receiver, body: bytes, headers: dict[str, str]) -> Any:
    exchange = receiver.exchange("POST", headers)
    for start in range(0, len(body), 65536):
        assert exchange.feed(body[start : start + 65536])
    return exchange


@pytest.mark.parametrize("text", ["plain line\n", "żółw · 亀 🐢\n"], ids=["ascii", "multi-byte-split-across-chunks"])
@pytest.mark.parametrize("signature", ["sha256", "t-v1"])
def test_the_inbox_stores_the_exact_signed_bytes_of_a_streamed_body(text: str, signature: str) -> None:
    body = _document(text)
    header = sign(body, SECRET) if signature == "sha256" else sign_timestamped(body, SECRET)
    headers = {"X-Webhook-Signature": header}
    inbox = ListInbox()
    receiver = Receiver(SECRET, store=MemoryStore(), inbox=inbox)
    exchange = _read(receiver, body, headers)
    assert isinstance(exchange.delivery, StreamedBody)
    outcome = receiver.handle(exchange.delivery, headers)
    assert outcome.status_code == 202
    assert [entry.body for entry in inbox.entries] == [body]


def test_a_streamed_signed_body_that_is_no_delivery_is_reported_with_its_exact_bytes() -> None:
    body = json.dumps(["not an object", "x" * 2 * STREAM_FROM]).encode()
    reported: list[bytes] = []
    receiver = Receiver(SECRET, store=MemoryStore(), on_invalid_payload=lambda raw, error: reported.append(raw))
    headers = {"X-Webhook-Signature": sign(body, SECRET)}
    exchange = _read(receiver, body, headers)
    outcome = receiver.handle(exchange.delivery, headers)
    assert (outcome.status_code, outcome.reason) == (400, "not_an_object")
    assert reported == [body]


def test_a_streamed_body_with_a_wrong_signature_is_answered_as_a_whole_one_is() -> None:
    body = _document("line\n")
    headers = {"X-Webhook-Signature": sign(body + b" ", SECRET)}
    streamed = Receiver(SECRET, store=MemoryStore())
    whole = Receiver(SECRET, store=MemoryStore())
    answer = streamed.handle(_read(streamed, body, headers).delivery, headers)
    assert (answer.status_code, answer.reason, answer.body) == (
        (expected := whole.handle(body, headers)).status_code,
        expected.reason,
        expected.body,
    )
    assert answer.status_code == 401


def test_a_guard_gets_the_exact_bytes_of_a_streamed_body() -> None:
    body = _document("żółw\n")
    headers = {"X-Webhook-Signature": sign(body, SECRET)}
    receiver = Receiver(SECRET, store=MemoryStore())
    exchange = _read(receiver, body, headers)
    assert exchange.body == body
    assert exchange.body == body  # asked again: the same bytes, kept once
    started = receiver.begin(exchange.body, headers)
    assert isinstance(started, Delivery)  # verified and claimed


@pytest.mark.parametrize("size", [100, 2 * STREAM_FROM], ids=["small", "streamed"])
def test_an_exchange_is_freed_as_soon_as_it_is_dropped(size: int) -> None:
    # No reference cycle: a large body must not wait for the garbage collector to be freed.
    body = _document("line\n")[:size]
    headers = {"X-Webhook-Signature": sign(body, SECRET)}
    receiver = Receiver(SECRET, store=MemoryStore())
    gc.collect()
    gc.disable()
    try:
        exchange = _read(receiver, body, headers)
        assert exchange.delivery is not None
        del exchange
        assert gc.collect() == 0
    finally:
        gc.enable()
