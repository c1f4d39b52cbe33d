"""``python -m kreuzberg_webhooks``: the ``kreuzberg-webhooks`` command line."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m kreuzberg_webhooks"))
