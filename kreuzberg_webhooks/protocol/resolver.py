"""Per-project secret resolvers: what they are shown before the signature check, and what they may answer.

Before a body's signature is checked nothing of it may be trusted, and nothing
of it may cost more than checking the signature does. The one thing read
early is the top-level ``project_id`` (``docs/contract.md`` §4), only to choose
which secrets to try. A body of up to :data:`PROJECT_ID_SCAN_LIMIT` bytes is
decoded (bounded work, and the decode is kept for after the signature check);
a larger one is read by :func:`peek_project_id`: a scan of its first
:data:`PROJECT_ID_SCAN_LIMIT` bytes, in fixed memory, that builds none of the
values it skips. A forged body of any size costs a resolver-backed verifier
what it costs one with a static secret: one HMAC pass, plus at most 64 KiB read.

A resolver answers with the secrets to try: a ``str`` or bytes (``bytes``,
``bytearray``, ``memoryview``), an iterable of them (key rotation), a mapping
of project ids to such answers, or ``None`` when the project is unknown (401).
The delivery is scoped by the project that owns the secret which verified it
(``docs/contract.md`` §4c): the project the resolver was asked for, or, for a
mapping, the key under which the verifying secret was listed. A body that names
no project (a ``WebhookEvent``, a job document) is resolved with ``None``:
answer it with the mapping, so that one job keys alike in every shape. Anything
else (a mapping keyed by something that is not a project id, a number, a
coroutine from a sync call) is a bug in the application, not in the delivery:
it is logged as an error naming what was returned and answered 503, so the
sender keeps retrying while someone fixes it, instead of the event being
refused for good.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeAlias

__all__ = [
    "PROJECT_ID_SCAN_LIMIT",
    "AsyncSecretResolver",
    "ResolvedSecrets",
    "SecretResolver",
    "is_async_resolver",
    "peek_project_id",
]

#: What a resolver may answer: one secret, several, a mapping of project ids to them
#: (the project each secret belongs to), or ``None`` for an unknown project.
ResolvedSecrets: TypeAlias = (
    "str | bytes | Iterable[str | bytes] | Mapping[str, str | bytes | Iterable[str | bytes] | None] | None"
)
#: Given the not-yet-trusted ``project_id`` (or ``None``), returns the secrets to try.
SecretResolver: TypeAlias = Callable[[str | None], ResolvedSecrets]
#: The same, as a coroutine function; only the async path (``Verifier.verify_async``) can await it.
AsyncSecretResolver: TypeAlias = Callable[[str | None], Awaitable[ResolvedSecrets]]

#: How much of a body :func:`peek_project_id` reads. The small event carries
#: ``project_id`` third, in its first few hundred bytes; a body whose
#: ``project_id`` lies further in is refused after its signature check
#: (``Verifier`` compares the decoded value with the one the secrets were chosen for).
PROJECT_ID_SCAN_LIMIT = 64 * 1024

_BOM = b"\xef\xbb\xbf"
_KEY = b'"project_id"'
_WHITESPACE = re.compile(rb"[ \t\n\r]*")
# A JSON string token: quote, runs of characters other than quote and
# backslash, each escape a backslash and the character it escapes. Possessive
# (Python 3.11): nothing to backtrack into, so the match keeps no state per
# character (the plain form holds ~128 bytes per character of a long string).
# The token is decoded by the json module, which refuses what JSON refuses
# (control characters, bad escapes).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
# Numbers, true, false, null (and junk that the full decode refuses later).
_SCALAR = re.compile(rb"[-+.0-9A-Za-z]+")
# Inside an object or array, only strings can hide brackets.
_STRUCTURE = re.compile(rb'["\[\]{}]')
_decoder = json.JSONDecoder()


def _skip_whitespace(text: bytes, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _string(token: bytes) -> str | None:
    try:
        value = _decoder.decode(token.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
        return None
    return value if type(value) is str else None


def _skip_value(text: bytes, pos: int) -> int:
    """The end of the JSON value starting at *pos*, or -1 if it does not end within *text*."""
    first = text[pos : pos + 1]
    if first == b'"':
        match = _STRING.match(text, pos)
        return match.end() if match else -1
    if first in (b"{", b"["):
        depth = 0
        while True:
            found = _STRUCTURE.search(text, pos)
            if found is None:
                return -1
            pos = found.end()
            char = found.group()
            if char == b'"':
                match = _STRING.match(text, found.start())
                if match is None:
                    return -1
                pos = match.end()
            elif char in (b"{", b"["):
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    return pos
    match = _SCALAR.match(text, pos)
    return match.end() if match else -1


def peek_project_id(body: bytes, limit: int = PROJECT_ID_SCAN_LIMIT) -> str | None:
    """The top-level ``"project_id"`` string of a JSON object, read from the first *limit* bytes of *body*.

    Agrees with ``json.loads(body).get("project_id")`` (when that is a string;
    otherwise ``None``) for every object whose members up to the last
    ``project_id`` lie within *limit*: escapes are decoded by the json module,
    nested values are skipped, and of duplicate keys the last one wins.
    ``None`` when there is none, when it is not a string, or when the body is
    not a JSON object. Never raises; memory is a copy of at most *limit* bytes.

    Not to be trusted beyond choosing secrets: it is read before the signature.
    """
    text = body[:limit]
    pos = 3 if text[:3] == _BOM else 0
    pos = _skip_whitespace(text, pos)
    if text[pos : pos + 1] != b"{":
        return None
    found: str | None = None
    pos = _skip_whitespace(text, pos + 1)
    if text[pos : pos + 1] == b"}":
        return None
    while True:
        key = _STRING.match(text, pos)
        if key is None:
            return found
        token = key.group()
        is_project = token == _KEY or (b"\\" in token and _string(token) == "project_id")
        pos = _skip_whitespace(text, key.end())
        if text[pos : pos + 1] != b":":
            return found
        pos = _skip_whitespace(text, pos + 1)
        end = _skip_value(text, pos)
        if is_project:
            # A later duplicate wins, as in json.loads; a value cut off by the
            # limit is unknown, and so is anything but a string.
            found = _string(text[pos:end]) if end > 0 and text[pos : pos + 1] == b'"' else None
        if end < 0:
            return found
        pos = _skip_whitespace(text, end)
        separator = text[pos : pos + 1]
        if separator != b",":
            return found  # "}" ends the object; anything else is not JSON, refused after the signature
        pos = _skip_whitespace(text, pos + 1)


def is_async_resolver(resolver: object) -> bool:
    """Whether *resolver* is a coroutine function (or an object whose ``__call__`` is one)."""
    return inspect.iscoroutinefunction(resolver) or inspect.iscoroutinefunction(
        getattr(resolver, "__call__", None)  # noqa: B004 - the bound __call__ of an instance, not callable()
    )
