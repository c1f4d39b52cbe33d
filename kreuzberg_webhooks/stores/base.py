"""The replay-store interface every store implements.

A store remembers, per delivery key, one of three states: unknown, *in
flight* (claimed, with a lease that expires) or *done* (kept for the
retention period). Three operations, each atomic in the store:

* ``claim(key, lease)`` — unknown or expired → take a lease and return
  ``NEW`` with a token; done → ``DONE``; leased → ``IN_FLIGHT`` with the
  seconds left on the lease.
* ``complete(key, token, retention)`` — mark done for *retention* seconds.
* ``release(key, token)`` — forget the claim, but only if *token* still holds
  it (a lease that expired and was re-claimed belongs to someone else).

And one optional operation, which every store shipped here has:

* ``renew(key, token, lease) -> bool`` — if *token* still holds *key*'s claim
  (in flight: not completed, not released, not taken over by another claim
  after it expired), move its expiry to now + *lease* and answer ``True``;
  otherwise change nothing and answer ``False``. The receiver calls it while
  an event's handlers run (a heartbeat), so that a handler slower than the
  lease is not run a second time by a claim that finds the lease over. A
  claim whose lease ran out but which nobody took over either still holds
  (renewed, ``True``) or is already forgotten (``False``: Redis's TTL has
  deleted it, a purge has removed its row); each store says which. A
  *lease* that is not a finite positive number of seconds is refused as
  ``claim`` refuses it (``ValueError``). Atomic like the others: the token
  check and the new expiry are one step in the store.

A store of your own needs only the first three (:class:`ReplayStore`,
:class:`AsyncReplayStore`): without ``renew`` the receiver does not renew its
claims, and a handler that runs longer than the lease may run twice.

A store that cannot be reached raises any exception; the receiver answers
503 so the sender retries.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["AsyncReplayStore", "Claim", "ClaimState", "ReplayStore"]


class ClaimState(Enum):
    """What a claim found."""

    NEW = "new"
    DONE = "done"
    IN_FLIGHT = "in_flight"


class Claim(NamedTuple):
    """The answer to ``claim``: the state, the lease token (``NEW`` only) and,
    for ``IN_FLIGHT``, the seconds left on the other request's lease.

    A named tuple (immutable and hashable), not a frozen dataclass: one is built
    for every delivery, for half the cost.
    """

    state: ClaimState
    token: str | None = None
    retry_after: float = 0.0


@runtime_checkable
class ReplayStore(Protocol):
    """A synchronous replay store (``renew(key, token, lease) -> bool`` is optional; see above)."""

    def claim(self, key: str, lease: float) -> Claim: ...

    def complete(self, key: str, token: str, retention: float) -> None: ...

    def release(self, key: str, token: str) -> None: ...


@runtime_checkable
class AsyncReplayStore(Protocol):
    """An asynchronous replay store: the same operations as coroutines (``renew`` too, where it has it)."""

    async def claim(self, key: str, lease: float) -> Claim: ...

    async def complete(self, key: str, token: str, retention: float) -> None: ...

    async def release(self, key: str, token: str) -> None: ...
