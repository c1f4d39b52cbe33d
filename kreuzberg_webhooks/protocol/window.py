"""The replay window: how far a signed time may lie behind or ahead of the receiver's clock."""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import FutureTimestamp, StaleTimestamp
from .durations import duration

__all__ = ["ReplayWindow"]


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """How far a signed ``timestamp`` may lie behind or ahead of the receiver's clock.

    The defaults accept every attempt of the documented retry schedule (5 s,
    30 s, 5 min) and of the "several hours" the other vendor document
    mentions, with 24 hours of tolerance, plus 5 minutes of clock skew.
    """

    max_age: float = 24 * 60 * 60
    max_future: float = 5 * 60

    def __post_init__(self) -> None:
        # Finite: an infinite window needs an infinite retention, which no store can keep.
        duration(self.max_age, "max_age")
        duration(self.max_future, "max_future", allow_zero=True)

    @property
    def span(self) -> float:
        """How long an event stays acceptable: the least a replay store must remember it."""
        return self.max_age + self.max_future

    def check(self, timestamp: float, now: float, *, event_id: str | None = None) -> None:
        """Raise :class:`StaleTimestamp` or :class:`FutureTimestamp` outside the window (edges inclusive)."""
        if now - timestamp > self.max_age:
            raise StaleTimestamp(event_id=event_id)
        if timestamp - now > self.max_future:
            raise FutureTimestamp(event_id=event_id)
