"""pytest fixtures for Kreuzberg Cloud webhook tests (loaded through the ``pytest11`` entry point)."""

from __future__ import annotations
