"""What a streamed job document costs in memory (issue 20): decoded from the chunks it arrived in, it is
held about once, as its document, when nothing needs its bytes after, and about twice, as its bytes and
its document, when an inbox stores the bytes; a join of the text or of the bytes never doubles it."""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

import kreuzberg_webhooks.inbox.base  # noqa: F401  # imported before the measure: the inbox imports it on first use
from kreuzberg_webhooks import MemoryStore, Receiver
from kreuzberg_webhooks.testing import job_document_payload

SECRET = "streaming-memory-secret-0123456789abcdef"
SIZE = 8 * 1024 * 1024
# Lines of extracted text as JSON spells them: escapes in them, as in every real document.
_ASCII = json.dumps('Invoice 12345 - "total" due: 1,234.56 EUR; payable within 30 days.\n')[1:-1].encode()
_WIDE = json.dumps("Rechnung 12345 - żółw 🐢 fällig in 30 Tagen.\n", ensure_ascii=False)[1:-1].encode()


def _chunks(payload: dict[str, Any], line: bytes) -> Iterator[bytes]:
    """The document in chunks of 64 KiB, made as they are read: the test never holds the body."""
    head, tail = json.dumps(payload).encode().split(b'"@content@"')
    yield head + b'"'
    lines = SIZE // len(line)
    per_chunk = 65536 // len(line)
    for start in range(0, lines, per_chunk):
        yield line * min(per_chunk, lines - start)
    yield b'"' + tail


class DigestInbox:
    """An inbox writer that keeps the digest and the size of what it is given."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, int]] = []

    def enqueue(self, entry: Any) -> bool:
        self.bodies.append((hashlib.sha256(entry.body).hexdigest(), len(entry.body)))
        return True


@pytest.mark.parametrize("line", [_ASCII, _WIDE], ids=["ascii", "wide-characters"])
@pytest.mark.parametrize(("mode", "bytes_held"), [("endpoint", 0), ("inbox", 1)])
def test_a_streamed_document_is_held_as_its_document_and_its_bytes_only_with_an_inbox(
    mode: str, bytes_held: int, line: bytes
) -> None:
    payload = job_document_payload()
    payload["result"]["content"] = "@content@"
    mac, digest, size = hmac.new(SECRET.encode(), digestmod=hashlib.sha256), hashlib.sha256(), 0
    for chunk in _chunks(payload, line):
        mac.update(chunk)
        digest.update(chunk)
        size += len(chunk)
    headers = {"X-Webhook-Signature": "sha256=" + mac.hexdigest()}
    inbox = DigestInbox() if mode == "inbox" else None
    receiver = Receiver(SECRET, store=MemoryStore(), inbox=inbox)
    contents: list[int] = []

    @receiver.on()
    def on_event(event: Any) -> None:
        contents.append(sys.getsizeof(event.raw["result"]["content"]))

    gc.collect()
    tracemalloc.start()
    try:
        exchange = receiver.exchange("POST", headers)
        for chunk in _chunks(payload, line):
            assert exchange.feed(chunk)
        outcome = receiver.handle(exchange.delivery, headers)
        del exchange
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if inbox is None:
        assert (outcome.status_code, len(contents)) == (200, 1)
        document = contents[0]  # the document is its content: what decoding it must cost at least
    else:
        assert outcome.status_code == 202
        assert inbox.bodies == [(digest.hexdigest(), size)]  # the exact signed bytes, stored once
        document = sys.getsizeof(json.loads(b"".join(_chunks(payload, line)))["result"]["content"])
    # Besides the document: its bytes when they are kept, and a fraction of the body in transit.
    allowed = document + (bytes_held + 0.25) * size
    assert peak < allowed, f"peak {peak / size:.2f}x the body, allowed {allowed / size:.2f}x"
