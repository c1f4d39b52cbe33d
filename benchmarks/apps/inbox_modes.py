"""The inbox benchmark's app: the Starlette example's shape, in endpoint mode or inbox mode.

``KREUZBERG_BENCH_MODE``: ``endpoint`` (the SQLite replay store, a no-op handler run in the
request), ``inbox`` (the same store, plus a SQLite inbox with ``synchronous=FULL``: the request
writes the delivery and answers 202; the embedded worker runs the no-op handler in the same
process), ``inbox-normal`` (the inbox with ``synchronous=NORMAL``, the store's own setting),
or ``inbox-redis`` / ``inbox-postgres`` (the inbox at ``KREUZBERG_BENCH_INBOX_URL``).
The database file is ``KREUZBERG_BENCH_DB``.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware

from kreuzberg_webhooks import Event, Receiver, SQLiteStore
from kreuzberg_webhooks.adapters.asgi import KreuzbergWebhookMiddleware
from kreuzberg_webhooks.inbox import AsyncSQLiteInbox, open_inbox
from kreuzberg_webhooks.inbox.worker import InboxWorker

from ..deliveries import SECRET
from .common import PATH

DATABASE = os.environ["KREUZBERG_BENCH_DB"]
MODE = os.environ["KREUZBERG_BENCH_MODE"]
INBOX = MODE.startswith("inbox")

# The inbox in a file of its own: SQLite has one writer per file, and the store and the inbox
# then do not wait for each other.
SYNCHRONOUS = "NORMAL" if MODE == "inbox-normal" else "FULL"
# inbox-redis / inbox-postgres: the inbox on that server (KREUZBERG_BENCH_INBOX_URL), the store unchanged.
INBOX_URL = os.environ.get("KREUZBERG_BENCH_INBOX_URL")
inbox: Any = None
if INBOX_URL:
    inbox = open_inbox(INBOX_URL, asynchronous=True)
elif INBOX:
    inbox = AsyncSQLiteInbox(DATABASE + ".inbox", synchronous=SYNCHRONOUS)
receiver = Receiver(SECRET, store=SQLiteStore(DATABASE), inbox=inbox)


@receiver.on()
def no_op(event: Event) -> None:
    """Nothing: the benchmark measures the acknowledgement, not the work."""


worker = InboxWorker(receiver, poll_interval=0.05) if INBOX else None
app = Starlette(
    middleware=[Middleware(KreuzbergWebhookMiddleware, receiver=receiver, path=PATH)],
    lifespan=worker.lifespan if worker is not None else None,
)
