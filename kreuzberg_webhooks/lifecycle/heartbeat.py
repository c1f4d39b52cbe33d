"""Keeps the replay store's claim of every event whose handlers are running.

A claim holds for the receiver's lease (120 s by default), so that the event of a
process that died mid-handler is processed again once it runs out. A handler that
is alive but slow must not lose it: the reconciler, another worker or the
sender's next retry would claim the event and run its handlers a second time
while the first run goes on. So while an event's handlers run, one thread per
store renews its claim (``store.renew``) every third of the lease; a dead
process renews nothing and its claims run out as before.

The cost per delivery is two dict operations (:meth:`Heartbeat.hold`,
:meth:`Heartbeat.drop`): the thread renews, every third of the lease, whatever
claims are held at that moment — a handler that ends within a third of the lease
is most often never renewed at all. It starts with the first claim held and ends
within about two seconds of the last one's drop (it looks every second, so a
process that builds many receivers, a test suite, is not left with a sleeping
thread each for a third of the lease), or at once on :meth:`Heartbeat.stop` when
none is held.
A store without ``renew`` (a user's own that predates it) gets no heartbeat: its
handlers must end within the lease.

Guard mode's claim (:meth:`Receiver.begin`, then the application's own view,
then :meth:`Receiver.settle`) is held with :meth:`Heartbeat.hold_for`: renewed
until it is settled, but for at most a limit (the receiver's ``guard_renewal``,
one hour by default), since a delivery an adapter never settles would otherwise
be renewed for as long as the process lives. Past its limit a claim is dropped
with a WARNING naming its key, and runs out one lease after its last renewal at
the latest. Claims held with :meth:`Heartbeat.hold` have no limit, and cost
nothing for it: the limit is looked at only when a claim comes up for renewal.

The inbox worker keeps its deliveries' inbox leases with a heartbeat of its own
(``claim="inbox lease"``), one per worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeAlias

__all__ = ["Heartbeat"]

logger = logging.getLogger("kreuzberg_webhooks")

#: The most seconds a renewal is waited for: an async store's on its event loop, any by a
#: fork or a joining :meth:`Heartbeat.stop`.
_RENEW_TIMEOUT = 30.0
_NEVER = float("inf")
#: The longest the thread sleeps at a time: it ends within about twice this after the last
#: claim is dropped, whatever the lease (it still renews only every third of the lease).
_IDLE = 1.0


#: What is kept of a claim held: its lease (a sync store's, with no limit), (the lease, the
#: event loop) for an async store's, or (the lease, the event loop or None, the time on the
#: heartbeat's clock its renewal ends, the limit) for one held with :meth:`Heartbeat.hold_for`
#: (a tuple, not an object: built for every guarded request).
_Held: TypeAlias = (
    float | tuple[float, asyncio.AbstractEventLoop] | tuple[float, asyncio.AbstractEventLoop | None, float, float]
)


class Heartbeat:
    """One thread renewing, every third of their lease, the claims of the handlers running now.

    :param renew: the store's ``renew(key, token, lease) -> bool`` (a coroutine function
        for an async store: then each claim is held with the event loop it was made on,
        and renewed there).
    :param claim: what the log lines call a claim.
    :param lost: what the line about a lost claim says may follow.
    :param thread: the thread's name.
    :param clock: the clock the limits of :meth:`hold_for` are kept by (``time.monotonic``).
    """

    def __init__(
        self,
        renew: Callable[[str, str, float], Any],
        *,
        claim: str = "replay store claim",
        lost: str = "another delivery may run them",
        thread: str = "kreuzberg-webhooks-heartbeat",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.renew = renew
        self.clock = clock
        self.claim = claim
        self.lost = lost
        self.thread_name = thread
        self.forked()
        _beating.add(self)

    def forked(self) -> None:
        """Start afresh (also in a forked child: the parent's claims are not its own, its
        thread did not come along, and its locks were copied in whatever state)."""
        #: Held by the thread while it renews: a fork() waits for it (no renewal is left
        #: half-written on a connection the child inherits).
        self.renewing = threading.Lock()
        self._lock = threading.Lock()  # starting and ending the thread
        #: The claims held now: (key, token) -> what is kept of it (_Held).
        self._held: dict[tuple[str, str], _Held] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._shortest = _NEVER  # the shortest lease held since the thread started

    def hold(self, key: str, token: str, lease: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Renew the claim of *key* by *token* every third of *lease* until :meth:`drop`."""
        self._held[key, token] = lease if loop is None else (lease, loop)
        if self._thread is None or lease < self._shortest:
            self._start(lease)

    def hold_for(
        self, key: str, token: str, lease: float, limit: float, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """:meth:`hold`, for at most *limit* seconds: the first renewal due after that drops
        the claim instead, with a WARNING naming *key* (the claim then runs out one lease after
        its last renewal at the latest). For a claim that nothing may ever drop (guard mode's
        :class:`~kreuzberg_webhooks.lifecycle.flows.Delivery`, settled by an adapter)."""
        self._held[key, token] = (lease, loop, self.clock() + limit, limit)
        if self._thread is None or lease < self._shortest:
            self._start(lease)

    def drop(self, key: str, token: str) -> None:
        """Stop renewing the claim (its handlers ended: it is completed or released next)."""
        self._held.pop((key, token), None)

    def __len__(self) -> int:
        """How many claims are held now."""
        return len(self._held)

    def _start(self, lease: float) -> None:
        with self._lock:
            if self._thread is None:
                self._shortest = min(self._shortest, lease)
                self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
                self._thread.start()
            elif lease < self._shortest:
                self._shortest = lease
                self._wake.set()  # the thread waits no longer than the new period

    def stop(self, *, join: bool) -> None:
        """End the thread now if no claim is held (with *join*: and wait for it, so that no
        renewal is left half-written); a claim still held (a handler still running) keeps
        being renewed, and the next :meth:`hold` starts a thread again."""
        with self._lock:
            thread = self._thread
            if thread is None or self._held:
                return
        self._wake.set()
        if join and thread is not threading.current_thread():
            thread.join(_RENEW_TIMEOUT)  # (a claim held meanwhile keeps it going: then it times out)

    def _run(self) -> None:
        wake = self._wake
        due = time.monotonic() + self._shortest / 3  # the next renewal of every claim held
        while True:
            if not self._held:
                # None held: wait a moment for the next claim (no thread started per delivery
                # when they come one after another), then end; a claim held meanwhile is
                # renewed within a third of the lease, as ever (hold() wakes no thread).
                if wake.wait(min(_IDLE, self._shortest / 3)):  # stop(), or a shorter lease held
                    wake.clear()
                if self._held:
                    due = min(due, time.monotonic() + self._shortest / 3)
                    continue
                if self._end():
                    return
                due = time.monotonic() + self._shortest / 3  # claims held meanwhile: taken over
                continue
            now = time.monotonic()
            if now >= due:
                self._renew_held()
                due = time.monotonic() + self._shortest / 3
                continue
            # Never asleep longer than _IDLE, so that it sees soon when the last claim is gone.
            if wake.wait(min(due - now, _IDLE)):  # a shorter lease was held (its third from now), or stop()
                wake.clear()
                if not self._held and self._end():  # stop(), the last claim dropped meanwhile
                    return
                due = min(due, time.monotonic() + self._shortest / 3)

    def _end(self) -> bool:
        """Whether the thread may end: no claim is held, or another thread took over."""
        with self._lock:
            if self._held:  # held meanwhile
                return False
            self._thread = None
            self._shortest = _NEVER
        # A claim held between the look above and the line before it saw this thread
        # still running, and started none: take it on unless hold() started another.
        if not self._held:
            return True
        with self._lock:
            if self._thread is not None:
                return True
            self._thread = threading.current_thread()
            self._shortest = min([_lease(held) for held in list(self._held.values())] or [_NEVER])
            return False

    def _renew_held(self) -> None:
        for (key, token), held in list(self._held.items()):
            if (key, token) not in self._held:
                continue  # its handlers ended meanwhile
            if not isinstance(held, tuple):
                lease, loop = held, None
            elif len(held) == 2:
                lease, loop = held
            else:  # held with a limit: looked at when it comes up, not once per round
                if self.clock() >= held[2]:
                    self._overdue(key, token, held)
                    continue
                lease, loop = held[0], held[1]
            if loop is not None and loop.is_closed():  # nothing can renew it again: it runs out
                self._held.pop((key, token), None)
                logger.debug("%s let go: its event loop closed (key=%s)", self.claim, key)
                continue
            try:
                if loop is not None:
                    # Written by its event loop's thread, not this one: not under `renewing`, so a
                    # fork() made on that loop never waits for a renewal that waits for the loop.
                    future = asyncio.run_coroutine_threadsafe(self.renew(key, token, lease), loop)
                    kept = future.result(_RENEW_TIMEOUT)
                else:
                    with self.renewing:
                        if (key, token) not in self._held:
                            continue  # ended while a fork held the lock
                        kept = self.renew(key, token, lease)
            except Exception as error:  # tried again a third of the lease later
                logger.warning("%s not renewed (key=%s): %s", self.claim, key, error)
                continue
            if not kept and (key, token) in self._held:
                self._held.pop((key, token), None)
                logger.warning("%s lost while its handlers ran (key=%s): %s", self.claim, key, self.lost)

    def _overdue(self, key: str, token: str, held: _Held) -> None:
        """Drop a claim held past its limit (unless it was dropped or held again meanwhile)."""
        if isinstance(held, tuple) and len(held) == 4 and self._held.get((key, token)) is held:
            self._held.pop((key, token), None)
            logger.warning(
                "%s still held after %g s, its limit: no longer renewed (key=%s); it runs out within its lease",
                self.claim,
                held[3],
                key,
            )


def _lease(held: _Held) -> float:
    return held[0] if isinstance(held, tuple) else held


_beating: weakref.WeakSet[Heartbeat] = weakref.WeakSet()
_waited: list[threading.Lock] = []


def _before_fork() -> None:
    for beat in list(_beating):
        if beat.renewing.acquire(timeout=_RENEW_TIMEOUT):
            _waited.append(beat.renewing)


def _after_fork_in_parent() -> None:
    while _waited:
        _waited.pop().release()


def _after_fork_in_child() -> None:
    _waited.clear()
    for beat in list(_beating):
        beat.forked()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
