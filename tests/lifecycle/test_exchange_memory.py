"""How much a large delivery costs in memory through a public adapter: the body is kept once.

A job document carries the extracted text, so one delivery can be tens of MiB.
Allocations are counted by ``tracemalloc``: deterministic for a given body, so
the bound holds on any machine (nothing here is timed).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import json
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

from kreuzberg_webhooks import MemoryStore, Receiver, sign_timestamped
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware
from kreuzberg_webhooks.adapters.wsgi import KreuzbergWebhookMiddleware as WSGIMiddleware

SECRET = "memory-test-secret-0123456789abcdef0123"
MIB = 1024 * 1024
#: Large enough that the receiver's fixed allocations are lost in it.
SIZE = 8 * MIB
CHUNK = 64 * 1024
#: A line of extracted text as JSON writes it: an escaped newline every 70 characters,
#: so the parsed text is a little shorter than the body.
_LINE = json.dumps("Invoice 12345 - total due: 1,234.56 EUR; payable within 30 days.\n")[1:-1].encode()


def _chunks(job_id: str, created_at: str) -> Iterator[bytes]:
    head = json.dumps({"id": job_id, "filename": "report.pdf", "status": "completed", "created_at": created_at})
    head_bytes = head[:-1].encode() + b', "result": {"content": "'
    tail = b'", "mime_type": "text/markdown", "tables": [], "images": [], "metadata": {}}}'
    lines = (SIZE - len(head_bytes) - len(tail)) // len(_LINE)
    per_chunk = CHUNK // len(_LINE)
    yield head_bytes
    for start in range(0, lines, per_chunk):
        yield _LINE * min(per_chunk, lines - start)
    yield tail


def _signed(signature_format: str) -> tuple[str, str, str, int]:
    """A fresh document's job id, creation time, signature and length, signed as it is generated."""
    job_id = str(uuid.uuid4())
    created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    timestamp = int(time.time())
    mac = hmac.new(SECRET.encode(), digestmod=hashlib.sha256)
    if signature_format == "t-v1":
        mac.update(b"%d." % timestamp)
    length = 0
    for chunk in _chunks(job_id, created_at):
        mac.update(chunk)
        length += len(chunk)
    signature = f"t={timestamp},v1={mac.hexdigest()}" if signature_format == "t-v1" else "sha256=" + mac.hexdigest()
    return job_id, created_at, signature, length


def _deliver(app: Any, signature_format: str) -> tuple[int, int]:
    """One delivery of a freshly generated document through ASGI; the test holds no copy of the body."""
    job_id, created_at, signature, length = _signed(signature_format)
    chunks = _chunks(job_id, created_at)
    pending = [next(chunks)]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks",
        "raw_path": b"/webhooks",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
            (b"x-webhook-signature", signature.encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        current = pending.pop()
        following = next(chunks, None)
        if following is not None:
            pending.append(following)
        return {"type": "http.request", "body": current, "more_body": following is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    asyncio.run(app(scope, receive, send))
    return statuses[0], length


class _GeneratedInput:
    """``wsgi.input`` reading a generated document chunk by chunk, as a server's socket would."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending += chunk
        taken = self._pending if size < 0 else self._pending[:size]
        self._pending = self._pending[len(taken) :]
        return taken


def _deliver_wsgi(app: Any, signature_format: str) -> tuple[int, int]:
    """One delivery through the WSGI middleware (a sync receiver), read from a generated input."""
    job_id, created_at, signature, length = _signed(signature_format)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(length),
        "HTTP_X_WEBHOOK_SIGNATURE": signature,
        "wsgi.input": _GeneratedInput(_chunks(job_id, created_at)),
    }
    statuses: list[str] = []
    b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    return int(statuses[0].split()[0]), length


def _app(received: list[int]) -> Any:
    async def elsewhere(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the middleware answers at its path")

    receiver = Receiver(SECRET, store=MemoryStore())

    @receiver.on()
    async def on_document(event: Any) -> None:
        received.append(len(event.result.content))

    return KreuzbergWebhookMiddleware(elsewhere, receiver=receiver, path="/webhooks")


def _wsgi_app(received: list[int]) -> Any:
    def elsewhere(environ: Any, start_response: Any) -> Any:
        raise AssertionError("the middleware answers at its path")

    receiver = Receiver(SECRET, store=MemoryStore())

    @receiver.on()
    def on_document(event: Any) -> None:
        received.append(len(event.result.content))

    return WSGIMiddleware(elsewhere, receiver=receiver, path="/webhooks")


def _peak_ratio(signature_format: str, server: str = "asgi") -> float:
    received: list[int] = []
    app, deliver = (_app(received), _deliver) if server == "asgi" else (_wsgi_app(received), _deliver_wsgi)
    assert deliver(app, signature_format)[0] == 200  # every code path loaded before counting
    gc.collect()
    tracemalloc.start()
    try:
        status, length = deliver(app, signature_format)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 200
    assert len(received) == 2
    assert received[1] > SIZE * 0.9
    return peak / length


def test_a_large_document_signed_sha256_peaks_near_the_parsed_document_alone() -> None:
    # Body, decoded text and parsed document alive together made 3.1x; the body kept
    # once as its text, 2.1x; decoded from its chunks, each freed once decoded, the
    # document and a chunk or two are left: about 1.05x.
    assert _peak_ratio("sha256") < 1.3


def test_a_large_document_signed_t_v1_peaks_near_the_parsed_document_alone() -> None:
    assert _peak_ratio("t-v1") < 1.3


def test_a_large_document_through_the_wsgi_middleware_peaks_near_the_parsed_document_alone() -> None:
    assert _peak_ratio("sha256", server="wsgi") < 1.3


def test_sign_timestamped_matches_the_streamed_signature_of_the_memory_test() -> None:
    # The test signs by streaming HMAC to hold no copy of the body: the same as the package signs.
    body = b"".join(_chunks("job", "2026-01-01T00:00:00Z"))
    mac = hmac.new(SECRET.encode(), b"7." + body, hashlib.sha256).hexdigest()
    assert sign_timestamped(body, SECRET, timestamp=7) == f"t=7,v1={mac}"
