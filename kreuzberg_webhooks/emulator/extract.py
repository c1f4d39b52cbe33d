"""Real extraction for the emulator: the open-source ``kreuzberg`` library (the ``[kreuzberg]`` extra).

Imported only when chosen (``Emulator(extractor=kreuzberg_extractor())`` or
``kreuzberg-webhooks emulate --extractor kreuzberg``): the emulator itself needs
nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
import mimetypes
from collections.abc import Callable
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["kreuzberg_extractor"]

_GENERIC = ("", "application/octet-stream")


def kreuzberg_extractor() -> Callable[[str, bytes, str], str]:
    """An extractor ``(filename, data, mime_type) -> text`` that runs ``kreuzberg.extract_bytes_sync``
    with the upload's mime type (guessed from the file name when the upload named none).

    :raises ConfigurationError: the ``kreuzberg`` library is not installed.
    """
    try:
        kreuzberg: Any = importlib.import_module("kreuzberg")
    except ImportError:
        raise ConfigurationError(
            'the kreuzberg extractor needs the kreuzberg library: pip install "kreuzberg-webhooks[kreuzberg]"'
        ) from None

    def extract(filename: str, data: bytes, mime_type: str) -> str:
        if mime_type in _GENERIC:
            mime_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        result = kreuzberg.extract_bytes_sync(data, mime_type)
        return str(result.content)

    return extract
