"""Where a middleware answers deliveries: the ``path`` and ``mode`` the ASGI and WSGI middlewares share."""

from __future__ import annotations

from typing import Literal, TypeAlias

__all__ = ["Mode", "check_mount"]

#: ``"endpoint"`` answers at the path with the receiver's handlers; ``"guard"``
#: verifies and claims, then lets the application's own route answer.
Mode: TypeAlias = Literal["endpoint", "guard"]


def check_mount(path: str, mode: str) -> None:
    """Refuse a mode other than ``endpoint``/``guard`` and a path that does not start with ``/``."""
    if mode not in ("endpoint", "guard"):
        raise ValueError(f"mode must be 'endpoint' or 'guard', not {mode!r}")
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', not {path!r}")
