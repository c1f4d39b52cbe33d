"""What many test modules share: a secret, a fixed time, a recording handler, a store that is down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kreuzberg_webhooks import Claim, Event

SECRET = "suite-test-secret-0123456789abcdef0123"
NOW = 1_800_000_000.0


@dataclass
class Recorder:
    """A handler that records what it saw; raises while ``fail`` is set."""

    events: list[Event] = field(default_factory=list)
    fail: bool = False
    also: Callable[[Event], None] | None = None
    #: What the handler raises with: tests check it never reaches an answer.
    message: str = "handler failed on purpose"

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if self.also is not None:
            self.also(event)
        if self.fail:
            raise RuntimeError(self.message)


class DownStore:
    """A replay store whose backend cannot be reached (by default with credentials in its error)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or ConnectionError("redis://:s3cr3t-pw@cache:6379 refused")

    def claim(self, key: str, lease: float) -> Claim:
        raise self.error

    def complete(self, key: str, token: str, retention: float) -> None:
        raise self.error

    def release(self, key: str, token: str) -> None:
        raise self.error
