"""Decoding a signed body as JSON: strict about what JSON is, never an escaping exception."""

from __future__ import annotations

import json
from typing import Any

from ..exceptions import InvalidJSON

__all__ = ["decode_json"]

_BOM = b"\xef\xbb\xbf"
_JSON_WHITESPACE = " \t\n\r"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json(body: bytes) -> Any:
    """Decode a UTF-8 JSON body; raise :class:`InvalidJSON` for anything else.

    A UTF-8 byte order mark is ignored. ``NaN``/``Infinity``, invalid UTF-8,
    integers too long to convert and nesting too deep for the parser are all
    :class:`InvalidJSON`, never an escaping exception. Duplicate keys keep the
    last value, like every mainstream JSON parser.
    """
    if body[:3] == _BOM:
        body = body[3:]
    try:
        # JSONDecoder.decode is raw_decode between two regex scans for JSON
        # whitespace, which cost half as much as parsing a small event; a
        # strip does the same job (a document never ends in whitespace).
        text = body.decode("utf-8").strip(_JSON_WHITESPACE)
        value, end = _decoder.raw_decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidJSON() from None
    if end != len(text):  # more after the document
        raise InvalidJSON()
    return value
