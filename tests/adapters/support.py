"""Helpers that some adapter test modules share (the contract itself is in contract.py)."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

from .contract import LIMIT


class CountingStream(io.RawIOBase):
    """A huge request body (256 times the limit) that counts the bytes it hands out:
    for the WSGI-level cases that a body over the limit stops being read just past it."""

    def __init__(self) -> None:
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), 256 * LIMIT - self.given)
        buffer[:size] = b"x" * size
        self.given += size
        return size


def import_error_without(framework: str, adapter: str) -> str:
    """The ImportError message of importing *adapter* in a fresh interpreter where *framework* is missing."""
    code = (
        f"import sys; sys.modules[{framework!r}] = None\n"
        "import kreuzberg_webhooks\n"
        "try:\n"
        f"    import {adapter}\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
