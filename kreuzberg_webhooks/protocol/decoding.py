"""Decoding a signed body as JSON: strict about what JSON is, never an escaping exception."""

from __future__ import annotations

import json
import re
from typing import Any

from ..exceptions import InvalidJSON

__all__ = ["decode_json", "decode_json_text"]

_BOM = b"\xef\xbb\xbf"
_JSON_WHITESPACE = " \t\n\r"
_WHITESPACE_RUN = re.compile(r"[ \t\n\r]*")


def _skip_whitespace(text: str, start: int) -> int:
    """The index of the first character at or after *start* that is not JSON whitespace."""
    return _WHITESPACE_RUN.match(text, start).end()  # type: ignore[union-attr]  # "*" always matches


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


def decode_json_text(text: str) -> Any:
    """:func:`decode_json` for a body already decoded from UTF-8 (a streamed one): the same
    value and the same errors, parsed where it lies.

    The BOM and surrounding whitespace are skipped by index, not stripped: a
    strip would copy a large document whole.
    """
    start = _skip_whitespace(text, 1 if text[:1] == "\ufeff" else 0)
    try:
        value, end = _decoder.raw_decode(text, start)
    except (ValueError, RecursionError):
        raise InvalidJSON() from None
    if _skip_whitespace(text, end) != len(text):  # more after the document
        raise InvalidJSON()
    return value
