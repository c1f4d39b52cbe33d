"""The sender's retry schedule (``docs/contract.md`` §3): what the simulator and the
emulator send by, and what the reconciler waits out before it polls."""

from __future__ import annotations

__all__ = ["MAX_ATTEMPTS", "RETRY_DELAYS", "SENDER_TIMEOUT"]

#: Waits before attempts 2, 3, 4 and 5, in seconds (5 s → 30 s → 5 min, then 5 min again).
RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 300.0, 300.0)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
#: The sender gives up waiting for an answer after 30 s.
SENDER_TIMEOUT = 30.0
