"""Store and inbox URLs checked once, so a malformed one is a one-line ConfigurationError.

A URL may carry a password: no message here repeats it.
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

from ..exceptions import ConfigurationError

__all__ = ["check_url", "sqlite_path"]


def check_url(url: object, what: str) -> SplitResult:
    """*url* split into its parts; a :class:`ConfigurationError` if it cannot be read (a bad
    IPv6 host, a port that is no number or outside 0 to 65535, a NUL character)."""
    if not isinstance(url, str):
        raise ConfigurationError(f"the {what} URL must be a string, not {type(url).__name__}")
    if "\x00" in url:
        raise ConfigurationError(f"the {what} URL holds a NUL character")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError as error:
        raise ConfigurationError(f"the {what} URL is malformed: {error}") from None
    return parts


def sqlite_path(url: str, what: str) -> str:
    """The file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL.

    A query or a fragment is refused rather than becoming part of the file name
    (``?mode=ro``: a store or inbox must write); a ``?`` in a file name is written ``%3F``.
    """
    check_url(url, what)
    rest = url.split("://", 1)[1]
    if "?" in rest or "#" in rest:
        cut = min(i for i in (rest.find("?"), rest.find("#")) if i >= 0)
        raise ConfigurationError(
            f"the {what} URL takes no query or fragment ({rest[cut:]!r}): give the file path alone "
            "(write a '?' in a file name as %3F)"
        )
    path = unquote(rest)
    if "\x00" in path:
        raise ConfigurationError(f"the {what} URL's file path holds a NUL character (%00)")
    if path.startswith("/"):
        path = path[1:]  # sqlite:///x.db is relative, sqlite:////x.db absolute (SQLAlchemy's rule)
    if not path:
        raise ConfigurationError(f"the {what} URL names no file: sqlite:///relative.db or sqlite:////absolute.db")
    return path
