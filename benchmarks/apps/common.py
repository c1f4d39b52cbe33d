"""What every benchmark app shares: the secret, the path, and our receiver."""

from __future__ import annotations

from kreuzberg_webhooks import MemoryStore, Receiver

from ..deliveries import SECRET

PATH = "/webhooks/kreuzberg"
KEY = SECRET.encode()
SIGNATURE_HEADER = "X-Webhook-Signature"


def receiver() -> Receiver:
    """A receiver with an in-memory store big enough for a whole benchmark run."""
    return Receiver(SECRET, store=MemoryStore(max_entries=2_000_000))
