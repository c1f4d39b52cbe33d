"""Row 5: peak memory of one job-document delivery through the ASGI middleware.

Run in a fresh process (``python -m benchmarks.memory SIZE [endpoint|inbox]``):
it prints one JSON line. ``endpoint`` (the default) runs a no-op handler;
``inbox`` writes the delivery to a SQLite inbox in a temporary directory (the
inbox stores the exact signed bytes; SQLite's own copies are its C allocations,
outside ``tracemalloc``, in the resident-set figure only). The body is generated chunk by chunk inside ``receive()`` and
signed by streaming HMAC beforehand, so the process never holds a copy of it
except the receiver's own. Two figures: the growth of the peak resident set
over the idle (warmed-up) process, and the peak of a second delivery's
allocations under ``tracemalloc``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from typing import Any

CHUNK = 64 * 1024
# Created now: a job document is bounded by its created_at (the verifier's document window).
_CREATED_AT = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode()
_LINE = json.dumps("Invoice 12345 - total due: 1,234.56 EUR; payable within 30 days.\n")[1:-1].encode()


def _parts(size: int, job_id: str) -> tuple[bytes, int, bytes]:
    head = json.dumps({"id": job_id, "filename": "report.pdf", "status": "completed"})[:-1].encode()
    head += b', "created_at": "' + _CREATED_AT + b'", "result": {"content": "'
    tail = b'", "mime_type": "text/markdown", "tables": [], "images": [], "metadata": {}}, "metadata": {"r": 1}}'
    lines = max(1, (size - len(head) - len(tail)) // len(_LINE))
    return head, lines, tail


def body_chunks(size: int, job_id: str) -> Iterator[bytes]:
    """The document in chunks of about 64 KiB, generated as they are needed."""
    head, lines, tail = _parts(size, job_id)
    per_chunk = CHUNK // len(_LINE)
    yield head
    for start in range(0, lines, per_chunk):
        yield _LINE * min(per_chunk, lines - start)
    yield tail


def _signature(secret: str, size: int, job_id: str) -> tuple[str, int]:
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    length = 0
    for chunk in body_chunks(size, job_id):
        mac.update(chunk)
        length += len(chunk)
    return "sha256=" + mac.hexdigest(), length


def _max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


async def _deliver(app: Any, secret: str, size: int) -> tuple[int, int]:
    job_id = str(uuid.uuid4())
    signature, length = _signature(secret, size, job_id)
    chunks = body_chunks(size, job_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(length).encode()),
        (b"x-webhook-signature", signature.encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/kreuzberg",
        "raw_path": b"/webhooks/kreuzberg",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    # The last chunk must say more_body=False: wrap the generator to look ahead one.
    pending = [next(chunks)]

    async def receive_with_end() -> dict[str, Any]:
        current = pending.pop()
        following = next(chunks, None)
        if following is not None:
            pending.append(following)
        return {"type": "http.request", "body": current, "more_body": following is not None}

    await app(scope, receive_with_end, send)
    return status[0], length


def measure(size: int, mode: str = "endpoint") -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        return _measure(size, mode, directory)


def _measure(size: int, mode: str, directory: str) -> dict[str, Any]:
    from kreuzberg_webhooks import MemoryStore, Receiver
    from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware

    from .deliveries import SECRET

    async def not_found(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the middleware should have answered")

    inbox: Any = None
    if mode == "inbox":
        from kreuzberg_webhooks.inbox.sqlite import SQLiteInbox

        inbox = SQLiteInbox(f"{directory}/inbox.sqlite3")
    elif mode != "endpoint":
        raise SystemExit(f"unknown mode {mode!r}: endpoint or inbox")
    receiver = Receiver(SECRET, store=MemoryStore(), inbox=inbox)
    handled: list[str] = []

    @receiver.on()
    async def on_event(event: Any) -> None:
        handled.append(event.type)

    app = KreuzbergWebhookMiddleware(not_found, receiver=receiver, path="/webhooks/kreuzberg")
    warm_status, _ = asyncio.run(_deliver(app, SECRET, 64 * 1024))  # every code path loaded, allocators warm
    idle = _max_rss()
    status, length = asyncio.run(_deliver(app, SECRET, size))
    peak = _max_rss()
    # The same again under tracemalloc: every Python allocation counted, which
    # the kernel's page reclaim on a busy machine cannot blur.
    tracemalloc.start()
    traced_status, _ = asyncio.run(_deliver(app, SECRET, size))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if inbox is not None:  # the handler runs later, in the inbox's worker: count what was written
        handled.extend("queued" for _ in range(sum(inbox.counts().values())))
    return {
        "status": status,
        "traced_status": traced_status,
        "warm_status": warm_status,
        "handled": len(handled),
        "body_bytes": length,
        "idle_rss": idle,
        "peak_rss": peak,
        "growth": peak - idle,
        "traced_peak": traced_peak,
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]), *sys.argv[2:3])))
    sys.exit(0)
