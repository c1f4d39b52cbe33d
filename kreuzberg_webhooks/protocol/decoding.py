"""Decoding a signed body as JSON: strict about what JSON is, never an escaping exception.

A body read whole is decoded by :func:`decode_json`. A streamed one (a job
document, kept as the chunks it arrived in) is decoded by
:func:`decode_json_chunks` straight from those chunks, one window at a time,
so that neither its text nor a joined copy of its bytes ever exists: every
value that lies wholly in the window is parsed by the C scanner (the one
``json.loads`` uses); only a container or a string that runs past the window
is walked here, and a long string is decoded piece by piece and grown in place.
Both answer the same value, or :class:`InvalidJSON`, for the same bytes.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..exceptions import InvalidJSON

__all__ = ["decode_json", "decode_json_chunks"]

_BOM = b"\xef\xbb\xbf"
_JSON_WHITESPACE = " \t\n\r"
_WHITESPACE_RUN = re.compile(r"[ \t\n\r]*")
#: What a number or a literal (``true``, ``null``, ``NaN``, ``-Infinity``) may be made of: a
#: token that reaches the end of the window may go on in the next one.
_TOKEN_CHARACTERS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+-")
_TOKEN_RUN = re.compile(r"[0-9A-Za-z.+\-]*")
#: What lies between two members of a walked container (or ends it), and between a key and its value.
_OBJECT_NEXT = re.compile(r"[ \t\n\r]*([,}])[ \t\n\r]*")
_ARRAY_NEXT = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_COLON = re.compile(r"[ \t\n\r]*:[ \t\n\r]*")
#: What the C scanner must see in a string piece that holds neither (the piece is then the value).
_ESCAPE_OR_CONTROL = re.compile(r"[\\\x00-\x1f]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
#: The C scanner: (text, index) -> (value, end); StopIteration where no value starts.
_scan_once: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]
#: The C string scanner: (text, index after the opening quote, strict) -> (str, end).
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
_new_utf8_decoder = codecs.getincrementaldecoder("utf-8")


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


def decode_json_chunks(chunks: Iterable[bytes]) -> Any:
    """:func:`decode_json` of the concatenation of *chunks*, read one chunk at a time.

    The same value and the same errors for every body and every way of cutting
    it in chunks. Each chunk is dropped once it is read (so an iterator that
    pops them from a list frees the body as the document is built); what is
    held besides the document is the chunk in hand and, at most, a value that
    runs past it (a number, or a string's last few characters).
    Nesting too deep is refused as the C scanner refuses it, by the
    interpreter's recursion limit: one level of a container walked here costs
    one frame, as one level costs the C scanner one recursion.
    """
    window = _Window(iter(chunks))
    try:
        if not window.more():
            raise ValueError("an empty body")
        if window.text[0] == "\ufeff":  # the first decoded character is a BOM when the body starts with one
            window.pos = 1
        if not window.skip_whitespace():
            raise ValueError("no value")
        value = _value(window)
        if window.skip_whitespace():
            raise ValueError("more after the document")
    except (ValueError, RecursionError, StopIteration):  # StopIteration: the C scanner found no value
        raise InvalidJSON() from None
    return value


class _Window:
    """The text of the chunks read so far that is not parsed yet: :attr:`text` from :attr:`pos`."""

    __slots__ = ("_chunks", "_decoder", "ended", "pos", "reads", "text")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._decoder = _new_utf8_decoder()  # strict: invalid UTF-8 raises UnicodeDecodeError, a ValueError
        self.text = ""
        self.pos = 0
        #: Whether every chunk has been read: then nothing follows :attr:`text`.
        self.ended = False
        #: How many chunks have been read: a new window since a batch was tried when it changed.
        self.reads = 0

    def _next_text(self) -> str | None:
        """The text of the next chunk (never empty), or ``None`` at the end of the body."""
        while not self.ended:
            self.reads += 1
            chunk = next(self._chunks, None)
            if chunk is None:
                self.ended = True
                text = self._decoder.decode(b"", True)  # a body that ends inside a character raises here
            else:
                text = self._decoder.decode(chunk)
            if text:
                return text
        return None

    def more(self) -> bool:
        """Add the next chunk's text to what is left of the window; ``False`` at the end of the body."""
        text = self._next_text()
        if text is None:
            return False
        self.text = self.text[self.pos :] + text if self.pos < len(self.text) else text
        self.pos = 0
        return True

    def extend_over(self, pattern: re.Pattern[str]) -> None:
        """Read on until *pattern*'s run from :attr:`pos` ends inside the window (or the body ends).

        In linear time however long the run (the pieces are joined once).
        """
        if pattern.match(self.text, self.pos).end() < len(self.text) or self.ended:  # type: ignore[union-attr]
            return
        parts = [self.text[self.pos :]]
        while (text := self._next_text()) is not None:
            parts.append(text)
            if pattern.match(text).end() < len(text):  # type: ignore[union-attr]  # "*" always matches
                break
        self.text = "".join(parts)
        self.pos = 0

    def skip_whitespace(self) -> bool:
        """Move past JSON whitespace; ``False`` when the body ends first (else a character is at :attr:`pos`)."""
        while True:
            end = _WHITESPACE_RUN.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if end < len(self.text):
                self.pos = end
                return True
            self.text, self.pos = "", 0  # all whitespace: dropped
            if not self.more():
                return False


def _value(window: _Window) -> Any:
    """The value at :attr:`_Window.pos` (not whitespace); the window is moved past it."""
    first = window.text[window.pos]
    if first == '"':
        return _string(window)
    if first == "{" or first == "[":
        value = _scanned(window)
        if value is _RUNS_ON:  # walked here, holding no window of its own while it is
            value = _object(window) if first == "{" else _array(window)
        return value
    # A number or a literal: complete only once something follows it.
    window.extend_over(_TOKEN_RUN)
    value, window.pos = _scan_once(window.text, window.pos)
    return value


#: What :func:`_scanned` answers for a container that runs on past the window.
_RUNS_ON: Any = object()


def _scanned(window: _Window) -> Any:
    """The container at :attr:`_Window.pos` scanned whole by the C scanner, or :data:`_RUNS_ON`.

    A function of its own so that the failed scan's error, which holds the
    window's text, is gone before the container is walked.
    """
    try:
        value, window.pos = _scan_once(window.text, window.pos)
    except (ValueError, StopIteration, RecursionError):
        if window.ended:  # the whole rest of the body was in view: a real error
            raise
        return _RUNS_ON  # it runs past the window (or has an error further on, found again when walked)
    return value


def _expect(window: _Window, what: str) -> None:
    """Move past whitespace and then *what*, or raise ValueError."""
    if not window.skip_whitespace() or window.text[window.pos] != what:
        raise ValueError(f"expected {what!r}")
    window.pos += 1


def _member(window: _Window) -> Any:
    """The value at :attr:`_Window.pos` in a walked container, when it is no container that runs past the window.

    Scanned in place when it ends inside the window, else read on by :func:`_value`.
    """
    text, pos = window.text, window.pos
    try:
        value, end = _scan_once(text, pos)
    except (ValueError, StopIteration, RecursionError):
        if window.ended:
            raise
        value = _RUNS_ON
    if value is _RUNS_ON:
        del text
        return _value(window)  # a string or a token that runs past the window, or an error found again there
    if (
        not window.ended
        and text[pos] not in '"{['
        and (end == len(text) or text[end] in _TOKEN_CHARACTERS)
        and _TOKEN_RUN.match(text, end).end() == len(text)  # type: ignore[union-attr]  # "*" always matches
    ):
        return _value(window)  # a number or a literal whose characters run on into the next chunk ("4." "5")
    window.pos = end
    return value


def _object(window: _Window) -> dict[str, Any]:
    """The object at :attr:`_Window.pos` (its ``{``), as the C scanner builds it: the last of duplicate keys wins.

    Each member is scanned by the C scanner where it lies wholly in the window,
    and the separators around it are matched by one regular expression; only
    at the window's end is it read on. A member that is a container running
    past the window is walked by a call from here: one frame per level of
    nesting, as the C scanner spends one recursion per level.
    """
    window.pos += 1
    result: dict[str, Any] = {}
    if not window.skip_whitespace():
        raise ValueError("an unterminated object")
    if window.text[window.pos] == "}":
        window.pos += 1
        return result
    separator = ""  # as _array's: what separates two members, with the value's last character and the next quote
    lead = 0
    tried = -1
    while True:
        if separator and tried != window.reads:
            tried = window.reads
            members = _batch(window, separator, lead, "{", "}")
            if members is not None:
                # In order, the last of duplicate keys winning: as assigning them one by one.
                result.update(members)
                del members
                if _after_member(window, _OBJECT_NEXT, "}"):
                    return result
                continue
        text, pos = window.text, window.pos
        if text[pos] != '"':
            raise ValueError("expected a property name")
        try:
            key, window.pos = _scanstring(text, pos + 1, True)
            runs_on = False
        except ValueError:
            if window.ended:
                raise
            runs_on = True
        del text
        if runs_on:  # the key runs past the window
            key = _string(window)
        match = _COLON.match(window.text, window.pos)
        if match is not None and match.end() < len(window.text):
            window.pos = match.end()
        else:
            _expect(window, ":")
            if not window.skip_whitespace():
                raise ValueError("expected a value")
        first = window.text[window.pos]
        if first == "{" or first == "[":
            value = _scanned(window)
            if value is _RUNS_ON:  # walked, holding no window of its own while it is
                value = _object(window) if first == "{" else _array(window)
            result[key] = value
        else:
            result[key] = _member(window)
        if not separator:
            separator, lead = _separator(window, _OBJECT_NEXT)
        if _after_member(window, _OBJECT_NEXT, "}"):
            return result


def _array(window: _Window) -> list[Any]:
    """The array at :attr:`_Window.pos` (its ``[``), its members read as :func:`_object`'s.

    An array of many members (a document's pages) is read in batches: once two
    members have shown what separates them (``"}, {"``, a newline and an
    indent), the members from here to the last such separator in the window
    are scanned by one call of the C scanner, as an array of their own. That
    is right whenever the scan takes all of them: a separator inside a string
    or a nested container leaves an unterminated string or an unclosed
    container, and the scan fails (the members are then read one at a time).
    """
    window.pos += 1
    result: list[Any] = []
    if not window.skip_whitespace():
        raise ValueError("an unterminated array")
    if window.text[window.pos] == "]":
        window.pos += 1
        return result
    append = result.append
    separator = ""  # what separates two members, with the last character of one and the first of the next
    lead = 0  # how many characters of the separator belong to the member before it
    tried = -1  # the window (counted in chunks read) a batch was last tried in
    while True:
        if separator and tried != window.reads:
            tried = window.reads
            members = _batch(window, separator, lead, "[", "]")
            if members is not None:
                result.extend(members)
                del members
                if _after_member(window, _ARRAY_NEXT, "]"):
                    return result
                continue
        first = window.text[window.pos]
        if first == "{" or first == "[":
            member = _scanned(window)
            if member is _RUNS_ON:  # walked, holding no window of its own while it is
                member = _object(window) if first == "{" else _array(window)
        else:
            member = _member(window)
        append(member)
        if not separator:
            separator, lead = _separator(window, _ARRAY_NEXT)
        if _after_member(window, _ARRAY_NEXT, "]"):
            return result


def _batch(window: _Window, separator: str, lead: int, open_: str, close: str) -> Any:
    """The members from :attr:`_Window.pos` to the last *separator* in the window, scanned by one call
    of the C scanner as a container of their own (*open_*, *close*); ``None`` when that fails or does
    not take all of them (the separator was inside a string or a nested container)."""
    text, pos = window.text, window.pos
    stop = text.rfind(separator, pos) + lead
    if stop <= pos:
        return None
    try:
        members, end = _scan_once(open_ + text[pos:stop] + close, 0)
    except (ValueError, StopIteration, RecursionError):
        return None
    if end != stop - pos + 2:
        return None
    window.pos = stop
    return members


def _separator(window: _Window, pattern: re.Pattern[str]) -> tuple[str, int]:
    """What separates the member just read from the next, when the next starts in the window: the
    separator with the member's last character (``}``, ``]``, ``"``) and the next one's first
    (``{``, ``[``, ``"``), and how many characters of it belong to the member; ``("", 0)`` else."""
    text, pos = window.text, window.pos
    match = pattern.match(text, pos)
    if match is None or match.group(1) != "," or match.end() >= len(text) or pos == 0:
        return "", 0
    last, following = text[pos - 1], text[match.end()]
    lead = 1 if last in '}]"' else 0
    return text[pos - lead : match.end()] + (following if following in '{["' else ""), lead


def _after_member(window: _Window, pattern: re.Pattern[str], close: str) -> bool:
    """Move past the separator after a member (``True``: it was the container's end *close*), so
    that the next member starts at :attr:`_Window.pos`; raise ValueError for anything else."""
    text, pos = window.text, window.pos
    match = pattern.match(text, pos)
    if match is not None and (match.group(1) == close or match.end() < len(text)):
        if match.group(1) == close:
            window.pos = match.start(1) + 1
            return True
        window.pos = match.end()
        return False
    if not window.skip_whitespace():
        raise ValueError("an unterminated container")
    character = window.text[window.pos]
    window.pos += 1
    if character == close:
        return True
    if character != "," or not window.skip_whitespace():
        raise ValueError(f"expected ',' or {close!r}")
    return False


def _string(window: _Window) -> str:
    """The string at :attr:`_Window.pos` (its opening quote), decoded as the C scanner decodes it."""
    text, start = window.text, window.pos + 1
    if window.ended or text.find('"', start) >= 0:
        try:
            value, window.pos = _scanstring(text, start, True)
        except ValueError:
            if window.ended:
                raise
        else:
            return value
    # It runs past the window (or an escaped quote, or an error, is in it): decoded a piece at a time.
    # The pieces are appended to one string that nothing else refers to, which CPython grows
    # in place (a realloc): the string is never held twice, as a join of the pieces would hold it.
    value = ""
    while True:
        cut = _safe_cut(text, start)
        if cut > start:
            piece = text[start:cut]
            if _ESCAPE_OR_CONTROL.search(piece) is not None:
                piece, end = _scanstring(piece + '"', 0, True)
                if end != cut - start + 1:  # a quote inside the piece: never, since the scan above found none
                    raise ValueError("an unterminated string")
            value += piece
            del piece
        window.pos = cut
        if not window.more():
            raise ValueError("an unterminated string")
        text, start = window.text, 0
        if text.find('"') >= 0:
            try:
                rest, window.pos = _scanstring(text, 0, True)
            except ValueError:
                if window.ended:
                    raise
            else:
                value += rest
                return value


def _safe_cut(text: str, start: int) -> int:
    """Where string content from *start* may be cut at the end of *text*: never inside an escape
    (``\\n``, ``\\u00e9``), nor between the two escapes of a surrogate pair (``\\ud83d\\udc22``).

    At most the last two escapes are left for the next piece, so a string of any
    length is cut near the end of every window (never quadratic).
    """
    cut = len(text)
    escape = text.rfind("\\", max(start, cut - 6), cut)  # an escape is at most 6 characters
    if escape < 0 or not _starts_escape(text, start, escape):
        return cut  # no escape ends past the cut (a "\\\\" is complete)
    if text[escape + 1 : escape + 2] == "u":
        if escape + 6 <= cut:
            # Complete: a high surrogate is left for the next piece, where a low one may follow it;
            # what comes before it cannot pair with it.
            return escape if _is_high_surrogate(text[escape + 2 : escape + 6]) else cut
    elif escape + 2 <= cut:
        return cut
    # Incomplete: left for the next piece, with a high surrogate just before it (it may be a low one).
    before = escape - 6
    if (
        before >= start
        and text[before : before + 2] == "\\u"
        and _starts_escape(text, start, before)
        and _is_high_surrogate(text[before + 2 : escape])
    ):
        return before
    return escape


def _starts_escape(text: str, start: int, backslash: int) -> bool:
    """Whether the backslash at *backslash* starts an escape (rather than ending a ``\\\\``)."""
    run = backslash
    while run > start and text[run - 1] == "\\":
        run -= 1
    return (backslash - run) % 2 == 0


def _is_high_surrogate(digits: str) -> bool:
    return len(digits) == 4 and digits[:2].lower() in ("d8", "d9", "da", "db")
