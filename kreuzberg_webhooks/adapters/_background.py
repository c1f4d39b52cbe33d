"""Tasks that outlive the request that started them: what a cancelled request leaves to settle."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["detach"]

_background: set[asyncio.Task[Any]] = set()


def detach(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run *coroutine* as a task of its own, which nothing awaits.

    A reference is kept until it ends (the loop keeps only weak ones, so it could
    be collected before it settles); its exception, if any, was the application's
    and has been logged where the claim was settled.
    """
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" at exit
